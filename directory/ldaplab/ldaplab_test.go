package ldaplab_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// unicodePwd encodes an AD password value (quoted, UTF-16LE).
func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return string(b)
}

func bindError(t *testing.T, err error) *ldaplab.BindError {
	t.Helper()
	var be *ldaplab.BindError
	if !errors.As(err, &be) {
		t.Fatalf("want *ldaplab.BindError, got %T %v", err, err)
	}
	return be
}

func wantCode(t *testing.T, err error, code uint16) {
	t.Helper()
	if !ldap.IsErrorWithCode(err, code) {
		t.Fatalf("want LDAP result %d, got %v", code, err)
	}
}

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"alice", "A Very-Long_Prefix With Spaces", "", "ÉCOLE"} {
		for range 100 {
			n := ldaplab.UniqueName(prefix)
			if len(n) > 20 || n != strings.ToLower(n) || strings.ContainsAny(n, " _É") {
				t.Fatalf("UniqueName(%q) = %q", prefix, n)
			}
			if seen[n] {
				t.Fatalf("UniqueName(%q) repeated %q", prefix, n)
			}
			seen[n] = true
		}
	}
}

// TestSameServer: concurrent first callers share one server per kind.
func TestSameServer(t *testing.T) {
	for _, kind := range []struct {
		start func() (*ldaplab.Server, error)
		need  func(testing.TB) *ldaplab.Server
	}{{ldaplab.StartSamba, ldaplab.Samba}, {ldaplab.StartOpenLDAP, ldaplab.OpenLDAP}} {
		var wg sync.WaitGroup
		got := make([]*ldaplab.Server, 4)
		for i := range got {
			wg.Go(func() { got[i], _ = kind.start() })
		}
		wg.Wait()
		s := kind.need(t) // skips or fails here when the server cannot start
		for _, g := range got {
			if g != s {
				t.Fatalf("servers differ: %p vs %p", g, s)
			}
		}
	}
}

func TestStartTLS(t *testing.T) {
	for _, s := range []*ldaplab.Server{ldaplab.Samba(t), ldaplab.OpenLDAP(t)} {
		c, err := ldap.DialURL(s.StartTLSURL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(s.TLSConfig()); err != nil {
			t.Fatalf("%s: StartTLS: %v", s.Dialect, err)
		}
		if err := c.Bind(s.ServiceDN, s.ServicePassword); err != nil {
			t.Fatalf("%s: service bind: %v", s.Dialect, err)
		}
	}
}

func TestSamba(t *testing.T) {
	s := ldaplab.Samba(t)
	if s.Dialect != ldaplab.DialectAD {
		t.Fatalf("dialect %q", s.Dialect)
	}
	name := s.UniqueName("alice")
	dn := s.AddUser(t, ldaplab.UserSpec{Username: name, Password: "Alice#Pass1", GivenName: "Alice",
		Surname: "Example", DisplayName: "Alice Example", Mail: name + "@example.com", Mobile: "+15555550101"})

	if err := s.BindErr(dn, "Alice#Pass1"); err != nil {
		t.Fatalf("bind with the right password: %v", err)
	}
	if err := s.BindErr(name+"@sspr.test", "Alice#Pass1"); err != nil {
		t.Fatalf("bind with the UPN: %v", err)
	}
	if be := bindError(t, s.BindErr(dn, "Wrong#Pass1")); be.ResultCode != 49 || be.ADCode != "52e" {
		t.Fatalf("wrong password: %v", be)
	}
	attrs := s.AdminConn(t)
	res, err := attrs.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=user)", []string{"mobile", "mail", "givenName", "sn", "displayName"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("mobile") != "+15555550101" ||
		res.Entries[0].GetAttributeValue("sn") != "Example" {
		t.Fatalf("user attributes: %v %+v", err, res)
	}

	s.LockOut(t, dn)
	if be := bindError(t, s.BindErr(dn, "Alice#Pass1")); be.ADCode != "775" {
		t.Fatalf("locked account, right password: %v", be)
	}

	// The product's account: a delegated service account, not an admin.
	svc := s.Conn(t, s.ServiceDN, s.ServicePassword)
	reset := ldap.NewModifyRequest(dn, nil)
	reset.Replace("unicodePwd", []string{unicodePwd("Reset#Pass2")})
	reset.Replace("pwdLastSet", []string{"0"})
	if err := svc.Modify(reset); err != nil {
		t.Fatalf("service account reset: %v", err)
	}
	if be := bindError(t, s.BindErr(dn, "Reset#Pass2")); be.ADCode != "775" {
		t.Fatalf("a reset must not unlock on AD: %v", be)
	}
	unlock := ldap.NewModifyRequest(dn, nil)
	unlock.Replace("lockoutTime", []string{"0"})
	if err := svc.Modify(unlock); err != nil {
		t.Fatalf("service account unlock: %v", err)
	}
	if s.Locked(t, dn) {
		t.Fatal("still locked after lockoutTime=0")
	}
	if be := bindError(t, s.BindErr(dn, "Reset#Pass2")); be.ADCode != "773" {
		t.Fatalf("must change after reset with pwdLastSet=0: %v", be)
	}
	if be := bindError(t, s.BindErr(dn, "Alice#Pass1")); be.ADCode != "52e" {
		t.Fatalf("the old password must stop working at once: %v", be)
	}

	// Policy applies to the service account's resets.
	short := ldap.NewModifyRequest(dn, nil)
	short.Replace("unicodePwd", []string{unicodePwd("Ab1#")})
	wantCode(t, svc.Modify(short), ldap.LDAPResultConstraintViolation)

	// Delegation is limited to the users OU and to password attributes.
	admin := ldap.NewModifyRequest(s.AdminDN, nil)
	admin.Replace("unicodePwd", []string{unicodePwd("Owned#Pass3")})
	wantCode(t, svc.Modify(admin), ldap.LDAPResultInsufficientAccessRights)
	mobile := ldap.NewModifyRequest(dn, nil)
	mobile.Replace("mobile", []string{"+15555550199"})
	wantCode(t, svc.Modify(mobile), ldap.LDAPResultInsufficientAccessRights)
}

func TestSambaNestedAdminGroup(t *testing.T) {
	s := ldaplab.Samba(t)
	if err := s.BindErr(s.HelpdeskDN, s.HelpdeskPassword); err != nil {
		t.Fatalf("helpdesk bind: %v", err)
	}
	c := s.Conn(t, s.ServiceDN, s.ServicePassword)
	// LDAP_MATCHING_RULE_IN_CHAIN resolves Helpdesk > Tier2 > helpdeskadmin.
	res, err := c.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false,
		"(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(s.AdminGroupDN)+"))",
		[]string{"sAMAccountName"}, nil))
	if err != nil || len(res.Entries) != 1 || !strings.EqualFold(res.Entries[0].DN, s.HelpdeskDN) {
		t.Fatalf("nested members of %s: %v %+v", s.AdminGroupDN, err, res)
	}
}

func TestOpenLDAP(t *testing.T) {
	s := ldaplab.OpenLDAP(t)
	if s.Dialect != ldaplab.DialectOpenLDAP {
		t.Fatalf("dialect %q", s.Dialect)
	}
	dn := s.AddUser(t, ldaplab.UserSpec{Password: "bob-pass-123", GivenName: "Bob", Surname: "Example",
		Mail: "bob@example.org", Mobile: "+15555550102"})
	if err := s.BindErr(dn, "bob-pass-123"); err != nil {
		t.Fatalf("bind with the right password: %v", err)
	}
	admin := s.AdminConn(t)
	res, err := admin.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", []string{"userPassword", "mobile"}, nil))
	if err != nil || len(res.Entries) != 1 || !strings.HasPrefix(res.Entries[0].GetAttributeValue("userPassword"), "{SSHA}") ||
		res.Entries[0].GetAttributeValue("mobile") != "+15555550102" {
		t.Fatalf("user entry (password hashed by ppolicy?): %v %+v", err, res.Entries)
	}

	s.LockOut(t, dn)
	be := bindError(t, s.BindErr(dn, "bob-pass-123"))
	if be.ResultCode != 49 || be.PPolicyText != "Account locked" || !strings.Contains(be.Error(), "Account locked") {
		t.Fatalf("locked account, right password: %v", be)
	}

	svc := s.Conn(t, s.ServiceDN, s.ServicePassword)
	// ppolicy applies to the service account (it would not to the rootdn).
	_, err = svc.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", "abc"))
	wantCode(t, err, ldap.LDAPResultConstraintViolation)

	unlock := ldap.NewModifyRequest(dn, nil)
	unlock.Delete("pwdAccountLockedTime", nil)
	if err := svc.Modify(unlock); err != nil {
		t.Fatalf("service account unlock: %v", err)
	}
	if s.Locked(t, dn) {
		t.Fatal("still locked after deleting pwdAccountLockedTime")
	}
	if _, err := svc.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", "bob-reset-456")); err != nil {
		t.Fatalf("service account Password Modify: %v", err)
	}
	// Unlike the rootdn's, the service account's reset does not set pwdReset
	// although pwdMustChange is TRUE: the product sets it itself.
	if err := s.BindErr(dn, "bob-reset-456"); err != nil {
		t.Fatalf("bind after the service account's reset: %v", err)
	}
	mustChange := ldap.NewModifyRequest(dn, nil)
	mustChange.Replace("pwdReset", []string{"TRUE"})
	if err := svc.Modify(mustChange); err != nil {
		t.Fatalf("service account sets pwdReset: %v", err)
	}
	be = bindError(t, s.BindErr(dn, "bob-reset-456"))
	if be.ResultCode != 0 || be.PPolicyText != "Password must be changed" {
		t.Fatalf("must change: %v", be)
	}
	if be := bindError(t, s.BindErr(dn, "bob-pass-123")); be.ResultCode != 49 {
		t.Fatalf("old password: %v", be)
	}

	// The service account manages users only.
	_, err = svc.PasswordModify(ldap.NewPasswordModifyRequest(s.AdminGroupDN, "", "group-pass-123"))
	wantCode(t, err, ldap.LDAPResultInsufficientAccessRights)
}

func TestOpenLDAPNestedAdminGroup(t *testing.T) {
	s := ldaplab.OpenLDAP(t)
	if err := s.BindErr(s.HelpdeskDN, s.HelpdeskPassword); err != nil {
		t.Fatalf("helpdesk bind: %v", err)
	}
	c := s.Conn(t, s.ServiceDN, s.ServicePassword)
	memberOf := func(dn string) []string {
		res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
			"(objectClass=*)", []string{"memberOf"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("memberOf of %s: %v", dn, err)
		}
		return res.Entries[0].GetAttributeValues("memberOf")
	}
	tier2 := memberOf(s.HelpdeskDN)
	if len(tier2) != 1 || !strings.HasPrefix(tier2[0], "cn=Tier2,") {
		t.Fatalf("memberOf(helpdeskadmin) = %v", tier2)
	}
	if got := memberOf(tier2[0]); len(got) != 1 || got[0] != s.AdminGroupDN {
		t.Fatalf("memberOf(Tier2) = %v, want %s", got, s.AdminGroupDN)
	}
}
