package demodir

import (
	"errors"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/directorytest"
)

// selfServiceBackend adds the self-service suite's fixtures: groups and
// adminCount written over LDAP as the administrator; the rename through
// the Go API (the server does not implement modify DN).
func selfServiceBackend(s *Server) directorytest.SelfServiceBackend {
	lb := lockoutBackend(s)
	open := func(t *testing.T, c directory.Config, p directory.SelfServicePolicy) directorytest.SelfServiceDirectory {
		d, err := directory.New(c, directory.Options{SelfService: p})
		if err != nil {
			t.Fatalf("directory.New: %v", err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	return directorytest.SelfServiceBackend{
		Backend: lb.Backend,
		Open: func(t *testing.T, adminGroup string, p directory.SelfServicePolicy) directorytest.SelfServiceDirectory {
			c := s.DirectoryConfig()
			c.AdminGroup = adminGroup
			return open(t, c, p)
		},
		OpenAsAdministrator: func(t *testing.T) directorytest.SelfServiceDirectory {
			c := s.DirectoryConfig()
			c.BindDN, c.BindPassword = s.Administrator().DN, s.Administrator().Password
			return open(t, c, directory.SelfServicePolicy{})
		},
		AddGroup: func(t *testing.T, name string, members ...string) string {
			add := ldap.NewAddRequest("CN="+ldap.EscapeDN(name)+",OU=Groups,"+s.BaseDN(), nil)
			add.Attribute("objectClass", []string{"top", "group"})
			add.Attribute("sAMAccountName", []string{uniqueName("g")})
			add.Attribute("member", members)
			if err := adminConn(t, s).Add(add); err != nil {
				t.Fatalf("add group %s: %v", add.DN, err)
			}
			return add.DN
		},
		AddMember:        lb.AddMember,
		AdminGroupDN:     s.AdminGroupDN(),
		AdminUsername:    HelpdeskUsername,
		DomainAdminsDN:   "CN=Domain Admins,CN=Users," + s.BaseDN(),
		AdministratorsDN: "CN=Administrators,CN=Builtin," + s.BaseDN(),
		RenameProtected: func(t *testing.T, name string) string {
			old := "CN=Schema Admins,CN=Users," + s.BaseDN()
			dn, err := s.Rename(old, name)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := s.Rename(dn, "Schema Admins"); err != nil {
					t.Error(err)
				}
			})
			return dn
		},
		SetAdminCount: func(t *testing.T, dn string) {
			m := ldap.NewModifyRequest(dn, nil)
			m.Replace("adminCount", []string{"1"})
			if err := adminConn(t, s).Modify(m); err != nil {
				t.Fatalf("set adminCount on %s: %v", dn, err)
			}
		},
	}
}

func TestSelfServiceSuite(t *testing.T) {
	t.Parallel() // a server of its own
	s := start(t, Options{})
	directorytest.RunSelfService(t, selfServiceBackend(s))
}

// TestSelfServiceWithoutTokenGroupsFailsClosed: an account whose
// tokenGroups come back empty (as when the service account may not read
// them) is not taken for an ordinary one: the check fails.
func TestSelfServiceWithoutTokenGroupsFailsClosed(t *testing.T) {
	t.Parallel() // a server of its own
	s := start(t, Options{})
	b := selfServiceBackend(s)
	u := b.UniqueName("notg")
	b.AddUser(t, directorytest.UserSpec{Username: u, Password: "Initial#Pass1x", DisplayName: "No TG"})
	d := b.Open(t, "", directory.SelfServicePolicy{})
	found, err := d.FindUser(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckSelfService(t.Context(), found); err != nil {
		t.Fatalf("CheckSelfService before: %v", err)
	}
	if err := s.Delete("CN=Domain Users,CN=Users," + s.BaseDN()); err != nil {
		t.Fatal(err)
	}
	err = d.CheckSelfService(t.Context(), found)
	if !errors.Is(err, directory.ErrInsufficientRights) || errors.Is(err, directory.ErrNoSelfService) {
		t.Fatalf("CheckSelfService without tokenGroups = %v, want ErrInsufficientRights", err)
	}
}
