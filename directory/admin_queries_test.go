package directory_test

import (
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/directorytest"
	"github.com/replyreset/replyreset/directory/ldaplab"
)

var _ directorytest.AdminDirectory = (*directory.Client)(nil)

// adminBackend adapts an ldaplab server to the admin-queries suite.
func adminBackend(t *testing.T, s *ldaplab.Server) directorytest.AdminBackend {
	b := directorytest.AdminBackend{
		Backend: labBackend(t, s),
		Open: func(t *testing.T, baseDN string) directorytest.AdminDirectory {
			c := labConfig(s, s.ServiceDN, s.ServicePassword)
			if baseDN != "" {
				c.BaseDN = baseDN
			}
			return openClient(t, c)
		},
		BaseDN: s.BaseDN,
		AddPerson: func(t *testing.T, p directorytest.Person) string {
			return s.AddUserIn(t, p.Parent, ldaplab.UserSpec{Username: p.Username, Password: p.Password,
				DisplayName: p.DisplayName, Mail: p.Mail, Mobile: p.Mobile, GivenName: p.GivenName, Surname: p.Surname})
		},
		AddGroup: func(t *testing.T, g directorytest.GroupSpec) string {
			return s.AddGroup(t, ldaplab.GroupSpec{Name: g.Name, AccountName: g.AccountName, Parent: g.Parent, Members: g.Members})
		},
		AddMember:         func(t *testing.T, group, member string) { s.AddMember(t, group, member) },
		AddOU:             func(t *testing.T, name, parent string) string { return s.AddOU(t, name, parent) },
		GroupAccountNames: s.Dialect == ldaplab.DialectAD,
		UPNSuffix:         s.UPNSuffix(),
		NetBIOSDomain:     s.NetBIOSDomain(),
	}
	if s.Dialect == ldaplab.DialectAD {
		b.ShortLockout = func(t *testing.T, _ string) time.Duration { return sambaShortLockout(t, s) }
	} else {
		b.ShortLockout = func(t *testing.T, dn string) time.Duration { return openldapShortLockout(t, s, dn) }
	}
	return b
}

func TestAdminQueriesSambaAD(t *testing.T) {
	directorytest.RunAdmin(t, adminBackend(t, ldaplab.Samba(t)))
}

func TestAdminQueriesOpenLDAP(t *testing.T) {
	directorytest.RunAdmin(t, adminBackend(t, ldaplab.OpenLDAP(t)))
}
