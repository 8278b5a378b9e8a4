package directory

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// OpenLDAP with the ppolicy overlay.
const (
	attrLockedTime   = "pwdAccountLockedTime"
	attrPwdReset     = "pwdReset"
	attrPolicyEntry  = "pwdPolicySubentry"
	permanentLockout = "000001010000Z" // ppolicy's "locked until an admin unlocks"

	ppolicyAccountLocked    = 1
	ppolicyChangeAfterReset = 2
	ppolicyPasswordExpired  = 0
)

type openldapDialect struct {
	cfg Config

	mu        sync.Mutex
	durations map[string]time.Duration // policy DN ("" = the only policy found) → pwdLockoutDuration
}

func (d *openldapDialect) attributes() []string {
	return []string{d.cfg.EffectiveUsernameAttribute(), "cn", "displayName", d.cfg.MailAttribute, d.cfg.MobileAttribute,
		attrLockedTime, attrPwdReset, attrPolicyEntry}
}

func (d *openldapDialect) user(conn *ldap.Conn, e *ldap.Entry, now time.Time) User {
	u := User{
		DN:          e.DN,
		Username:    e.GetAttributeValue(d.cfg.EffectiveUsernameAttribute()),
		DisplayName: e.GetAttributeValue("displayName"),
		Mail:        e.GetAttributeValue(d.cfg.MailAttribute),
		Mobile:      e.GetAttributeValue(d.cfg.MobileAttribute),
		MustChange:  strings.EqualFold(e.GetAttributeValue(attrPwdReset), "TRUE"),
	}
	if u.DisplayName == "" {
		u.DisplayName = e.GetAttributeValue("cn")
	}
	if locked := e.GetAttributeValue(attrLockedTime); locked != "" {
		if locked == permanentLockout {
			u.Locked = true
		} else if t, err := parseGeneralizedTime(locked); err == nil {
			// The attribute outlives an expired lockout until the next good
			// bind, so compare with the policy's duration.
			dur := d.lockoutDuration(conn, e.GetAttributeValue(attrPolicyEntry))
			if dur <= 0 || now.Before(t.Add(dur)) {
				u.Locked, u.LockoutTime = true, t
			}
		} else {
			u.Locked = true
		}
	}
	return u
}

// lockoutDuration returns pwdLockoutDuration of the user's policy: the
// pwdPolicySubentry when set, else the only pwdPolicy entry under the base.
// 0 means "until unlocked" (or unknown, which is treated the same way).
func (d *openldapDialect) lockoutDuration(conn *ldap.Conn, policyDN string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.durations[policyDN]; ok {
		return v
	}
	base, scope, filter := d.cfg.BaseDN, ldap.ScopeWholeSubtree, "(objectClass=pwdPolicy)"
	if policyDN != "" {
		base, scope = policyDN, ldap.ScopeBaseObject
	}
	res, err := conn.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 2, 0, false,
		filter, []string{"pwdLockoutDuration"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return 0 // unknown: do not cache, treat as locked while the attribute is there
	}
	secs, _ := strconv.Atoi(res.Entries[0].GetAttributeValue("pwdLockoutDuration"))
	if d.durations == nil {
		d.durations = map[string]time.Duration{}
	}
	d.durations[policyDN] = time.Duration(secs) * time.Second
	return d.durations[policyDN]
}

func parseGeneralizedTime(s string) (time.Time, error) {
	for _, layout := range []string{"20060102150405Z", "20060102150405.999999Z", "20060102150405-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a generalized time: %q", s)
}

func (d *openldapDialect) setPassword(conn *ldap.Conn, u User, password string, opt SetPasswordOptions) error {
	// RFC 3062 as the service account: ppolicy checks quality and history,
	// sets pwdReset when pwdMustChange is on, and clears a lockout.
	if _, err := conn.PasswordModify(ldap.NewPasswordModifyRequest(u.DN, "", password)); err != nil {
		return classify("set password", err)
	}
	m := ldap.NewModifyRequest(u.DN, nil)
	if opt.MustChange {
		m.Replace(attrPwdReset, []string{"TRUE"})
	} else {
		m.Delete(attrPwdReset, nil)
	}
	if err := conn.Modify(m); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
		return fmt.Errorf("%w: must-change flag: %w", ErrPartial, classify("set password flags", err))
	}
	if opt.Unlock {
		if err := d.unlock(conn, u); err != nil {
			return fmt.Errorf("%w: unlock: %w", ErrPartial, err)
		}
	}
	return nil
}

func (d *openldapDialect) unlock(conn *ldap.Conn, u User) error {
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Delete(attrLockedTime, nil)
	err := conn.Modify(m)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
		return nil // not locked
	}
	return classify("unlock", err)
}

func (d *openldapDialect) bindRequest(dn, password string) *ldap.SimpleBindRequest {
	return &ldap.SimpleBindRequest{Username: dn, Password: password,
		Controls: []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}}
}

func (d *openldapDialect) bindError(res *ldap.SimpleBindResult, err error) error {
	var pp *ldap.ControlBeheraPasswordPolicy
	if res != nil {
		pp, _ = ldap.FindControl(res.Controls, ldap.ControlTypeBeheraPasswordPolicy).(*ldap.ControlBeheraPasswordPolicy)
	}
	if pp != nil {
		switch pp.Error {
		case ppolicyAccountLocked:
			return fmt.Errorf("bind: %w: %s", ErrLocked, pp.ErrorString)
		case ppolicyChangeAfterReset:
			return fmt.Errorf("bind: %w: %s", ErrMustChange, pp.ErrorString)
		case ppolicyPasswordExpired:
			return fmt.Errorf("bind: %w: %s", ErrPasswordExpired, pp.ErrorString)
		}
	}
	return classify("bind", err)
}

// passwordPolicy: the user's pwdPolicySubentry, else the only pwdPolicy
// entry under the base (as lockoutDuration).
func (d *openldapDialect) passwordPolicy(conn *ldap.Conn, u User) (PasswordPolicy, error) {
	e, err := readOne(conn, u.DN, attrPolicyEntry)
	if err != nil {
		return PasswordPolicy{}, err
	}
	attrs := []string{"pwdMinLength", "pwdInHistory", "pwdCheckQuality"}
	var p *ldap.Entry
	if dn := attrOf(e, attrPolicyEntry); dn != "" {
		p, err = readOne(conn, dn, attrs...)
	} else {
		var res *ldap.SearchResult
		res, err = conn.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
			"(objectClass=pwdPolicy)", attrs, nil))
		if err != nil {
			err = classify("read the password policy", err)
		} else if len(res.Entries) == 1 {
			p = res.Entries[0]
		}
	}
	if err != nil || p == nil {
		return PasswordPolicy{}, err
	}
	return PasswordPolicy{MinLength: intOf(p, "pwdMinLength"), History: intOf(p, "pwdInHistory"),
		Quality: intOf(p, "pwdCheckQuality"), Source: p.DN}, nil
}
