package demodir

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll/password"
)

func modify(c *ldap.Conn, dn string, f func(m *ldap.ModifyRequest), controls ...ldap.Control) error {
	m := ldap.NewModifyRequest(dn, controls)
	f(m)
	return c.Modify(m)
}

func TestPasswordResetPolicy(t *testing.T) {
	s := start(t, Options{})
	dn := ldapAddUser(t, s, "policy", "Initial#Pass1", "Policy", "", "")
	svc := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	reset := func(pw string) error {
		return modify(svc, dn, func(m *ldap.ModifyRequest) { m.Replace("unicodePwd", []string{directory.EncodeUnicodePwd(pw)}) })
	}
	for pw, reason := range map[string]string{
		"Ab#1":           "the password is too short. It should be equal or longer than 7 characters!",
		"alllowercase1":  "the password does not meet the complexity criteria!",
		"ALLUPPER#":      "the password does not meet the complexity criteria!",
		"x#Policy2024":   "the password does not meet the complexity criteria!", // holds the account name
		"Ünïcödé_lower1": "",                                                    // accepted: upper, lower, digit, special
	} {
		err := reset(pw)
		if reason == "" {
			if err != nil {
				t.Errorf("reset to %q: %v", pw, err)
			}
			continue
		}
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) ||
			!strings.Contains(err.Error(), "0000052D: Constraint violation - check_password_restrictions: "+reason) {
			t.Errorf("reset to %q: %v, want 0000052D ... %s", pw, err, reason)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("the refusal echoes the password: %v", err)
		}
	}
	wantBind(t, s, dn, "Ünïcödé_lower1", "")
	// Not UTF-16LE in quotes: refused.
	err := modify(svc, dn, func(m *ldap.ModifyRequest) { m.Replace("unicodePwd", []string{"Plain#Text1"}) })
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
		t.Errorf("reset with a raw value: %v", err)
	}

	// Through the product: PolicyError with Samba's reason.
	d := openClient(t, s.DirectoryConfig())
	u, err := d.FindUser(ctxT(t), "policy")
	if err != nil {
		t.Fatal(err)
	}
	err = d.SetPassword(ctxT(t), u, "short", directory.SetPasswordOptions{MustChange: true})
	var pe *directory.PolicyError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Reason, "the password is too short") {
		t.Errorf("SetPassword(short) = %v, want a PolicyError about the length", err)
	}
	// The policy hints control (advertised in the RootDSE) is accepted.
	hints := ldap.NewControlString(oidPolicyHints, true, "\x30\x03\x02\x01\x01")
	err = modify(svc, dn, func(m *ldap.ModifyRequest) {
		m.Replace("unicodePwd", []string{directory.EncodeUnicodePwd("Hinted#Pass1")})
	}, hints)
	if err != nil {
		t.Errorf("reset with the critical policy hints control: %v", err)
	}
	unknown := ldap.NewControlString("1.2.3.4.5", true, "")
	err = modify(svc, dn, func(m *ldap.ModifyRequest) {
		m.Replace("unicodePwd", []string{directory.EncodeUnicodePwd("Other#Pass1")})
	}, unknown)
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
		t.Errorf("an unknown critical control: %v", err)
	}
	wantBind(t, s, dn, "Hinted#Pass1", "")
}

func TestUserChangesOwnPassword(t *testing.T) {
	s := start(t, Options{})
	dn := ldapAddUser(t, s, "changer", "Old#Pass123", "Changer", "", "")
	c := bound(t, s, dn, "Old#Pass123")
	change := func(oldPw, newPw string) error {
		return modify(c, dn, func(m *ldap.ModifyRequest) {
			m.Delete("unicodePwd", []string{directory.EncodeUnicodePwd(oldPw)})
			m.Add("unicodePwd", []string{directory.EncodeUnicodePwd(newPw)})
		})
	}
	if err := change("Wrong#Pass1", "New#Pass1234"); !ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
		t.Fatalf("change with a wrong old password: %v", err)
	}
	if n := intAttr(t, readUser(t, s, dn, "badPwdCount"), "badPwdCount"); n != 1 {
		t.Errorf("a wrong old password: badPwdCount = %d, want 1", n)
	}
	if err := change("Old#Pass123", "New#Pass1234"); err != nil {
		t.Fatalf("change: %v", err)
	}
	wantBind(t, s, dn, "New#Pass1234", "")
	wantBind(t, s, dn, "Old#Pass123", dataInvalid)
	// A replace is a reset: not the user's right.
	err := modify(c, dn, func(m *ldap.ModifyRequest) {
		m.Replace("unicodePwd", []string{directory.EncodeUnicodePwd("Reset#Pass1")})
	})
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("a user resetting its own password: %v, want insufficientAccessRights", err)
	}
}

func TestAccessControl(t *testing.T) {
	s := start(t, Options{})
	victim := ldapAddUser(t, s, "victim", "Secret#Pas1", "Victim", "", "")
	weakDN := ldapAddUser(t, s, "weakling", "Weak#Pass1x", "Weak", "", "")
	weak := bound(t, s, weakDN, "Weak#Pass1x")
	svc := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	admin := adminConn(t, s)
	pw := directory.EncodeUnicodePwd("Other#Pass5v")
	for _, c := range []struct {
		name string
		conn *ldap.Conn
		dn   string
		f    func(m *ldap.ModifyRequest)
		code uint16
	}{
		{"user resets another", weak, victim, func(m *ldap.ModifyRequest) { m.Replace("unicodePwd", []string{pw}) }, ldap.LDAPResultInsufficientAccessRights},
		{"user unlocks another", weak, victim, func(m *ldap.ModifyRequest) { m.Replace("lockoutTime", []string{"0"}) }, ldap.LDAPResultInsufficientAccessRights},
		{"user sets must-change", weak, victim, func(m *ldap.ModifyRequest) { m.Replace("pwdLastSet", []string{"0"}) }, ldap.LDAPResultInsufficientAccessRights},
		{"user writes a mobile", weak, victim, func(m *ldap.ModifyRequest) { m.Replace("mobile", []string{"+15550100150"}) }, ldap.LDAPResultInsufficientAccessRights},
		{"service writes a mobile", svc, victim, func(m *ldap.ModifyRequest) { m.Replace("mobile", []string{"+15550100150"}) }, ldap.LDAPResultInsufficientAccessRights},
		{"service resets the Administrator", svc, s.Administrator().DN, func(m *ldap.ModifyRequest) { m.Replace("unicodePwd", []string{pw}) }, ldap.LDAPResultInsufficientAccessRights},
		{"service resets itself", svc, s.ServiceAccount().DN, func(m *ldap.ModifyRequest) { m.Replace("unicodePwd", []string{pw}) }, ldap.LDAPResultInsufficientAccessRights},
		{"lockoutTime other than 0", svc, victim, func(m *ldap.ModifyRequest) { m.Replace("lockoutTime", []string{"5"}) }, ldap.LDAPResultUnwillingToPerform},
		{"pwdLastSet other than 0/-1", svc, victim, func(m *ldap.ModifyRequest) { m.Replace("pwdLastSet", []string{"12345"}) }, ldap.LDAPResultUnwillingToPerform},
		{"system attribute", admin, victim, func(m *ldap.ModifyRequest) { m.Replace("uSNChanged", []string{"1"}) }, ldap.LDAPResultUnwillingToPerform},
		{"RDN attribute", admin, victim, func(m *ldap.ModifyRequest) { m.Replace("cn", []string{"x"}) }, ldap.LDAPResultNotAllowedOnRDN},
		{"missing entry", admin, "CN=nobody," + s.UsersDN(), func(m *ldap.ModifyRequest) { m.Replace("mobile", []string{"+1"}) }, ldap.LDAPResultNoSuchObject},
		{"duplicate sAMAccountName", admin, victim, func(m *ldap.ModifyRequest) { m.Replace("sAMAccountName", []string{"WEAKLING"}) }, ldap.LDAPResultEntryAlreadyExists},
		{"delete a missing value", admin, victim, func(m *ldap.ModifyRequest) { m.Delete("mobile", []string{"+1555"}) }, ldap.LDAPResultNoSuchAttribute},
	} {
		if err := modify(c.conn, c.dn, c.f); !ldap.IsErrorWithCode(err, c.code) {
			t.Errorf("%s: %v, want result %d", c.name, err, c.code)
		}
	}
	if err := modify(admin, victim, func(m *ldap.ModifyRequest) { m.Replace("mobile", []string{"+15550100150"}) }); err != nil {
		t.Errorf("administrator writes a mobile: %v", err)
	}
	// Permissive modify: deleting a missing value is not an error.
	permissive := ldap.NewControlString(oidPermissiveModify, false, "")
	if err := modify(admin, victim, func(m *ldap.ModifyRequest) { m.Delete("mobile", []string{"+1555"}) }, permissive); err != nil {
		t.Errorf("permissive delete of a missing value: %v", err)
	}
	if err := modify(svc, victim, func(m *ldap.ModifyRequest) {
		m.Replace("unicodePwd", []string{pw})
		m.Replace("pwdLastSet", []string{"0"})
		m.Replace("lockoutTime", []string{"0"})
	}); err != nil {
		t.Errorf("service reset with must-change and unlock: %v", err)
	}
	wantBind(t, s, victim, "Other#Pass5v", dataMustChange)
	if err := modify(svc, victim, func(m *ldap.ModifyRequest) { m.Replace("pwdLastSet", []string{"-1"}) }); err != nil {
		t.Errorf("pwdLastSet=-1: %v", err)
	}
	wantBind(t, s, victim, "Other#Pass5v", "")
}

func TestAddAndDelete(t *testing.T) {
	s := start(t, Options{})
	admin := adminConn(t, s)
	dn := ldapAddUser(t, s, "adder", "Secret#Pas2", "Adder", "", "")
	group, err := s.AddGroup("adders", "", dn)
	if err != nil {
		t.Fatal(err)
	}
	add := ldap.NewAddRequest("CN=other,"+s.UsersDN(), nil)
	add.Attribute("objectClass", []string{"top", "user"})
	add.Attribute("sAMAccountName", []string{"ADDER"})
	if err := admin.Add(add); !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
		t.Errorf("duplicate sAMAccountName: %v", err)
	}
	add = ldap.NewAddRequest("CN=x,OU=Nowhere,"+s.BaseDN(), nil)
	add.Attribute("objectClass", []string{"top", "user"})
	if err := admin.Add(add); !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Errorf("add under a missing parent: %v", err)
	}
	add = ldap.NewAddRequest("CN=bad,"+s.UsersDN(), nil)
	add.Attribute("objectClass", []string{"top", "user"})
	add.Attribute("sAMAccountName", []string{"bad*name"})
	if err := admin.Add(add); !ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
		t.Errorf("sAMAccountName with *: %v", err)
	}
	add = ldap.NewAddRequest("CN=g,"+s.UsersDN(), nil)
	add.Attribute("objectClass", []string{"top", "group"})
	add.Attribute("member", []string{"CN=ghost," + s.UsersDN()})
	if err := admin.Add(add); !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Errorf("group with a missing member: %v", err)
	}
	svc := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	if err := svc.Del(ldap.NewDelRequest(dn, nil)); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("service account deletes: %v", err)
	}
	if err := admin.Del(ldap.NewDelRequest(s.UsersDN(), nil)); !ldap.IsErrorWithCode(err, ldap.LDAPResultNotAllowedOnNonLeaf) {
		t.Errorf("delete a non-leaf: %v", err)
	}
	if err := admin.Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := readUser(t, s, group, "member").GetAttributeValues("member"); len(got) != 0 {
		t.Errorf("the deleted user is still a member: %v", got)
	}
	wantBind(t, s, dn, "Secret#Pas2", dataInvalid)
	// A user added without a password is disabled, as on AD.
	add = ldap.NewAddRequest("CN=nopw,"+s.UsersDN(), nil)
	add.Attribute("objectClass", []string{"top", "user"})
	if err := admin.Add(add); err != nil {
		t.Fatalf("add without password: %v", err)
	}
	e := readUser(t, s, "CN=nopw,"+s.UsersDN(), "userAccountControl", "sAMAccountName", "objectCategory")
	if e.GetAttributeValue("userAccountControl") != "546" || e.GetAttributeValue("sAMAccountName") == "" ||
		!strings.HasPrefix(e.GetAttributeValue("objectCategory"), "CN=Person,") {
		t.Errorf("defaults of a new user: %v", e.Attributes)
	}
}

func TestUSNAndWhenChanged(t *testing.T) {
	clk := &fakeClock{t: timeAt("20260302104200")}
	s := start(t, Options{Now: clk.now})
	dn := ldapAddUser(t, s, "usn", "Secret#Pas3", "USN", "", "")
	svc := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	read := func() (int64, string) {
		e := readUser(t, s, dn, "uSNChanged", "whenChanged")
		return intAttr(t, e, "uSNChanged"), e.GetAttributeValue("whenChanged")
	}
	rootUSN := func() int64 {
		res, err := dial(t, s).Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"highestCommittedUSN"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("RootDSE: %v", err)
		}
		return intAttr(t, res.Entries[0], "highestCommittedUSN")
	}
	u0, w0 := read()
	if u0 != rootUSN() {
		t.Errorf("uSNChanged of the newest entry %d, highestCommittedUSN %d", u0, rootUSN())
	}
	clk.t = clk.t.Add(time.Minute)
	if err := modify(svc, dn, func(m *ldap.ModifyRequest) { m.Replace("pwdLastSet", []string{"0"}) }); err != nil {
		t.Fatal(err)
	}
	u1, w1 := read()
	if u1 != u0+1 || rootUSN() != u1 || w1 == w0 || w1 != "20260302104300.0Z" {
		t.Errorf("after a write: uSNChanged %d -> %d, highest %d, whenChanged %s -> %s", u0, u1, rootUSN(), w0, w1)
	}
	// Unlocking an account that is not locked changes nothing.
	if err := modify(svc, dn, func(m *ldap.ModifyRequest) { m.Replace("lockoutTime", []string{"0"}) }); err != nil {
		t.Fatal(err)
	}
	if u2, _ := read(); u2 != u1 || rootUSN() != u1 {
		t.Errorf("a no-op unlock: uSNChanged %d -> %d, highest %d", u1, u2, rootUSN())
	}
	// A failed write changes nothing either.
	_ = modify(svc, dn, func(m *ldap.ModifyRequest) { m.Replace("unicodePwd", []string{directory.EncodeUnicodePwd("weak")}) })
	if rootUSN() != u1 {
		t.Errorf("a refused reset committed a change")
	}
	// Group membership: the group changes, not the member.
	g, err := s.AddGroup("usngroup", "")
	if err != nil {
		t.Fatal(err)
	}
	before := rootUSN()
	if err := s.AddMember(g, dn); err != nil {
		t.Fatal(err)
	}
	if gu := intAttr(t, readUser(t, s, g, "uSNChanged"), "uSNChanged"); gu != before+1 {
		t.Errorf("group uSNChanged %d, want %d", gu, before+1)
	}
	if u3, _ := read(); u3 != u1 {
		t.Errorf("adding a member changed the member's uSNChanged")
	}
}

// TestProductPasswordsMeetPolicy: every style of the product's generator
// gives passwords the demo domain accepts (as a default AD domain would).
func TestProductPasswordsMeetPolicy(t *testing.T) {
	s := start(t, Options{Seed: true})
	d := openClient(t, s.DirectoryConfig())
	ctx := ctxT(t)
	for _, style := range []string{password.StyleReadable, password.StyleRandom, password.StyleWords} {
		for _, length := range []int{8, 12, 20} {
			g, err := password.NewGenerator(password.Config{Length: length, Style: style})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"amartin", "hlefevre", "malfarsi"} {
				u, err := d.FindUser(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 10; i++ {
					pw, err := g.Generate(u)
					if err != nil {
						t.Fatal(err)
					}
					if err := d.SetPassword(ctx, u, pw, directory.SetPasswordOptions{}); err != nil {
						t.Fatalf("%s/%d for %s: SetPassword: %v", style, length, name, err)
					}
					if err := s.Bind(name, pw); err != nil {
						t.Fatalf("%s/%d for %s: bind with the new password: %v", style, length, name, err)
					}
				}
			}
		}
	}
}

// TestPolicyHintsOnlyForAChosenPassword: the product's AD dialect sends
// the policy hints control (history checked, and on AD the minimum
// password age too) on a reset to a password the user chose, never on a
// generated one, which a second RESET within the minimum age would then
// be refused.
func TestPolicyHintsOnlyForAChosenPassword(t *testing.T) {
	s := start(t, Options{})
	c := openClient(t, s.DirectoryConfig())
	name := uniqueName("hint")
	dn := ldapAddUser(t, s, name, "Start#Pass1x", "Hint", "", "")
	u, err := c.FindUser(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPassword(t.Context(), u, "Gen#Reset7qx", directory.SetPasswordOptions{MustChange: true}); err != nil {
		t.Fatal(err)
	}
	if s.PolicyHinted(dn) {
		t.Error("a generated password's reset carried the policy hints control")
	}
	if err := c.SetPassword(t.Context(), u, "Chosen#Pass8kz", directory.SetPasswordOptions{EnforcePolicy: true}); err != nil {
		t.Fatal(err)
	}
	if !s.PolicyHinted(dn) {
		t.Error("a chosen password's reset did not carry the policy hints control")
	}
}
