package directory

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Password expiry, for the expiry reminders.
//
// Active Directory computes it: msDS-UserPasswordExpiryTimeComputed is a
// constructed attribute (asked for by name, never filtered on) holding a
// FILETIME; 0x7FFFFFFFFFFFFFFF means never (DONT_EXPIRE_PASSWORD, or a
// domain maxPwdAge of 0) and 0 a password that must be changed at next
// logon. Samba computes it too, from pwdLastSet and the domain's (or a fine
// grained policy's) maxPwdAge.
//
// OpenLDAP does not: the expiry is pwdChangedTime plus pwdMaxAge of the
// user's policy, which is the entry named by pwdPolicySubentry or else the
// overlay's default (olcPPolicyDefault). The default lives in cn=config,
// which a service account cannot read, so as for the lockout duration the
// only pwdPolicy entry under the base is taken for it. A user without
// pwdPolicySubentry in a directory with several policies has an unknown
// expiry and is left out (with a warning naming the fix). ppolicy writes
// pwdChangedTime on every password change, but on an add only when the
// policy ages passwords; an entry without it never expires for ppolicy
// either, and is reported as never expiring.

// PasswordExpiry is when one user's password expires.
type PasswordExpiry struct {
	Username string // as the directory spells it
	DN       string
	// Expires is when the password expires; zero when it never does.
	Expires time.Time
	// MustChange: the password must be changed at next logon (AD
	// pwdLastSet=0, OpenLDAP pwdReset=TRUE); Expires is then zero.
	MustChange bool
}

// PasswordExpiryReader reads password expiry dates.
type PasswordExpiryReader interface {
	// PasswordExpiries returns the expiry of each of usernames (matched
	// case-insensitively) that the directory knows. Users not found, and
	// users whose expiry cannot be known, are left out.
	PasswordExpiries(ctx context.Context, usernames []string) ([]PasswordExpiry, error)
}

var _ PasswordExpiryReader = (*Client)(nil)

const (
	adExpiryAttr = "msDS-UserPasswordExpiryTimeComputed"
	adNever      = math.MaxInt64 // msDS-UserPasswordExpiryTimeComputed: never expires

	attrPwdChangedTime = "pwdChangedTime"
	attrPwdMaxAge      = "pwdMaxAge"
)

// expiryBatch is how many usernames one search asks for.
const expiryBatch = 50

// PasswordExpiries implements PasswordExpiryReader with one search per
// batch of usernames; usernames that cannot be part of a filter (control
// characters, invalid UTF-8) are left out.
func (c *Client) PasswordExpiries(ctx context.Context, usernames []string) ([]PasswordExpiry, error) {
	valid := make([]string, 0, len(usernames))
	for _, u := range usernames {
		if strings.TrimSpace(u) != "" && validValue(u) {
			valid = append(valid, u)
		}
	}
	var out []PasswordExpiry
	policies := map[string]policyAge{} // policy DN ("" = the default) → pwdMaxAge, for this call
	unknown := 0
	for start := 0; start < len(valid); start += expiryBatch {
		batch := valid[start:min(start+expiryBatch, len(valid))]
		err := c.pool.do(ctx, func(conn *ldap.Conn) error {
			got, skipped, err := c.expiryBatch(ctx, conn, batch, policies)
			if err == nil {
				out, unknown = append(out, got...), unknown+skipped
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if unknown > 0 {
		why := "the directory does not compute " + adExpiryAttr + " (Windows Server 2008 and later, and Samba, do)"
		if c.cfg.Dialect == DialectOpenLDAP {
			why = "these users have no pwdPolicySubentry and the directory holds several pwdPolicy entries, " +
				"so the one that applies cannot be told; set pwdPolicySubentry on them"
		}
		c.log.Warn("password expiry unknown; no expiry reminders for these users: "+why, "users", unknown)
	}
	return out, nil
}

// expiryBatch reads the expiry of the users named in batch; skipped counts
// those whose expiry cannot be known.
func (c *Client) expiryBatch(ctx context.Context, conn *ldap.Conn, batch []string, policies map[string]policyAge) (out []PasswordExpiry, skipped int, err error) {
	userAttr := c.cfg.EffectiveUsernameAttribute()
	attrs := []string{userAttr, adExpiryAttr, "pwdLastSet"}
	if c.cfg.Dialect == DialectOpenLDAP {
		attrs = []string{userAttr, attrPwdChangedTime, attrPolicyEntry, attrPwdReset}
	}
	var entries []*ldap.Entry
	_, _, err = c.pagedSearch(ctx, conn, "read password expiry", userAnyOfFilter(c.cfg.EffectiveUserFilter(), userAttr, batch),
		attrs, func(e *ldap.Entry) { entries = append(entries, e) })
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		pe := PasswordExpiry{Username: e.GetAttributeValue(userAttr), DN: e.DN}
		var known bool
		if c.cfg.Dialect == DialectOpenLDAP {
			known, err = c.openldapExpiry(ctx, conn, e, &pe, policies)
			if err != nil {
				return nil, 0, err
			}
		} else {
			known = adExpiry(e, &pe)
		}
		if !known {
			skipped++
			continue
		}
		out = append(out, pe)
	}
	return out, skipped, nil
}

// adExpiry fills pe from the computed attribute; false when the server did
// not compute it.
func adExpiry(e *ldap.Entry, pe *PasswordExpiry) bool {
	raw := e.GetAttributeValue(adExpiryAttr)
	ticks, err := strconv.ParseInt(raw, 10, 64)
	switch {
	case err != nil || ticks < 0:
		return false
	case ticks == adNever:
	case ticks == 0 || e.GetAttributeValue("pwdLastSet") == "0":
		pe.MustChange = true
	default:
		pe.Expires = fileTime(raw)
	}
	return true
}

// policyAge is a policy's pwdMaxAge; known is false when the policy that
// applies cannot be told.
type policyAge struct {
	maxAge time.Duration
	known  bool
}

// openldapExpiry fills pe from pwdChangedTime and the policy's pwdMaxAge;
// false when the policy that applies cannot be told.
func (c *Client) openldapExpiry(ctx context.Context, conn *ldap.Conn, e *ldap.Entry, pe *PasswordExpiry, policies map[string]policyAge) (bool, error) {
	if strings.EqualFold(e.GetAttributeValue(attrPwdReset), "TRUE") {
		pe.MustChange = true
		return true, nil
	}
	policyDN := e.GetAttributeValue(attrPolicyEntry)
	p, ok := policies[policyDN]
	if !ok {
		var err error
		if p, err = c.readMaxAge(ctx, conn, policyDN); err != nil {
			return false, err
		}
		policies[policyDN] = p
	}
	if !p.known {
		return false, nil
	}
	changed, err := parseGeneralizedTime(e.GetAttributeValue(attrPwdChangedTime))
	if p.maxAge > 0 && err == nil {
		pe.Expires = changed.Add(p.maxAge)
	}
	return true, nil
}

// readMaxAge reads pwdMaxAge of the policy policyDN, or of the default
// policy when policyDN is "": the only pwdPolicy entry under the base (none
// at all means no policy, so no expiry).
func (c *Client) readMaxAge(ctx context.Context, conn *ldap.Conn, policyDN string) (policyAge, error) {
	var entries []*ldap.Entry
	if policyDN != "" {
		e, err := c.readBaseEntry(ctx, conn, "read password policy", policyDN, "(objectClass=pwdPolicy)", []string{attrPwdMaxAge})
		if err != nil {
			return policyAge{}, err
		}
		if e == nil {
			// A dangling subentry: ppolicy then applies no policy at all.
			return policyAge{known: true}, nil
		}
		entries = append(entries, e)
	} else {
		_, limited, err := c.pagedSearchIn(ctx, conn, "find the password policy", c.cfg.BaseDN, 2, "(objectClass=pwdPolicy)",
			[]string{attrPwdMaxAge}, func(e *ldap.Entry) { entries = append(entries, e) })
		if err != nil {
			return policyAge{}, err
		}
		if limited || len(entries) > 1 {
			return policyAge{}, nil
		}
		if len(entries) == 0 {
			return policyAge{known: true}, nil
		}
	}
	secs, err := strconv.ParseInt(entries[0].GetAttributeValue(attrPwdMaxAge), 10, 64)
	if err != nil || secs < 0 {
		secs = 0 // absent: passwords do not age
	}
	return policyAge{maxAge: time.Duration(secs) * time.Second, known: true}, nil
}

// String is for logs and test failures.
func (p PasswordExpiry) String() string {
	switch {
	case p.MustChange:
		return fmt.Sprintf("%s: must change", p.Username)
	case p.Expires.IsZero():
		return fmt.Sprintf("%s: never expires", p.Username)
	}
	return fmt.Sprintf("%s: expires %s", p.Username, p.Expires.UTC().Format(time.RFC3339))
}
