package directory

import (
	"encoding/binary"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// Active Directory specifics (also Samba AD).
const (
	adComputedAttr = "msDS-User-Account-Control-Computed"
	ufLockout      = 0x10 // UF_LOCKOUT in the computed flags
	ufDisabled     = 0x2  // ACCOUNTDISABLE in userAccountControl

	// LDAP_SERVER_POLICY_HINTS_OID and its deprecated predecessor: with it an
	// administrative reset is checked against history like a user change.
	oidPolicyHints           = "1.2.840.113556.1.4.2239"
	oidPolicyHintsDeprecated = "1.2.840.113556.1.4.2066"
)

type adDialect struct {
	cfg Config
	// hints caches the RootDSE answer: 0 unknown, otherwise the OID to send
	// (or "-" when neither is advertised).
	hints atomic.Value
	// netbios caches the domain's NetBIOS name (see netbiosName): nil
	// unknown, "" when the directory does not say.
	netbios atomic.Pointer[string]
}

func (d *adDialect) attributes() []string {
	return []string{d.cfg.EffectiveUsernameAttribute(), "displayName", d.cfg.MailAttribute, d.cfg.MobileAttribute,
		"lockoutTime", adComputedAttr, "pwdLastSet", "userAccountControl", "accountExpires"}
}

func (d *adDialect) user(_ *ldap.Conn, e *ldap.Entry, now time.Time) User {
	computed, _ := strconv.ParseInt(e.GetAttributeValue(adComputedAttr), 10, 64)
	uac, _ := strconv.ParseInt(e.GetAttributeValue("userAccountControl"), 10, 64)
	u := User{
		DN:          e.DN,
		Username:    e.GetAttributeValue(d.cfg.EffectiveUsernameAttribute()),
		DisplayName: e.GetAttributeValue("displayName"),
		Mail:        e.GetAttributeValue(d.cfg.MailAttribute),
		Mobile:      e.GetAttributeValue(d.cfg.MobileAttribute),
		Locked:      computed&ufLockout != 0,
		MustChange:  e.GetAttributeValue("pwdLastSet") == "0",
		Disabled:    uac&ufDisabled != 0,
	}
	if u.Locked {
		u.LockoutTime = fileTime(e.GetAttributeValue("lockoutTime"))
	}
	// accountExpires: 0 or 0x7FFFFFFFFFFFFFFF is "never" (fileTime of the
	// latter overflows to a negative time, hence the check on the value).
	if v := e.GetAttributeValue("accountExpires"); v != "" && v != "0" && v != "9223372036854775807" {
		if at := fileTime(v); !at.IsZero() && !now.Before(at) {
			u.Expired = true
		}
	}
	return u
}

// fileTime converts a Windows FILETIME (100 ns ticks since 1601) to time.
func fileTime(s string) time.Time {
	ticks, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ticks <= 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in ticks
	return time.Unix(0, (ticks-epochDiff)*100).UTC()
}

// EncodeUnicodePwd returns the unicodePwd value for password: the password
// in double quotes, UTF-16LE.
func EncodeUnicodePwd(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return string(b)
}

func (d *adDialect) setPassword(conn *ldap.Conn, u User, password string, opt SetPasswordOptions) error {
	var controls []ldap.Control
	// Only for a chosen password: AD's policy hints also apply the minimum
	// password age, which would refuse a second generated RESET within it.
	if opt.EnforcePolicy {
		if oid := d.policyHints(conn); oid != "" {
			// Value: SEQUENCE { INTEGER 1 } (flags: enforce policy).
			controls = append(controls, ldap.NewControlString(oid, false, "\x30\x03\x02\x01\x01"))
		}
	}
	m := ldap.NewModifyRequest(u.DN, controls)
	m.Replace("unicodePwd", []string{EncodeUnicodePwd(password)})
	if opt.MustChange {
		m.Replace("pwdLastSet", []string{"0"})
	}
	if opt.Unlock {
		m.Replace("lockoutTime", []string{"0"})
	}
	// One modify: the password and both flags change together or not at all.
	return classify("set password", conn.Modify(m))
}

// policyHints reads RootDSE supportedControl once.
func (d *adDialect) policyHints(conn *ldap.Conn) string {
	if v, ok := d.hints.Load().(string); ok {
		if v == "-" {
			return ""
		}
		return v
	}
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"supportedControl"}, nil))
	if err != nil || len(res.Entries) == 0 {
		return "" // try again next time
	}
	found := "-"
	for _, oid := range res.Entries[0].GetAttributeValues("supportedControl") {
		if oid == oidPolicyHints {
			found = oid
			break
		}
		if oid == oidPolicyHintsDeprecated {
			found = oid
		}
	}
	d.hints.Store(found)
	if found == "-" {
		return ""
	}
	return found
}

func (d *adDialect) unlock(conn *ldap.Conn, u User) error {
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Replace("lockoutTime", []string{"0"})
	return classify("unlock", conn.Modify(m))
}

func (d *adDialect) bindRequest(dn, password string) *ldap.SimpleBindRequest {
	return &ldap.SimpleBindRequest{Username: dn, Password: password}
}

func (d *adDialect) bindError(_ *ldap.SimpleBindResult, err error) error {
	return classify("bind", err)
}

// passwordPolicy: the user's resultant PSO (a constructed attribute, read
// on the user), when the service account may read it (Unread when not);
// without one, the policy of the domain (the RootDSE's defaultNamingContext, which base_dn may lie
// under).
func (d *adDialect) passwordPolicy(conn *ldap.Conn, u User) (PasswordPolicy, error) {
	e, err := readOne(conn, u.DN, "msDS-ResultantPSO")
	if err != nil {
		return PasswordPolicy{}, err
	}
	if pso := attrOf(e, "msDS-ResultantPSO"); pso != "" {
		p, err := readOne(conn, pso, "msDS-MinimumPasswordLength", "msDS-PasswordHistoryLength", "msDS-PasswordComplexityEnabled")
		if err == nil && attrOf(p, "msDS-MinimumPasswordLength") != "" {
			return PasswordPolicy{MinLength: intOf(p, "msDS-MinimumPasswordLength"), History: intOf(p, "msDS-PasswordHistoryLength"),
				Complex: strings.EqualFold(attrOf(p, "msDS-PasswordComplexityEnabled"), "TRUE"), Source: pso}, nil
		}
		// Not the domain's rules, which the PSO replaces.
		return PasswordPolicy{Source: pso, Unread: true}, nil
	}
	root, err := readOne(conn, "", "defaultNamingContext")
	if err != nil {
		return PasswordPolicy{}, err
	}
	domain := d.cfg.BaseDN
	if nc := attrOf(root, "defaultNamingContext"); nc != "" {
		domain = nc
	}
	p, err := readOne(conn, domain, "minPwdLength", "pwdHistoryLength", "pwdProperties")
	if err != nil || p == nil {
		return PasswordPolicy{}, err
	}
	return PasswordPolicy{MinLength: intOf(p, "minPwdLength"), History: intOf(p, "pwdHistoryLength"),
		Complex: intOf(p, "pwdProperties")&1 != 0, Source: domain}, nil
}
