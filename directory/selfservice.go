package directory

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Who may use self-service (DESIGN, Security rules: privileged accounts get
// no self-service). CheckSelfService answers at the moment of each act
// (activation, enrollment, RESET, UNLOCK, web reset, phone change); nothing
// is cached, so a user made a Domain Admin after enrolling is refused at
// the next act.
//
// Active Directory: the constructed tokenGroups attribute (read with base
// scope on the user) lists the SID of every group the user belongs to,
// nested and primary group included; the protected groups are recognised
// by their well-known SID or RID, never by name, so a renamed group or
// "Admins du domaine" still counts. The configured groups (admin_group,
// deny_groups, allow_groups) are resolved to their objectSid and compared
// with the same list. OpenLDAP: the static groups are walked from each
// configured group down, as for the admin group (walkGroup).

// SelfServicePolicy is what the `reset:` section says about who may use
// self-service. Its zero value protects privileged accounts.
type SelfServicePolicy struct {
	// AllowPrivileged is reset.protect_privileged: false. Then adminCount,
	// the protected groups and the admin group no longer refuse anyone
	// (deny_groups and allow_groups still do).
	AllowPrivileged bool
	// AllowGroups (DNs or names): when not empty, only their members
	// (nested) may use self-service.
	AllowGroups []string
	// DenyGroups (DNs or names): their members (nested) never may.
	DenyGroups []string
}

// Reason says why an account may not use self-service.
type Reason string

const (
	ReasonProtectedGroup Reason = "protected_group" // a member of Domain Admins, Administrators, ...
	ReasonAdminCount     Reason = "admin_count"     // AD adminCount=1 (protected by AdminSDHolder)
	ReasonAdminGroup     Reason = "admin_group"     // a member of directory.admin_group
	ReasonDenyGroup      Reason = "deny_group"      // a member of one of reset.deny_groups
	ReasonNotAllowed     Reason = "not_allowed"     // in none of reset.allow_groups
)

// ErrNoSelfService matches every *RefusedError.
var ErrNoSelfService = errors.New("this account can't use self-service")

// RefusedError is CheckSelfService's refusal: who, why, and the group
// that decided it (its name; "" for adminCount and allow_groups). It holds
// no secret and may be shown to the admin and written to the audit trail.
type RefusedError struct {
	Username string
	Reason   Reason
	Group    string
}

func (e *RefusedError) Error() string {
	who := e.Username
	if who == "" {
		who = "the account"
	}
	switch e.Reason {
	case ReasonProtectedGroup:
		return fmt.Sprintf("%s is a member of %s: privileged accounts can't use self-service", who, e.Group)
	case ReasonAdminCount:
		return fmt.Sprintf("%s is a protected account (adminCount=1): privileged accounts can't use self-service", who)
	case ReasonAdminGroup:
		return fmt.Sprintf("%s is a member of the admin group %s: privileged accounts can't use self-service", who, e.Group)
	case ReasonDenyGroup:
		return fmt.Sprintf("%s is a member of %s (reset.deny_groups): this account can't use self-service", who, e.Group)
	case ReasonNotAllowed:
		return fmt.Sprintf("%s is in none of reset.allow_groups: this account can't use self-service", who)
	}
	return fmt.Sprintf("%s can't use self-service (%s)", who, e.Reason)
}

func (e *RefusedError) Unwrap() error { return ErrNoSelfService }

// SelfServiceChecker is the one question every self-service act asks.
type SelfServiceChecker interface {
	// CheckSelfService returns nil when u may use self-service now, a
	// *RefusedError when not, or the directory's error (the act must then
	// not go on either).
	CheckSelfService(ctx context.Context, u User) error
}

var _ SelfServiceChecker = (*Client)(nil)

// CheckSelfService implements SelfServiceChecker with the Client's policy
// (Options.SelfService) and directory.admin_group.
func (c *Client) CheckSelfService(ctx context.Context, u User) error {
	if u.DN == "" {
		return fmt.Errorf("check self-service: user has no DN: %w", ErrNotFound)
	}
	var refusal *RefusedError
	err := c.run(ctx, "check_self_service", func(conn *ldap.Conn) error {
		var err error
		refusal, err = c.refusal(ctx, conn, u.DN, c.policy, true)
		return err
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		refusal.Username = u.Username
		return refusal
	}
	return nil
}

// CheckServiceAccount returns a *RefusedError when the service account
// (bind_dn) is itself privileged: adminCount=1, a member of a protected
// group (AD) or of the admin group. check-config warns then: the gateway
// needs reset rights on the user OUs only.
func (c *Client) CheckServiceAccount(ctx context.Context) error {
	var refusal *RefusedError
	err := c.run(ctx, "check_service_account", func(conn *ldap.Conn) error {
		dn := c.cfg.BindDN
		if !looksLikeDN(dn) { // an AD bind as user@domain or DOMAIN\user
			u, err := c.findLogin(ctx, dn)
			if err != nil {
				return err
			}
			dn = u.DN
		}
		var err error
		refusal, err = c.refusal(ctx, conn, dn, SelfServicePolicy{}, false)
		return err
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		refusal.Username = c.cfg.BindDN
		return refusal
	}
	return nil
}

// refusal decides for the entry at dn; withLists adds deny_groups and
// allow_groups to the privileged checks.
func (c *Client) refusal(ctx context.Context, conn *ldap.Conn, dn string, p SelfServicePolicy, withLists bool) (*RefusedError, error) {
	var member func(group resolvedGroup) (bool, error)
	if _, ok := c.dialect.(*adDialect); ok {
		e, err := c.readBaseEntry(ctx, conn, "read token groups", dn, "(objectClass=*)", []string{"adminCount", "tokenGroups"})
		if err != nil {
			return nil, err
		}
		if e == nil {
			return nil, fmt.Errorf("check self-service: %q: no such entry: %w", dn, ErrNotFound)
		}
		var sids []string
		for _, raw := range e.GetRawAttributeValues("tokenGroups") {
			if s, ok := decodeSID(raw); ok {
				sids = append(sids, s)
			}
		}
		if len(sids) == 0 {
			// Every account has at least its primary group (Domain Users):
			// none means the service account may not read tokenGroups, and
			// "no protected group" would be a guess.
			return nil, fmt.Errorf("check self-service: no tokenGroups readable on %q (the service account needs Read tokenGroups, "+
				"e.g. as a member of Windows Authorization Access Group): %w", dn, ErrInsufficientRights)
		}
		if !p.AllowPrivileged {
			for _, sid := range sids {
				if fallback, ok := protectedSID(sid); ok {
					return &RefusedError{Reason: ReasonProtectedGroup, Group: c.sidName(ctx, conn, sid, fallback)}, nil
				}
			}
			if e.GetAttributeValue("adminCount") == "1" {
				return &RefusedError{Reason: ReasonAdminCount}, nil
			}
		}
		member = func(g resolvedGroup) (bool, error) { return slices.Contains(sids, g.sid), nil }
	} else {
		key := normDN(dn)
		member = func(g resolvedGroup) (bool, error) {
			found, _, err := c.walkGroup(ctx, conn, g.dn, key, nil)
			return found, err
		}
	}
	// memberOfAny returns the first of specs that has the entry as a member.
	memberOfAny := func(specs []string, what string) (*resolvedGroup, error) {
		for _, spec := range specs {
			g, err := c.resolveGroup(ctx, conn, spec, what)
			if err != nil {
				return nil, err
			}
			if ok, err := member(g); err != nil || ok {
				return &g, err
			}
		}
		return nil, nil
	}
	if !p.AllowPrivileged && c.cfg.AdminGroup != "" {
		g, err := memberOfAny([]string{c.cfg.AdminGroup}, "directory.admin_group")
		if err != nil || g != nil {
			return refusedBy(ReasonAdminGroup, g), err
		}
	}
	if !withLists {
		return nil, nil
	}
	g, err := memberOfAny(p.DenyGroups, "reset.deny_groups")
	if err != nil || g != nil {
		return refusedBy(ReasonDenyGroup, g), err
	}
	if len(p.AllowGroups) == 0 {
		return nil, nil
	}
	g, err = memberOfAny(p.AllowGroups, "reset.allow_groups")
	if err != nil || g != nil {
		return nil, err
	}
	return &RefusedError{Reason: ReasonNotAllowed}, nil
}

// refusedBy is the refusal for reason decided by g; nil when g is.
func refusedBy(reason Reason, g *resolvedGroup) *RefusedError {
	if g == nil {
		return nil
	}
	return &RefusedError{Reason: reason, Group: g.name}
}

// resolvedGroup is a configured group as the directory names it.
type resolvedGroup struct{ dn, name, sid string }

// resolveGroup finds spec (a DN, or a group name: cn, or AD
// sAMAccountName, under base_dn). A group that does not exist is an error:
// a configuration mistake must not pass for "no member".
func (c *Client) resolveGroup(ctx context.Context, conn *ldap.Conn, spec, what string) (resolvedGroup, error) {
	class, nameAttrs := groupFilter, []string{"cn"}
	_, ad := c.dialect.(*adDialect)
	if ad {
		class, nameAttrs = adGroupFilter, []string{"cn", "sAMAccountName"}
	}
	attrs := []string{"cn", "objectSid"}
	var e *ldap.Entry
	var err error
	if looksLikeDN(spec) {
		e, err = c.readBaseEntry(ctx, conn, "read "+what, spec, class, attrs)
		if err == nil && e == nil {
			err = fmt.Errorf("%s %q: no such group: %w", what, spec, ErrNotFound)
		}
	} else {
		e, err = c.searchOne(ctx, conn, fmt.Sprintf("%s: group named %q", what, spec), anyAttrFilter(class, nameAttrs, spec, false), attrs)
	}
	if err != nil {
		return resolvedGroup{}, err
	}
	g := resolvedGroup{dn: e.DN, name: e.GetAttributeValue("cn")}
	if g.name == "" {
		g.name = spec
	}
	if ad {
		sid, ok := decodeSID(e.GetRawAttributeValue("objectSid"))
		if !ok {
			return resolvedGroup{}, fmt.Errorf("%s %q: the group has no readable objectSid: %w", what, spec, ErrUnavailable)
		}
		g.sid = sid
	}
	return g, nil
}

// sidName is the name (cn) of the group whose objectSid is sid, for the
// admin's reason; fallback (the group's well-known English name) when it
// cannot be read.
func (c *Client) sidName(ctx context.Context, conn *ldap.Conn, sid, fallback string) string {
	raw, ok := encodeSID(sid)
	if !ok {
		return fallback
	}
	e, err := c.searchOne(ctx, conn, "name protected group", sidFilter(raw), []string{"cn"})
	if err != nil || e.GetAttributeValue("cn") == "" {
		return fallback
	}
	return e.GetAttributeValue("cn")
}

// protectedRIDs are the domain groups that administer the domain or the
// forest; protectedBuiltin the builtin groups (S-1-5-32-RID).
var (
	protectedRIDs    = map[uint32]string{512: "Domain Admins", 518: "Schema Admins", 519: "Enterprise Admins"}
	protectedBuiltin = map[uint32]string{544: "Administrators", 548: "Account Operators", 549: "Server Operators",
		550: "Print Operators", 551: "Backup Operators"}
)

// protectedSID reports whether sid (S-1-...) is a protected group, with
// its well-known name. Domain RIDs count in any domain of the forest
// (Enterprise and Schema Admins live in the root domain).
func protectedSID(sid string) (string, bool) {
	parts := strings.Split(sid, "-")
	if len(parts) < 4 || parts[0] != "S" || parts[1] != "1" || parts[2] != "5" {
		return "", false
	}
	rid64, err := strconv.ParseUint(parts[len(parts)-1], 10, 32)
	if err != nil {
		return "", false
	}
	rid := uint32(rid64)
	switch {
	case parts[3] == "32" && len(parts) == 5:
		name, ok := protectedBuiltin[rid]
		return name, ok
	case parts[3] == "21" && len(parts) == 8:
		name, ok := protectedRIDs[rid]
		return name, ok
	}
	return "", false
}

// decodeSID reads a binary SID (revision, count, 48-bit authority, count
// little-endian 32-bit sub-authorities) as S-1-5-21-...
func decodeSID(b []byte) (string, bool) {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return "", false
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]); i++ {
		fmt.Fprintf(&s, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return s.String(), true
}

// encodeSID is decodeSID's inverse.
func encodeSID(sid string) ([]byte, bool) {
	parts := strings.Split(sid, "-")
	if len(parts) < 3 || parts[0] != "S" || len(parts)-3 > 15 {
		return nil, false
	}
	rev, err1 := strconv.ParseUint(parts[1], 10, 8)
	auth, err2 := strconv.ParseUint(parts[2], 10, 48)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	b := []byte{byte(rev), byte(len(parts) - 3)}
	var a [8]byte
	binary.BigEndian.PutUint64(a[:], auth)
	b = append(b, a[2:]...)
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, false
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, true
}

// validate checks the group names and DNs; each error names its key.
func (p SelfServicePolicy) validate() error {
	var errs []error
	for _, list := range []struct {
		key   string
		specs []string
	}{{"reset.allow_groups", p.AllowGroups}, {"reset.deny_groups", p.DenyGroups}} {
		for i, g := range list.specs {
			if err := ValidateGroupSpec(g); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", list.key, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ValidateGroupSpec checks one entry of reset.allow_groups or
// reset.deny_groups: a distinguished name, or a group name.
func ValidateGroupSpec(g string) error {
	switch {
	case strings.TrimSpace(g) == "":
		return errors.New("empty group: give a DN or a group name")
	case g != strings.TrimSpace(g):
		return fmt.Errorf("%q has leading or trailing spaces", g)
	case !validValue(g):
		return fmt.Errorf("%q holds control characters or invalid UTF-8", g)
	case strings.Contains(g, "=") && !looksLikeDN(g):
		return fmt.Errorf("%q is neither a distinguished name nor a group name", g)
	case looksLikeDN(g):
		if _, err := ldap.ParseDN(g); err != nil {
			return fmt.Errorf("%q is not a valid distinguished name: %v", g, err)
		}
	}
	return nil
}
