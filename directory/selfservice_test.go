package directory_test

import (
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/directorytest"
	"github.com/replyreset/replyreset/directory/ldaplab"
)

// selfServiceBackend adapts a lab server to the self-service suite; on
// Samba the protected groups are the domain's own (found by their
// well-known SIDs by the code under test, by DN here).
func selfServiceBackend(t *testing.T, s *ldaplab.Server) directorytest.SelfServiceBackend {
	open := func(t *testing.T, c directory.Config, p directory.SelfServicePolicy) directorytest.SelfServiceDirectory {
		d, err := directory.New(c, directory.Options{SelfService: p})
		if err != nil {
			t.Fatalf("directory.New: %v", err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	b := directorytest.SelfServiceBackend{
		Backend: labBackend(t, s),
		Open: func(t *testing.T, adminGroup string, p directory.SelfServicePolicy) directorytest.SelfServiceDirectory {
			c := labConfig(s, s.ServiceDN, s.ServicePassword)
			c.AdminGroup = adminGroup
			return open(t, c, p)
		},
		AddGroup: func(t *testing.T, name string, members ...string) string {
			return s.AddGroup(t, ldaplab.GroupSpec{Name: name, AccountName: s.UniqueName("g"), Members: members})
		},
		AddMember:     func(t *testing.T, group, member string) { s.AddMember(t, group, member) },
		AdminGroupDN:  s.AdminGroupDN,
		AdminUsername: s.HelpdeskUsername,
	}
	if s.Dialect != ldaplab.DialectAD {
		return b
	}
	b.OpenAsAdministrator = func(t *testing.T) directorytest.SelfServiceDirectory {
		return open(t, labConfig(s, s.AdminDN, s.AdminPassword), directory.SelfServicePolicy{})
	}
	b.DomainAdminsDN = "CN=Domain Admins,CN=Users," + s.BaseDN
	b.AdministratorsDN = "CN=Administrators,CN=Builtin," + s.BaseDN
	b.RenameProtected = func(t *testing.T, name string) string {
		rename := func(from, cn string) (string, error) {
			if err := s.AdminConn(t).ModifyDN(ldap.NewModifyDNRequest(from, "CN="+ldap.EscapeDN(cn), true, "")); err != nil {
				return "", err
			}
			return "CN=" + ldap.EscapeDN(cn) + ",CN=Users," + s.BaseDN, nil
		}
		dn, err := rename("CN=Schema Admins,CN=Users,"+s.BaseDN, name)
		if err != nil {
			t.Fatalf("rename Schema Admins: %v", err)
		}
		t.Cleanup(func() {
			if _, err := rename(dn, "Schema Admins"); err != nil {
				t.Errorf("rename %s back: %v", dn, err)
			}
		})
		return dn
	}
	b.SetAdminCount = func(t *testing.T, dn string) {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("adminCount", []string{"1"})
		if err := s.AdminConn(t).Modify(m); err != nil {
			t.Fatalf("set adminCount on %s: %v", dn, err)
		}
	}
	return b
}

func TestSelfServiceSambaAD(t *testing.T) {
	directorytest.RunSelfService(t, selfServiceBackend(t, ldaplab.Samba(t)))
}

func TestSelfServiceOpenLDAP(t *testing.T) {
	directorytest.RunSelfService(t, selfServiceBackend(t, ldaplab.OpenLDAP(t)))
}
