package directory_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/directorytest"
	"github.com/replyreset/replyreset/directory/ldaplab"
)

// lockoutBackend adapts an ldaplab server to the lockout suite.
func lockoutBackend(t *testing.T, s *ldaplab.Server) directorytest.LockoutBackend {
	b := directorytest.LockoutBackend{
		Backend: labBackend(t, s),
		Scanner: func(t *testing.T, adminGroup string) directorytest.LockoutDirectory {
			c := labConfig(s, s.ServiceDN, s.ServicePassword)
			c.AdminGroup = adminGroup
			return openClient(t, c)
		},
		AdminGroupDN:  s.AdminGroupDN,
		AdminUsername: s.HelpdeskUsername,
	}
	if s.Dialect == ldaplab.DialectAD {
		b.AddGroup = func(t *testing.T, name string, members ...string) string {
			add := ldap.NewAddRequest("CN="+ldap.EscapeDN(name)+",OU=Groups,"+s.BaseDN, nil)
			add.Attribute("objectClass", []string{"top", "group"})
			add.Attribute("sAMAccountName", []string{name})
			add.Attribute("member", members)
			if err := s.AdminConn(t).Add(add); err != nil {
				t.Fatalf("add group %s: %v", add.DN, err)
			}
			return add.DN
		}
		b.AddMember = func(t *testing.T, group, member string) {
			m := ldap.NewModifyRequest(group, nil)
			m.Add("member", []string{member})
			if err := s.AdminConn(t).Modify(m); err != nil {
				t.Fatalf("add member %s to %s: %v", member, group, err)
			}
		}
		b.ShortLockout = func(t *testing.T, _ string) time.Duration { return sambaShortLockout(t, s) }
		return b
	}
	// OpenLDAP: the fixture groups are groupOfNames; these are
	// groupOfUniqueNames, so both member attributes are walked.
	b.AddGroup = func(t *testing.T, name string, members ...string) string {
		add := ldap.NewAddRequest("cn="+ldap.EscapeDN(name)+",ou=groups,"+s.BaseDN, nil)
		add.Attribute("objectClass", []string{"groupOfUniqueNames"})
		add.Attribute("cn", []string{name})
		add.Attribute("uniqueMember", members)
		if err := s.AdminConn(t).Add(add); err != nil {
			t.Fatalf("add group %s: %v", add.DN, err)
		}
		return add.DN
	}
	b.AddMember = func(t *testing.T, group, member string) {
		m := ldap.NewModifyRequest(group, nil)
		m.Add("uniqueMember", []string{member + "#'0101'B"}) // nameAndOptionalUID with the UID part
		if err := s.AdminConn(t).Modify(m); err != nil {
			t.Fatalf("add member %s to %s: %v", member, group, err)
		}
	}
	b.ShortLockout = func(t *testing.T, dn string) time.Duration { return openldapShortLockout(t, s, dn) }
	return b
}

// sambaShortLockout sets the domain's lockout duration and observation
// window to 5 s over LDAP (RECIPES A.6.6; samba-tool takes whole minutes
// only) and restores them when the test ends. There is one Samba per test
// binary, so this is domain-wide while the test runs.
func sambaShortLockout(t *testing.T, s *ldaplab.Server) time.Duration {
	admin := s.AdminConn(t)
	attrs := []string{"lockoutDuration", "lockOutObservationWindow"}
	res, err := admin.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the domain lockout policy: %v", err)
	}
	set := func(c *ldap.Conn, values map[string]string) error {
		m := ldap.NewModifyRequest(s.BaseDN, nil)
		for _, a := range attrs {
			m.Replace(a, []string{values[a]})
		}
		return c.Modify(m)
	}
	orig := map[string]string{}
	for _, a := range attrs {
		orig[a] = res.Entries[0].GetAttributeValue(a)
	}
	if err := set(admin, map[string]string{"lockoutDuration": "-50000000", "lockOutObservationWindow": "-50000000"}); err != nil {
		t.Fatalf("set a 5 s lockout duration: %v", err)
	}
	t.Cleanup(func() {
		c := s.AdminConn(t)
		if err := set(c, orig); err != nil {
			t.Errorf("restore the domain lockout policy %v: %v", orig, err)
		}
	})
	return 5 * time.Second
}

// openldapShortLockout gives the user at dn a policy of its own, with a 2 s
// lockout duration, through pwdPolicySubentry.
func openldapShortLockout(t *testing.T, s *ldaplab.Server, dn string) time.Duration {
	admin := s.AdminConn(t)
	name := s.UniqueName("short")
	policyDN := "cn=" + name + ",ou=policies," + s.BaseDN
	add := ldap.NewAddRequest(policyDN, nil)
	add.Attribute("objectClass", []string{"device", "pwdPolicy"})
	add.Attribute("cn", []string{name})
	add.Attribute("pwdAttribute", []string{"userPassword"})
	add.Attribute("pwdMaxFailure", []string{"5"})
	add.Attribute("pwdLockout", []string{"TRUE"})
	add.Attribute("pwdLockoutDuration", []string{"2"})
	add.Attribute("pwdFailureCountInterval", []string{"600"})
	if err := admin.Add(add); err != nil {
		t.Fatalf("add short-lockout policy: %v", err)
	}
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("pwdPolicySubentry", []string{policyDN})
	if err := admin.Modify(m); err != nil {
		t.Fatalf("assign short-lockout policy: %v", err)
	}
	return 2 * time.Second
}

func TestLockoutSambaAD(t *testing.T) {
	directorytest.RunLockout(t, lockoutBackend(t, ldaplab.Samba(t)))
}

func TestLockoutOpenLDAP(t *testing.T) {
	directorytest.RunLockout(t, lockoutBackend(t, ldaplab.OpenLDAP(t)))
}

var _ directorytest.LockoutDirectory = (*directory.Client)(nil)

func scanT(t *testing.T, d *directory.Client, cursor []byte, full bool) ([]directory.LockoutEvent, []byte, directory.ScanStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev, next, st, err := d.ScanLockouts(ctx, cursor, full)
	if err != nil {
		t.Fatalf("ScanLockouts(full=%v): %v", full, err)
	}
	return ev, next, st
}

// TestLockoutOpenLDAPPermanentLock: a permanent lock (000001010000Z, set by
// an administrator) is older than any scan window; it is found by the
// entry's modifyTimestamp, reported once with that time, and failed binds
// on the locked account do not report it again.
func TestLockoutOpenLDAPPermanentLock(t *testing.T) {
	s := ldaplab.OpenLDAP(t)
	d := openClient(t, labConfig(s, s.ServiceDN, s.ServicePassword))
	name := s.UniqueName("perm")
	dn := s.AddUser(t, ldaplab.UserSpec{Username: name, Mail: name + "@example.test"})
	_, cur, _ := scanT(t, d, nil, false)

	from := time.Now().Truncate(time.Second).Add(-time.Second)
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("pwdAccountLockedTime", []string{"000001010000Z"})
	if err := s.AdminConn(t).Modify(m); err != nil {
		t.Fatalf("set a permanent lock: %v", err)
	}
	to := time.Now().Add(2 * time.Second)
	ev, cur, st := scanT(t, d, cur, false)
	if len(ev) != 1 || ev[0].User.Username != name || !ev[0].User.Locked {
		t.Fatalf("scan after a permanent lock: %+v (full=%v), want one locked %s", ev, st.Full, name)
	}
	lockedAt := ev[0].LockedAt
	if lockedAt.Before(from) || lockedAt.After(to) {
		t.Errorf("LockedAt = %v, want between %v and %v", lockedAt, from, to)
	}
	if err := s.BindErr(dn, "Wrong#Pass9z"); err == nil {
		t.Fatalf("a bad bind on a locked account succeeded")
	}
	ev, _, st = scanT(t, d, cur, false)
	if len(ev) != 0 || st.EntriesRead != 0 {
		t.Fatalf("scan after failed binds on the locked account: %d events, %d entries read; want 0, 0", len(ev), st.EntriesRead)
	}
	ev, _, _ = scanT(t, d, nil, true)
	var again []time.Time
	for _, e := range ev {
		if e.User.Username == name {
			again = append(again, e.LockedAt)
		}
	}
	if len(again) != 1 || !again[0].Equal(lockedAt) {
		t.Errorf("full sweep: lock times %v for %s, want [%v] (the same event)", again, name, lockedAt)
	}
}

// TestLockoutSambaADCursorFromAnotherDC: USNs are per domain controller; a
// cursor from another DC (failover), or with a USN ahead of this DC's
// (restored from backup), must not be trusted.
func TestLockoutSambaADCursorFromAnotherDC(t *testing.T) {
	s := ldaplab.Samba(t)
	d := openClient(t, labConfig(s, s.ServiceDN, s.ServicePassword))
	name := s.UniqueName("dcx")
	dn := s.AddUser(t, ldaplab.UserSpec{Username: name})
	s.LockOut(t, dn)
	_, cur, st := scanT(t, d, nil, false)
	if !st.Full {
		t.Fatalf("first scan was not a full sweep")
	}
	var c map[string]any
	if err := json.Unmarshal(cur, &c); err != nil {
		t.Fatalf("cursor %q: %v", cur, err)
	}
	usn, _ := c["usn"].(float64)
	for label, edit := range map[string]func(map[string]any){
		"another DC": func(c map[string]any) {
			c["dsa"] = "CN=NTDS Settings,CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration," + s.BaseDN
		},
		"USN too high": func(c map[string]any) { c["usn"] = usn + 1000000 },
	} {
		other := map[string]any{}
		for k, v := range c {
			other[k] = v
		}
		edit(other)
		raw, _ := json.Marshal(other)
		ev, _, st := scanT(t, d, raw, false)
		found := false
		for _, e := range ev {
			found = found || e.User.Username == name
		}
		if !st.Full || !found {
			t.Errorf("%s: Full=%v, %s reported=%v; want a full sweep that reports it", label, st.Full, name, found)
		}
	}
	// An old cursor of this DC: an incremental scan over a wide USN interval
	// (the (uSNChanged>=N) form of the filter) still finds the lockout.
	old := map[string]any{}
	for k, v := range c {
		old[k] = v
	}
	old["usn"] = max(1, usn-2000)
	raw, _ := json.Marshal(old)
	ev, _, st := scanT(t, d, raw, false)
	found := false
	for _, e := range ev {
		found = found || e.User.Username == name
	}
	if st.Full || !found {
		t.Errorf("cursor 2000 USNs back: Full=%v, %s reported=%v; want an incremental scan that reports it", st.Full, name, found)
	}
}

// TestLockoutOpenLDAPSizeLimit: slapd's default size limit (500) also caps a
// paged search in total for the service account. More lockouts than that
// must not wedge the monitor: the full sweep reports what it could read,
// and incremental scans read the rest batch by batch.
func TestLockoutOpenLDAPSizeLimit(t *testing.T) {
	s := ldaplab.OpenLDAP(t)
	d := openClient(t, labConfig(s, s.ServiceDN, s.ServicePassword))
	admin := s.AdminConn(t)
	_, before, _ := scanT(t, d, nil, false)

	const n = 620
	prefix := s.UniqueName("lim")
	var dns []string
	t.Cleanup(func() {
		c := s.AdminConn(t)
		for _, dn := range dns {
			if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
				t.Errorf("delete %s: %v", dn, err)
			}
		}
	})
	lockedAt := time.Now().UTC().Format("20060102150405Z")
	for i := 0; i < n; i++ {
		uid := prefix + "-" + strconv.Itoa(i)
		add := ldap.NewAddRequest("uid="+uid+","+s.UsersDN, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{uid})
		add.Attribute("cn", []string{uid})
		add.Attribute("sn", []string{uid})
		add.Attribute("pwdAccountLockedTime", []string{lockedAt})
		if err := admin.Add(add); err != nil {
			t.Fatalf("add %s: %v", add.DN, err)
		}
		dns = append(dns, add.DN)
	}
	ours := func(ev []directory.LockoutEvent) map[string]bool {
		m := map[string]bool{}
		for _, e := range ev {
			if strings.HasPrefix(e.User.Username, prefix+"-") {
				m[e.User.Username] = true
			}
		}
		return m
	}

	// A full sweep is cut at the limit, but answers.
	ev, _, st := scanT(t, d, nil, true)
	if st.EntriesRead < 500 || len(ours(ev)) < 400 {
		t.Errorf("full sweep: %d entries read, %d of our %d lockouts; want the first 500 or so", st.EntriesRead, len(ours(ev)), n)
	}

	// Incremental scans from before the lockouts read them all, in batches.
	got := map[string]bool{}
	cur := before
	for poll := 0; poll < 5; poll++ {
		ev, next, st := scanT(t, d, cur, false)
		cur = next
		for name := range ours(ev) {
			if got[name] {
				t.Errorf("poll %d reported %s again", poll, name)
			}
			got[name] = true
		}
		if st.EntriesRead == 0 {
			break
		}
	}
	if len(got) != n {
		t.Fatalf("incremental scans reported %d of %d lockouts", len(got), n)
	}
	if ev, _, st := scanT(t, d, cur, false); len(ev) != 0 || st.EntriesRead != 0 {
		t.Errorf("after catching up: %d events, %d entries read; want 0, 0", len(ev), st.EntriesRead)
	}
}
