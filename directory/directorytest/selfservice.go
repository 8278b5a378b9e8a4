package directorytest

import (
	"context"
	"errors"
	"testing"

	"github.com/replyreset/replyreset/directory"
)

// SelfServiceDirectory is what the self-service suite drives.
type SelfServiceDirectory interface {
	directory.Directory
	directory.SelfServiceChecker
	CheckServiceAccount(ctx context.Context) error
}

// SelfServiceBackend adapts one directory server to the self-service
// suite (who may use self-service: DESIGN, Security rules).
type SelfServiceBackend struct {
	Backend
	// Open returns the implementation under test bound as the service
	// account, with directory.admin_group set to adminGroup ("" for none)
	// and policy p, closed on t.Cleanup.
	Open func(t *testing.T, adminGroup string, p directory.SelfServicePolicy) SelfServiceDirectory
	// OpenAsAdministrator is Open bound as the domain's administrator (a
	// privileged account), for CheckServiceAccount; nil on OpenLDAP.
	OpenAsAdministrator func(t *testing.T) SelfServiceDirectory
	// AddGroup creates a group with the given member DNs (at least one)
	// and returns its DN; AddMember adds a member later.
	AddGroup  func(t *testing.T, name string, memberDNs ...string) string
	AddMember func(t *testing.T, groupDN, memberDN string)
	// AdminGroupDN is the fixture admin group; AdminUsername a member of
	// it through a nested group.
	AdminGroupDN  string
	AdminUsername string

	// Active Directory only (nil or "" on OpenLDAP).
	//
	// DomainAdminsDN is the domain's Domain Admins (RID 512);
	// AdministratorsDN the builtin Administrators (S-1-5-32-544).
	DomainAdminsDN, AdministratorsDN string
	// RenameProtected renames a protected group (Schema Admins, RID 518)
	// to name until the test ends, and returns its new DN.
	RenameProtected func(t *testing.T, name string) string
	// SetAdminCount sets adminCount=1 on the entry at dn.
	SetAdminCount func(t *testing.T, dn string)
}

// RunSelfService runs the self-service suite against b.
func RunSelfService(t *testing.T, b SelfServiceBackend) {
	t.Run("OrdinaryAllowed", func(t *testing.T) { testOrdinaryAllowed(t, b) })
	t.Run("AdminGroup", func(t *testing.T) { testSelfServiceAdminGroup(t, b) })
	t.Run("DenyGroups", func(t *testing.T) { testDenyGroups(t, b) })
	t.Run("AllowGroups", func(t *testing.T) { testAllowGroups(t, b) })
	t.Run("MissingGroup", func(t *testing.T) { testMissingGroup(t, b) })
	t.Run("ServiceAccount", func(t *testing.T) { testServiceAccount(t, b) })
	if b.DomainAdminsDN == "" {
		return
	}
	t.Run("DomainAdminsDirect", func(t *testing.T) { testDomainAdminsDirect(t, b) })
	t.Run("DomainAdminsNested", func(t *testing.T) { testDomainAdminsNested(t, b) })
	t.Run("NestedInAdministrators", func(t *testing.T) { testNestedInAdministrators(t, b) })
	t.Run("RenamedProtectedGroup", func(t *testing.T) { testRenamedProtected(t, b) })
	t.Run("AdminCount", func(t *testing.T) { testAdminCount(t, b) })
}

// wantRefused checks that CheckSelfService refuses username for reason,
// naming group ("" = any), and returns the refusal.
func wantRefused(t *testing.T, d SelfServiceDirectory, username string, reason directory.Reason, group string) {
	t.Helper()
	u := mustFind(t, d, username)
	err := d.CheckSelfService(ctxT(t), u)
	var re *directory.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("CheckSelfService(%s) = %v, want a refusal (%s)", username, err, reason)
	}
	if re.Reason != reason || (group != "" && re.Group != group) || re.Username != u.Username {
		t.Fatalf("CheckSelfService(%s) = %+v, want reason %s, group %q", username, re, reason, group)
	}
	if !errors.Is(err, directory.ErrNoSelfService) || re.Error() == "" {
		t.Fatalf("refusal %v does not match ErrNoSelfService", err)
	}
}

func wantAllowed(t *testing.T, d SelfServiceDirectory, username string) {
	t.Helper()
	if err := d.CheckSelfService(ctxT(t), mustFind(t, d, username)); err != nil {
		t.Fatalf("CheckSelfService(%s) = %v, want nil", username, err)
	}
}

func testOrdinaryAllowed(t *testing.T, b SelfServiceBackend) {
	u, _ := newUser(t, b.Backend, "ssok")
	wantAllowed(t, b.Open(t, b.AdminGroupDN, directory.SelfServicePolicy{}), u.Username)
	wantAllowed(t, b.Open(t, "", directory.SelfServicePolicy{}), u.Username)
	if err := b.Open(t, "", directory.SelfServicePolicy{}).CheckSelfService(ctxT(t), directory.User{}); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("CheckSelfService(no DN) = %v, want ErrNotFound", err)
	}
}

func testSelfServiceAdminGroup(t *testing.T, b SelfServiceBackend) {
	d := b.Open(t, b.AdminGroupDN, directory.SelfServicePolicy{})
	wantRefused(t, d, b.AdminUsername, directory.ReasonAdminGroup, "")
	// protect_privileged: false lets the admins use self-service.
	wantAllowed(t, b.Open(t, b.AdminGroupDN, directory.SelfServicePolicy{AllowPrivileged: true}), b.AdminUsername)
	wantAllowed(t, b.Open(t, "", directory.SelfServicePolicy{}), b.AdminUsername)
}

func testDenyGroups(t *testing.T, b SelfServiceBackend) {
	u, dn := newUser(t, b.Backend, "ssdeny")
	other, _ := newUser(t, b.Backend, "ssdok")
	innerName, outerName := b.UniqueName("nosmsin"), b.UniqueName("nosms")
	inner := b.AddGroup(t, innerName, dn)
	outer := b.AddGroup(t, outerName, inner)
	for _, spec := range []string{outer, outerName} {
		d := b.Open(t, "", directory.SelfServicePolicy{DenyGroups: []string{spec}})
		wantRefused(t, d, u.Username, directory.ReasonDenyGroup, outerName)
		wantAllowed(t, d, other.Username)
	}
	// Never cached: a user who joins a deny group is refused at the next check.
	d := b.Open(t, "", directory.SelfServicePolicy{DenyGroups: []string{outer}})
	wantAllowed(t, d, other.Username)
	b.AddMember(t, inner, mustFind(t, d, other.Username).DN)
	wantRefused(t, d, other.Username, directory.ReasonDenyGroup, outerName)
	// deny_groups still refuse with protect_privileged off.
	wantRefused(t, b.Open(t, "", directory.SelfServicePolicy{AllowPrivileged: true, DenyGroups: []string{outer}}),
		u.Username, directory.ReasonDenyGroup, outerName)
}

func testAllowGroups(t *testing.T, b SelfServiceBackend) {
	in, dn := newUser(t, b.Backend, "ssallow")
	out, _ := newUser(t, b.Backend, "ssnot")
	innerName, outerName := b.UniqueName("smsin"), b.UniqueName("sms")
	inner := b.AddGroup(t, innerName, dn)
	b.AddGroup(t, outerName, inner)
	_, thirdDN := newUser(t, b.Backend, "ssthird")
	unrelated := b.AddGroup(t, b.UniqueName("smsother"), thirdDN)
	d := b.Open(t, "", directory.SelfServicePolicy{AllowGroups: []string{outerName}})
	wantAllowed(t, d, in.Username)
	wantRefused(t, d, out.Username, directory.ReasonNotAllowed, "")
	// Any one of the groups lets a user in.
	d = b.Open(t, "", directory.SelfServicePolicy{AllowGroups: []string{unrelated, outerName}})
	wantAllowed(t, d, in.Username)
	wantRefused(t, d, out.Username, directory.ReasonNotAllowed, "")
	// A deny group wins over an allow group.
	d = b.Open(t, "", directory.SelfServicePolicy{AllowGroups: []string{outerName}, DenyGroups: []string{inner}})
	wantRefused(t, d, in.Username, directory.ReasonDenyGroup, innerName)
}

func testMissingGroup(t *testing.T, b SelfServiceBackend) {
	u, _ := newUser(t, b.Backend, "ssmiss")
	for _, p := range []directory.SelfServicePolicy{
		{DenyGroups: []string{b.UniqueName("nogroup")}},
		{AllowGroups: []string{b.UniqueName("nogroup")}},
	} {
		d := b.Open(t, "", p)
		err := d.CheckSelfService(ctxT(t), mustFind(t, d, u.Username))
		var re *directory.RefusedError
		if !errors.Is(err, directory.ErrNotFound) || errors.As(err, &re) {
			t.Errorf("CheckSelfService with a missing group %+v = %v, want ErrNotFound (no pass, no refusal)", p, err)
		}
	}
}

func testServiceAccount(t *testing.T, b SelfServiceBackend) {
	if err := b.Open(t, b.AdminGroupDN, directory.SelfServicePolicy{}).CheckServiceAccount(ctxT(t)); err != nil {
		t.Errorf("CheckServiceAccount(service account) = %v, want nil", err)
	}
	if b.OpenAsAdministrator == nil {
		return
	}
	err := b.OpenAsAdministrator(t).CheckServiceAccount(ctxT(t))
	var re *directory.RefusedError
	if !errors.As(err, &re) || re.Reason != directory.ReasonProtectedGroup {
		t.Errorf("CheckServiceAccount(Administrator) = %v, want a protected-group refusal", err)
	}
}

func testDomainAdminsDirect(t *testing.T, b SelfServiceBackend) {
	u, dn := newUser(t, b.Backend, "ssda")
	b.AddMember(t, b.DomainAdminsDN, dn)
	d := b.Open(t, "", directory.SelfServicePolicy{})
	wantRefused(t, d, u.Username, directory.ReasonProtectedGroup, "Domain Admins")
	wantAllowed(t, b.Open(t, "", directory.SelfServicePolicy{AllowPrivileged: true}), u.Username)
}

func testDomainAdminsNested(t *testing.T, b SelfServiceBackend) {
	u, dn := newUser(t, b.Backend, "ssdan")
	tier := b.AddGroup(t, b.UniqueName("tier0"), dn)
	d := b.Open(t, "", directory.SelfServicePolicy{})
	wantAllowed(t, d, u.Username)
	b.AddMember(t, b.DomainAdminsDN, tier) // promoted after the first check
	wantRefused(t, d, u.Username, directory.ReasonProtectedGroup, "Domain Admins")
}

func testNestedInAdministrators(t *testing.T, b SelfServiceBackend) {
	u, dn := newUser(t, b.Backend, "ssadm")
	name := "Admins du domaine " + b.UniqueName("fr")
	g := b.AddGroup(t, name, dn)
	b.AddMember(t, b.AdministratorsDN, g)
	wantRefused(t, b.Open(t, "", directory.SelfServicePolicy{}), u.Username, directory.ReasonProtectedGroup, "Administrators")
}

func testRenamedProtected(t *testing.T, b SelfServiceBackend) {
	u, dn := newUser(t, b.Backend, "ssren")
	name := "Administrateurs du schéma"
	renamed := b.RenameProtected(t, name)
	b.AddMember(t, renamed, dn)
	wantRefused(t, b.Open(t, "", directory.SelfServicePolicy{}), u.Username, directory.ReasonProtectedGroup, name)
}

func testAdminCount(t *testing.T, b SelfServiceBackend) {
	u, dn := newUser(t, b.Backend, "ssac")
	b.SetAdminCount(t, dn)
	wantRefused(t, b.Open(t, "", directory.SelfServicePolicy{}), u.Username, directory.ReasonAdminCount, "")
	wantAllowed(t, b.Open(t, "", directory.SelfServicePolicy{AllowPrivileged: true}), u.Username)
}
