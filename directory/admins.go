package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Admin group membership (directory.admin_group), nested groups included.
//
// AD resolves nesting itself with LDAP_MATCHING_RULE_IN_CHAIN on memberOf.
// OpenLDAP has no such rule (the memberof overlay, where present, lists
// direct groups only), so the gateway walks the static groups' member and
// uniqueMember values from the admin group down: breadth first, each DN read
// once (cycles end there), at most maxGroupDepth levels of nesting and
// maxGroupEntries entries in all.

// AdminDirectory lists the people to alert: members of directory.admin_group,
// nested membership included, with their mail addresses.
type AdminDirectory interface {
	AdminContacts(ctx context.Context) ([]User, error)
}

var _ AdminDirectory = (*Client)(nil)

const (
	maxGroupDepth   = 16
	maxGroupEntries = 10000
)

// AdminContacts returns the users (as FindUser builds them) that are
// members of the admin group, directly or through nested groups, and have
// a mail address, sorted by username. No admin group configured: none,
// and no error. An admin group that does not exist is an error (a
// configuration problem that must not pass for "no admins").
func (c *Client) AdminContacts(ctx context.Context) ([]User, error) {
	group := c.cfg.AdminGroup
	if group == "" {
		return nil, nil
	}
	var users []User
	err := c.run(ctx, "admin_contacts", func(conn *ldap.Conn) error {
		users = nil // pool.do may run this twice
		if err := c.checkAdminGroup(ctx, conn); err != nil {
			return err
		}
		now := c.now()
		if _, ok := c.dialect.(*adDialect); ok {
			_, _, err := c.pagedSearch(ctx, conn, "admin contacts",
				adMemberInChainFilter(c.cfg.EffectiveUserFilter(), group, c.cfg.MailAttribute),
				c.dialect.attributes(), func(e *ldap.Entry) {
					users = append(users, c.dialect.user(conn, e, now))
				})
			return err
		}
		_, _, err := c.walkGroup(ctx, conn, group, "", func(e *ldap.Entry) {
			users = append(users, c.dialect.user(conn, e, now))
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	users = slices.DeleteFunc(users, func(u User) bool { return strings.TrimSpace(u.Mail) == "" })
	slices.SortFunc(users, func(a, b User) int { return strings.Compare(a.Username, b.Username) })
	return users, nil
}

// IsAdmin reports whether username is a member of the admin group,
// directly or through nested groups. No admin group configured: false. An
// unknown username is ErrNotFound; any error means "not an admin".
func (c *Client) IsAdmin(ctx context.Context, username string) (bool, error) {
	if c.cfg.AdminGroup == "" {
		return false, nil
	}
	if strings.TrimSpace(username) == "" {
		return false, fmt.Errorf("is admin: empty username: %w", ErrNotFound)
	}
	var member bool
	err := c.run(ctx, "is_admin", func(conn *ldap.Conn) error {
		member = false
		u, err := c.search(ctx, conn, c.cfg.EffectiveUsernameAttribute(), username)
		if err != nil {
			return err
		}
		if err := c.checkAdminGroup(ctx, conn); err != nil {
			return err
		}
		if _, ok := c.dialect.(*adDialect); ok {
			e, err := c.readBaseEntry(ctx, conn, "is admin", u.DN, adInChainFilter(c.cfg.AdminGroup), []string{"1.1"})
			member = e != nil
			return err
		}
		member, _, err = c.walkGroup(ctx, conn, c.cfg.AdminGroup, normDN(u.DN), nil)
		return err
	})
	return member && err == nil, err
}

// checkAdminGroup fails when the admin group's entry cannot be read.
func (c *Client) checkAdminGroup(ctx context.Context, conn *ldap.Conn) error {
	e, err := c.readBaseEntry(ctx, conn, "read admin group", c.cfg.AdminGroup, "(objectClass=*)", []string{"1.1"})
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("directory.admin_group %q: no such entry: %w", c.cfg.AdminGroup, ErrNotFound)
	}
	return nil
}

// walkGroup visits the user entries (matching the user filter) that are
// members of group, nested static groups expanded; visit may be nil. With
// stopAt set (a normDN key), the walk ends as soon as a group lists that
// DN, and found is true. truncated reports that members past
// maxGroupEntries (users and groups) were left out (and logged).
func (c *Client) walkGroup(ctx context.Context, conn *ldap.Conn, group, stopAt string, visit func(*ldap.Entry)) (found, truncated bool, err error) {
	type item struct {
		dn    string
		depth int
	}
	attrs := []string{"objectClass", "member", "uniqueMember"}
	filter := groupFilter
	if visit != nil {
		attrs = append(c.dialect.attributes(), attrs...)
		filter = groupOrUserFilter(c.cfg.EffectiveUserFilter())
	}
	seen := map[string]bool{normDN(group): true}
	queue := []item{{group, 0}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		e, err := c.readBaseEntry(ctx, conn, "read group member", it.dn, filter, attrs)
		if err != nil {
			return false, truncated, err
		}
		if e == nil {
			continue // gone, or neither a user nor a group
		}
		if !isStaticGroup(e) {
			if it.depth > 0 && visit != nil { // the admin group itself is no member
				visit(e)
			}
			continue
		}
		if it.depth >= maxGroupDepth {
			c.log.Warn("group nested too deep; members below ignored", "group", e.DN, "max_depth", maxGroupDepth)
			continue
		}
		for _, m := range append(e.GetAttributeValues("member"), e.GetAttributeValues("uniqueMember")...) {
			key := normDN(stripUID(m))
			if stopAt != "" && key == stopAt {
				return true, truncated, nil
			}
			if key == "" || seen[key] {
				continue
			}
			if len(seen) >= maxGroupEntries {
				if !truncated {
					c.log.Warn("group too large; members past the limit ignored", "group", group, "max_entries", maxGroupEntries)
				}
				truncated = true
				break
			}
			seen[key] = true
			queue = append(queue, item{stripUID(m), it.depth + 1})
		}
	}
	return false, truncated, nil
}

// isStaticGroup reports whether e is a groupOfNames or groupOfUniqueNames.
func isStaticGroup(e *ldap.Entry) bool {
	return slices.ContainsFunc(e.GetAttributeValues("objectClass"), func(oc string) bool {
		return strings.EqualFold(oc, "groupOfNames") || strings.EqualFold(oc, "groupOfUniqueNames")
	})
}

// stripUID drops the optional UID of a nameAndOptionalUID value
// (uniqueMember: "uid=x,dc=example,dc=org#'0101'B").
func stripUID(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && v[i-1] != '\\' && strings.HasSuffix(v, "'B") {
		return v[:i]
	}
	return v
}

// normDN is a comparison key for a DN: attribute types and values folded
// to lower case, spacing and escaping normalized. "" for a value that is
// not a DN.
func normDN(dn string) string {
	p, err := ldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 {
		return ""
	}
	return strings.ToLower(p.String())
}
