package demodir

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
)

// fakeClock is a settable time for the server.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// readUser reads attrs of dn as the administrator.
func readUser(t *testing.T, s *Server, dn string, attrs ...string) *ldap.Entry {
	t.Helper()
	res, err := adminConn(t, s).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s: %v", dn, err)
	}
	return res.Entries[0]
}

func intAttr(t *testing.T, e *ldap.Entry, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(e.GetAttributeValue(name), 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, e.GetAttributeValue(name), err)
	}
	return n
}

func wantBind(t *testing.T, s *Server, dn, password, want string) {
	t.Helper()
	got, err := bindData(t, s, dn, password)
	if got != want {
		t.Fatalf("bind as %s: data %q (%v), want %q", dn, got, err, want)
	}
}

func TestLockoutAfterFiveBadBindsThenUnlock(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 2, 10, 42, 0, 0, time.UTC)}
	s := start(t, Options{Now: clk.now, LockoutDuration: 30 * time.Minute})
	dn := ldapAddUser(t, s, "locky", "Right#Pass1", "Locky", "", "")

	usn0 := intAttr(t, readUser(t, s, dn, "uSNChanged"), "uSNChanged")
	for i := 1; i <= 4; i++ {
		wantBind(t, s, dn, "Wrong#Pass1", dataInvalid)
		e := readUser(t, s, dn, "badPwdCount", "uSNChanged", "lockoutTime")
		if n := intAttr(t, e, "badPwdCount"); n != int64(i) {
			t.Fatalf("after %d bad binds badPwdCount = %d", i, n)
		}
		if u := intAttr(t, e, "uSNChanged"); u != usn0 {
			t.Errorf("a bad bind below the threshold changed uSNChanged %d -> %d (badPwdCount is not replicated)", usn0, u)
		}
		if e.GetAttributeValue("lockoutTime") != "" {
			t.Fatalf("locked after %d bad binds", i)
		}
	}
	highest := s.HighestCommittedUSN()
	wantBind(t, s, dn, "Wrong#Pass1", dataInvalid) // the fifth locks
	e := readUser(t, s, dn, "lockoutTime", "uSNChanged", "msDS-User-Account-Control-Computed")
	if got := fromFileTime(intAttr(t, e, "lockoutTime")); !got.Equal(clk.t) {
		t.Errorf("lockoutTime = %v, want %v", got, clk.t)
	}
	if u := intAttr(t, e, "uSNChanged"); u <= usn0 || u != s.HighestCommittedUSN() || u != highest+1 {
		t.Errorf("the lockout: uSNChanged %d (before %d), highestCommittedUSN %d (before %d)", u, usn0, s.HighestCommittedUSN(), highest)
	}
	if f := intAttr(t, e, "msDS-User-Account-Control-Computed"); f&ufLockout == 0 {
		t.Errorf("computed flags %#x lack UF_LOCKOUT", f)
	}
	wantBind(t, s, dn, "Right#Pass1", dataLocked) // even the right password
	wantBind(t, s, dn, "Wrong#Pass1", dataLocked)
	if err := s.Bind("locky", "Right#Pass1"); !isData(err, dataLocked) {
		t.Errorf("Bind helper while locked: %v, want data 775", err)
	}

	// The service account unlocks: lockoutTime=0 also resets badPwdCount.
	svc := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("lockoutTime", []string{"0"})
	if err := svc.Modify(m); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	e = readUser(t, s, dn, "lockoutTime", "badPwdCount", "msDS-User-Account-Control-Computed")
	if intAttr(t, e, "lockoutTime") != 0 || intAttr(t, e, "badPwdCount") != 0 || intAttr(t, e, "msDS-User-Account-Control-Computed")&ufLockout != 0 {
		t.Errorf("after unlock: %v", e.Attributes)
	}
	wantBind(t, s, dn, "Right#Pass1", "")
}

func isData(err error, data string) bool {
	var be *BindError
	return errors.As(err, &be) && be.Data == data && be.ResultCode == 49
}

func TestLockoutExpires(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 2, 10, 42, 0, 0, time.UTC)}
	s := start(t, Options{Now: clk.now, LockoutDuration: 30 * time.Minute})
	dn := ldapAddUser(t, s, "expiry", "Right#Pass1", "Expiry", "", "")
	for i := 0; i < DefaultLockoutThreshold; i++ {
		wantBind(t, s, dn, "Wrong#Pass1", dataInvalid)
	}
	wantBind(t, s, dn, "Right#Pass1", dataLocked)
	s.Advance(29 * time.Minute)
	if computed(t, s, dn)&ufLockout == 0 {
		t.Fatal("unlocked before the lockout duration")
	}
	s.Advance(time.Minute)
	if computed(t, s, dn)&ufLockout != 0 {
		t.Fatal("still locked after the lockout duration")
	}
	// lockoutTime stays until the next good logon, which clears it.
	if readUser(t, s, dn, "lockoutTime").GetAttributeValue("lockoutTime") == "0" {
		t.Error("lockoutTime cleared before a good logon")
	}
	before := s.HighestCommittedUSN()
	wantBind(t, s, dn, "Right#Pass1", "")
	if got := readUser(t, s, dn, "lockoutTime").GetAttributeValue("lockoutTime"); got != "0" {
		t.Errorf("lockoutTime after a good logon = %q, want 0", got)
	}
	if s.HighestCommittedUSN() != before+1 {
		t.Errorf("clearing a stale lockoutTime committed %d changes, want 1", s.HighestCommittedUSN()-before)
	}
	// A new series of failures counts from zero.
	for i := 0; i < DefaultLockoutThreshold-1; i++ {
		wantBind(t, s, dn, "Wrong#Pass1", dataInvalid)
	}
	wantBind(t, s, dn, "Right#Pass1", "")
}

func TestLockoutUntilUnlockedAndObservationWindow(t *testing.T) {
	s := start(t, Options{LockoutThreshold: 3}) // duration 0: until unlocked
	dn := ldapAddUser(t, s, "forever", "Right#Pass1", "Forever", "", "")
	for i := 0; i < 3; i++ {
		wantBind(t, s, dn, "Wrong#Pass1", dataInvalid)
	}
	s.Advance(1000 * time.Hour)
	wantBind(t, s, dn, "Right#Pass1", dataLocked)
	if err := s.Unlock(dn); err != nil {
		t.Fatal(err)
	}
	wantBind(t, s, dn, "Right#Pass1", "")

	// Failures further apart than the observation window (30 min by
	// default) do not add up.
	for i := 0; i < 10; i++ {
		wantBind(t, s, dn, "Wrong#Pass1", dataInvalid)
		wantBind(t, s, dn, "Wrong#Pass1", dataInvalid)
		s.Advance(31 * time.Minute)
	}
	wantBind(t, s, dn, "Right#Pass1", "")

	// The built-in Administrator is never locked out.
	for i := 0; i < 5; i++ {
		wantBind(t, s, s.Administrator().DN, "Wrong#Pass1", dataInvalid)
	}
	wantBind(t, s, s.Administrator().DN, s.Administrator().Password, "")
}

func TestBindSubCodesAndNames(t *testing.T) {
	s := start(t, Options{MaxPasswordAge: 90 * 24 * time.Hour})
	ok, _ := s.AddUser(UserSpec{Username: "okuser", Password: "Right#Pass1"})
	disabled, _ := s.AddUser(UserSpec{Username: "offuser", Password: "Right#Pass1", Disabled: true})
	must, _ := s.AddUser(UserSpec{Username: "mustuser", Password: "Right#Pass1", MustChange: true})
	forever, _ := s.AddUser(UserSpec{Username: "neveruser", Password: "Right#Pass1", PasswordNeverExpires: true})

	wantBind(t, s, ok, "Right#Pass1", "")
	wantBind(t, s, disabled, "Right#Pass1", dataDisabled)
	wantBind(t, s, disabled, "Wrong#Pass1", dataInvalid) // the sub-codes need the right password
	wantBind(t, s, must, "Right#Pass1", dataMustChange)
	wantBind(t, s, "CN=ghost,"+s.UsersDN(), "Right#Pass1", dataInvalid)
	for _, name := range []string{"okuser", "OKUSER", "okuser@" + s.Realm(), `DEMO\okuser`, `demo.example\okuser`} {
		wantBind(t, s, name, "Right#Pass1", "")
	}
	for _, name := range []string{`OTHER\okuser`, "okuser@other.example", "ok*"} {
		wantBind(t, s, name, "Right#Pass1", dataInvalid)
	}
	if computed(t, s, must)&ufPasswordExpired == 0 {
		t.Error("must-change user: computed flags lack UF_PASSWORD_EXPIRED")
	}
	s.Advance(91 * 24 * time.Hour)
	wantBind(t, s, ok, "Right#Pass1", dataPasswordExpire)
	wantBind(t, s, forever, "Right#Pass1", "")
	if computed(t, s, ok)&ufPasswordExpired == 0 || computed(t, s, forever)&ufPasswordExpired != 0 {
		t.Error("UF_PASSWORD_EXPIRED does not follow maxPwdAge and DONT_EXPIRE_PASSWD")
	}
	if err := s.Bind("okuser", "Right#Pass1"); !isData(err, dataPasswordExpire) {
		t.Errorf("Bind helper: %v, want data 532", err)
	}

	// The product's error mapping reads the diagnostics (its default user
	// filter leaves disabled accounts out: not found).
	d := openClient(t, s.DirectoryConfig())
	for user, want := range map[string]error{"offuser": directory.ErrNotFound, "mustuser": directory.ErrMustChange,
		"okuser": directory.ErrPasswordExpired} {
		if _, err := d.Authenticate(ctxT(t), user, "Right#Pass1"); !errors.Is(err, want) {
			t.Errorf("Authenticate(%s) = %v, want %v", user, err, want)
		}
	}
}

func TestSimpleBindNeedsTLS(t *testing.T) {
	s := start(t, Options{StartTLSAddr: "127.0.0.1:0"})
	c, err := ldap.DialURL(s.StartTLSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.ServiceAccount().DN, s.ServiceAccount().Password); !ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) {
		t.Fatalf("simple bind over plain LDAP: %v, want strongAuthRequired", err)
	}
	if err := c.StartTLS(tlsFor(s)); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind(s.ServiceAccount().DN, s.ServiceAccount().Password); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	if err := c.StartTLS(tlsFor(s)); err == nil {
		t.Error("a second StartTLS succeeded")
	}
}

func TestAnonymousMayReadRootDSEOnly(t *testing.T) {
	s := start(t, Options{})
	c := dial(t, s)
	_, err := c.Search(ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) || !strings.Contains(err.Error(), "000004DC") {
		t.Errorf("anonymous search of the domain: %v, want operationsError 000004DC", err)
	}
	// A failed bind leaves the connection anonymous.
	_ = c.Bind(s.ServiceAccount().DN, "Wrong#Pass1")
	m := ldap.NewModifyRequest("CN=helpdesk admin,"+s.UsersDN(), nil)
	m.Replace("mobile", []string{"+15550100199"})
	if err := c.Modify(m); !ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) {
		t.Errorf("anonymous modify: %v, want operationsError", err)
	}
}
