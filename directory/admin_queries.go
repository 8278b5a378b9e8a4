package directory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// The admin console's directory queries: find people to activate (by a
// search, a group, an OU) and list the accounts locked right now.

// AdminQueries are the directory lookups of the admin console. Every list
// is sorted by username and holds Users as FindUser builds them.
type AdminQueries interface {
	// SearchUsers returns the users holding query (a substring, matched as
	// the server compares those attributes, i.e. case-insensitively) in
	// their username, displayName, cn, givenName, sn or mail attribute (AD:
	// also userPrincipalName). At most limit come back (limit <= 0: 50;
	// at most 1000); truncated says more matched. An empty or unprintable
	// query is ErrInvalidInput.
	SearchUsers(ctx context.Context, query string, limit int) (users []User, truncated bool, err error)
	// GroupMembers returns the users that are members of group, nested
	// groups included. group is a DN inside base_dn (else ErrInvalidInput)
	// or a group name (cn, or AD sAMAccountName) looked up under base_dn:
	// none is ErrNotFound, several ErrAmbiguous.
	GroupMembers(ctx context.Context, group string) ([]User, error)
	// UsersUnder returns the users in the subtree of base, a DN inside
	// base_dn (else ErrInvalidInput); a base that does not exist is
	// ErrNotFound.
	UsersUnder(ctx context.Context, base string) ([]User, error)
	// LockedUsers returns the accounts locked right now (the computed state,
	// as User.Locked), each with its LockoutTime.
	LockedUsers(ctx context.Context) ([]User, error)
	// AccountState looks username up like FindUser but also among the
	// accounts user_filter leaves out by default (AD: disabled ones), so
	// that the console can say why someone is not usable: Disabled,
	// Expired, Locked. ErrNotFound when no such person account exists.
	AccountState(ctx context.Context, username string) (User, error)
}

// accountFilter is the person accounts of the dialect, enabled or not.
func (c *Client) accountFilter() string {
	if c.cfg.Dialect == DialectAD {
		return "(&(objectCategory=person)(objectClass=user))"
	}
	return c.cfg.EffectiveUserFilter()
}

// AccountState implements AdminQueries.
func (c *Client) AccountState(ctx context.Context, username string) (User, error) {
	if strings.TrimSpace(username) == "" || !validValue(username) {
		return User{}, fmt.Errorf("account state: %w", ErrNotFound)
	}
	attr := c.cfg.EffectiveUsernameAttribute()
	var u User
	err := c.run(ctx, "find", func(conn *ldap.Conn) error {
		e, err := c.searchOne(ctx, conn, "account state", userEqualityFilter(c.accountFilter(), attr, username), c.dialect.attributes())
		if err != nil {
			return err
		}
		u = c.dialect.user(conn, e, c.now())
		return nil
	})
	return u, err
}

var _ AdminQueries = (*Client)(nil)

const (
	defaultSearchLimit = 50
	maxSearchLimit     = 1000
	// maxQueryLen bounds a search query, in characters.
	maxQueryLen = 256
	// maxListEntries bounds GroupMembers and UsersUnder: a longer list is
	// ErrTooMany rather than a partial one.
	maxListEntries = 10000
)

// SearchUsers implements AdminQueries. The server stops at limit+1 entries,
// so a truncated answer holds limit of the matching users (the first the
// server returned, sorted), not necessarily the first limit by username:
// the console asks for a narrower query.
func (c *Client) SearchUsers(ctx context.Context, query string, limit int) ([]User, bool, error) {
	q := strings.TrimSpace(query)
	if err := checkInput("search users", "query", q); err != nil {
		return nil, false, err
	}
	if n := utf8.RuneCountInString(q); n > maxQueryLen {
		return nil, false, fmt.Errorf("search users: query of %d characters, at most %d: %w", n, maxQueryLen, ErrInvalidInput)
	}
	switch {
	case limit <= 0:
		limit = defaultSearchLimit
	case limit > maxSearchLimit:
		limit = maxSearchLimit
	}
	filter := anyAttrFilter(c.cfg.EffectiveUserFilter(), c.searchAttributes(), q, true)
	var users []User
	var limited bool
	err := c.run(ctx, "search_users", func(conn *ldap.Conn) error {
		var err error
		users, limited, err = c.listUsers(ctx, conn, "search users", c.cfg.BaseDN, limit+1, filter)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	sortUsers(users)
	truncated := limited || len(users) > limit
	if len(users) > limit {
		users = users[:limit]
	}
	return users, truncated, nil
}

// searchAttributes are the attributes SearchUsers looks in, each once.
func (c *Client) searchAttributes() []string {
	attrs := []string{c.cfg.EffectiveUsernameAttribute(), "displayName", "cn", "givenName", "sn", c.cfg.MailAttribute}
	if c.cfg.Dialect == DialectAD {
		attrs = append(attrs, "userPrincipalName")
	}
	var out []string
	for _, a := range attrs {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, a) }) {
			out = append(out, a)
		}
	}
	return out
}

// GroupMembers implements AdminQueries. On AD the server follows nesting
// (LDAP_MATCHING_RULE_IN_CHAIN); on OpenLDAP the static groups are walked
// as for the admin group (walkGroup), and members outside base_dn are left
// out, as FindUser would not find them. More than 10,000 members (on
// OpenLDAP: members and nested groups) is ErrTooMany.
func (c *Client) GroupMembers(ctx context.Context, group string) ([]User, error) {
	group = strings.TrimSpace(group)
	if err := checkInput("group members", "group", group); err != nil {
		return nil, err
	}
	var users []User
	err := c.run(ctx, "group_members", func(conn *ldap.Conn) error {
		users = nil // pool.do may run this twice
		dn, err := c.findGroup(ctx, conn, group)
		if err != nil {
			return err
		}
		if _, ok := c.dialect.(*adDialect); ok {
			var limited bool
			users, limited, err = c.listUsers(ctx, conn, "group members", c.cfg.BaseDN, maxListEntries+1,
				adUsersInChainFilter(c.cfg.EffectiveUserFilter(), dn))
			if err != nil {
				return err
			}
			return c.checkListSize("group members", len(users), limited)
		}
		now := c.now()
		_, truncated, err := c.walkGroup(ctx, conn, dn, "", func(e *ldap.Entry) {
			if c.inBase(e.DN) {
				users = append(users, c.dialect.user(conn, e, now))
			}
		})
		if err != nil {
			return err
		}
		if truncated {
			return fmt.Errorf("group members: %q has more than %d members and nested groups: %w", dn, maxGroupEntries, ErrTooMany)
		}
		return c.checkListSize("group members", len(users), false)
	})
	if err != nil {
		return nil, err
	}
	sortUsers(users)
	return users, nil
}

// findGroup returns the DN of group: a DN (inside base_dn) that names a
// group, or the one group under base_dn with that name.
func (c *Client) findGroup(ctx context.Context, conn *ldap.Conn, group string) (string, error) {
	class, nameAttrs := groupFilter, []string{"cn"}
	if _, ok := c.dialect.(*adDialect); ok {
		class, nameAttrs = adGroupFilter, []string{"cn", "sAMAccountName"}
	}
	if isDN(group) {
		if err := c.checkInBase("group members", group); err != nil {
			return "", err
		}
		e, err := c.readBaseEntry(ctx, conn, "read group", group, class, []string{"1.1"})
		if err != nil {
			return "", err
		}
		if e == nil {
			return "", fmt.Errorf("group members: %q: no such group: %w", group, ErrNotFound)
		}
		return e.DN, nil
	}
	e, err := c.searchOne(ctx, conn, fmt.Sprintf("group members: group named %q", group),
		anyAttrFilter(class, nameAttrs, group, false), []string{"1.1"})
	if err != nil {
		return "", err
	}
	return e.DN, nil
}

// UsersUnder implements AdminQueries. More than 10,000 users is ErrTooMany.
func (c *Client) UsersUnder(ctx context.Context, base string) ([]User, error) {
	base = strings.TrimSpace(base)
	if err := checkInput("users under", "base", base); err != nil {
		return nil, err
	}
	if err := c.checkInBase("users under", base); err != nil {
		return nil, err
	}
	var users []User
	err := c.run(ctx, "users_under", func(conn *ldap.Conn) error {
		var limited bool
		var err error
		users, limited, err = c.listUsers(ctx, conn, "users under", base, maxListEntries+1, c.cfg.EffectiveUserFilter())
		if err != nil {
			return err
		}
		return c.checkListSize("users under", len(users), limited)
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, fmt.Errorf("users under: %q: no such entry: %w", base, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	sortUsers(users)
	return users, nil
}

// LockedUsers implements AdminQueries with the lockout scanner's full
// sweep. A permanent OpenLDAP lock has no lock time of its own; its
// LockoutTime is when the entry last changed, as the scanner reports it.
func (c *Client) LockedUsers(ctx context.Context) ([]User, error) {
	r, err := c.scanLockouts(ctx, nil, true)
	if err != nil {
		return nil, err
	}
	if r.truncated {
		return nil, fmt.Errorf("locked users: the directory's size limit stopped the search after %d entries; %s: %w",
			r.read, sizeLimitFix, ErrTooMany)
	}
	users := make([]User, 0, len(r.events))
	for _, ev := range r.events {
		u := ev.User
		if u.LockoutTime.IsZero() {
			u.LockoutTime = ev.LockedAt
		}
		users = append(users, u)
	}
	sortUsers(users)
	return users, nil
}

// listUsers reads the users (Users as FindUser builds them) that match
// filter in the subtree of base, at most sizeLimit of them; limited says the
// search stopped early (see pagedSearchIn). A missing base_dn is
// ErrUnavailable (a configuration problem); any other missing base keeps
// the server's noSuchObject in the chain.
func (c *Client) listUsers(ctx context.Context, conn *ldap.Conn, op, base string, sizeLimit int, filter string) ([]User, bool, error) {
	var users []User
	now := c.now()
	_, limited, err := c.pagedSearchIn(ctx, conn, op, base, sizeLimit, filter, c.dialect.attributes(), func(e *ldap.Entry) {
		users = append(users, c.dialect.user(conn, e, now))
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) && base == c.cfg.BaseDN {
		return nil, false, fmt.Errorf("%s: base DN %q does not exist: %w", op, c.cfg.BaseDN, ErrUnavailable)
	}
	return users, limited, err
}

// checkListSize turns a list of n users that is longer than maxListEntries,
// or that the server's size limit cut short (limited), into ErrTooMany.
func (c *Client) checkListSize(op string, n int, limited bool) error {
	switch {
	case n > maxListEntries:
		return fmt.Errorf("%s: more than %d users: %w", op, maxListEntries, ErrTooMany)
	case limited:
		c.warnSizeLimit(op, n)
		return fmt.Errorf("%s: the directory's size limit stopped the search after %d entries; %s: %w",
			op, n, sizeLimitFix, ErrTooMany)
	}
	return nil
}

// checkInput refuses an empty value, or one that cannot become part of a
// filter (control characters, invalid UTF-8), with ErrInvalidInput.
func checkInput(op, what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: empty %s: %w", op, what, ErrInvalidInput)
	case !validValue(v):
		return fmt.Errorf("%s: %s holds control characters or invalid UTF-8: %w", op, what, ErrInvalidInput)
	}
	return nil
}

// checkInBase refuses dn, with ErrInvalidInput, unless it is a DN that is
// base_dn or lies under it.
func (c *Client) checkInBase(op, dn string) error {
	if !c.inBase(dn) {
		return fmt.Errorf("%s: %q is not a DN inside directory.base_dn %q: %w", op, dn, c.cfg.BaseDN, ErrInvalidInput)
	}
	return nil
}

// isDN reports whether s is a distinguished name: it parses, and every
// attribute type is a name or an OID. A group name such as "R&D" is not.
func isDN(s string) bool {
	_, ok := parseDN(s)
	return ok
}

func parseDN(s string) (*ldap.DN, bool) {
	p, err := ldap.ParseDN(s)
	if err != nil || len(p.RDNs) == 0 {
		return nil, false
	}
	for _, rdn := range p.RDNs {
		for _, a := range rdn.Attributes {
			if !validAttributeName(a.Type) {
				return nil, false
			}
		}
	}
	return p, true
}

// inBase reports whether dn is a DN that is base_dn or lies under it.
func (c *Client) inBase(dn string) bool {
	p, ok := parseDN(dn)
	if !ok {
		return false
	}
	base, err := ldap.ParseDN(c.cfg.BaseDN)
	if err != nil {
		return false
	}
	return base.EqualFold(p) || base.AncestorOfFold(p)
}

// sortUsers sorts by username (case-insensitively, then exactly), then DN.
func sortUsers(users []User) {
	slices.SortFunc(users, func(a, b User) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)),
			strings.Compare(a.Username, b.Username), strings.Compare(a.DN, b.DN))
	})
}
