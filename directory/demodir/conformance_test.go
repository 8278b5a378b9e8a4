package demodir

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/directorytest"
)

// backend adapts a demo directory to the conformance suite: the product's
// real directory.Client over LDAPS, fixtures over LDAP as the
// administrator, as the Samba lab does.
func backend(s *Server) directorytest.Backend {
	return directorytest.Backend{
		Name: "demodir",
		Directory: func(t *testing.T) directory.Directory {
			return openClient(t, s.DirectoryConfig())
		},
		Unprivileged: func(t *testing.T) directory.Directory {
			name := uniqueName("weak")
			dn := ldapAddUser(t, s, name, "Weak#Pass1x", "Weak", "", "")
			c := s.DirectoryConfig()
			c.BindDN, c.BindPassword = dn, "Weak#Pass1x"
			return openClient(t, c)
		},
		AddUser: func(t *testing.T, u directorytest.UserSpec) string {
			return ldapAddUser(t, s, u.Username, u.Password, u.DisplayName, u.Mail, u.Mobile)
		},
		UniqueName: uniqueName,
		LockOut: func(t *testing.T, dn string) {
			c := dial(t, s)
			for i := 0; i < DefaultLockoutThreshold; i++ {
				if err := c.Bind(dn, "Wrong#"+uniqueName("pw")); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
					t.Fatalf("bad bind %d as %s: want result 49, got %v", i+1, dn, err)
				}
			}
			if computed(t, s, dn)&ufLockout == 0 {
				t.Fatalf("%s is not locked after %d bad binds", dn, DefaultLockoutThreshold)
			}
		},
		RawBind: func(dn, password string) (directorytest.BindOutcome, error) {
			return rawBind(s, dn, password)
		},
		SpecialCharUsernames: false, // sAMAccountName may not hold *()\ on AD
	}
}

// rawBind binds on a connection of its own (not the code under test).
func rawBind(s *Server, dn, password string) (directorytest.BindOutcome, error) {
	c, err := ldap.DialURL(s.URL(), ldap.DialWithTLSConfig(tlsFor(s)))
	if err != nil {
		return directorytest.BindOther, err
	}
	defer c.Close()
	err = c.Bind(dn, password)
	if err == nil {
		return directorytest.BindOK, nil
	}
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		return directorytest.BindOther, err
	}
	m := adData.FindStringSubmatch(err.Error())
	if m == nil {
		return directorytest.BindOther, err
	}
	switch m[1] {
	case dataInvalid:
		return directorytest.BindInvalid, err
	case dataMustChange:
		return directorytest.BindMustChange, err
	case dataLocked:
		return directorytest.BindLocked, err
	}
	return directorytest.BindOther, err
}

func TestConformance(t *testing.T) {
	t.Parallel() // a server of its own
	s := start(t, Options{})
	directorytest.Run(t, backend(s))
}

// lockoutBackend adds the lockout suite's fixtures: LDAP groups as the
// administrator, and a short domain lockout duration set over LDAP on the
// domain object, as the Samba lab does.
func lockoutBackend(s *Server) directorytest.LockoutBackend {
	return directorytest.LockoutBackend{
		Backend: backend(s),
		Scanner: func(t *testing.T, adminGroup string) directorytest.LockoutDirectory {
			c := s.DirectoryConfig()
			c.AdminGroup = adminGroup
			return openClient(t, c)
		},
		AdminGroupDN:  s.AdminGroupDN(),
		AdminUsername: HelpdeskUsername,
		AddGroup: func(t *testing.T, name string, members ...string) string {
			add := ldap.NewAddRequest("CN="+ldap.EscapeDN(name)+",OU=Groups,"+s.BaseDN(), nil)
			add.Attribute("objectClass", []string{"top", "group"})
			add.Attribute("sAMAccountName", []string{name})
			add.Attribute("member", members)
			if err := adminConn(t, s).Add(add); err != nil {
				t.Fatalf("add group %s: %v", add.DN, err)
			}
			return add.DN
		},
		AddMember: func(t *testing.T, group, member string) {
			m := ldap.NewModifyRequest(group, nil)
			m.Add("member", []string{member})
			if err := adminConn(t, s).Modify(m); err != nil {
				t.Fatalf("add member %s to %s: %v", member, group, err)
			}
		},
		ShortLockout: func(t *testing.T, _ string) time.Duration {
			const d = 2 * time.Second
			set := func(c *ldap.Conn, duration, window string) {
				m := ldap.NewModifyRequest(s.BaseDN(), nil)
				m.Replace("lockoutDuration", []string{duration})
				m.Replace("lockOutObservationWindow", []string{window})
				if err := c.Modify(m); err != nil {
					t.Fatalf("set the domain lockout duration: %v", err)
				}
			}
			res, err := adminConn(t, s).Search(ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
				"(objectClass=*)", []string{"lockoutDuration", "lockOutObservationWindow"}, nil))
			if err != nil || len(res.Entries) != 1 {
				t.Fatalf("read the domain lockout policy: %v", err)
			}
			origD, origW := res.Entries[0].GetAttributeValue("lockoutDuration"), res.Entries[0].GetAttributeValue("lockOutObservationWindow")
			ticks := fmt.Sprint(-int64(d / 100))
			set(adminConn(t, s), ticks, ticks)
			t.Cleanup(func() { set(adminConn(t, s), origD, origW) })
			return d
		},
	}
}

func TestLockoutSuite(t *testing.T) {
	t.Parallel() // a server of its own
	s := start(t, Options{})
	directorytest.RunLockout(t, lockoutBackend(s))
}

// adminBackend adds the admin-queries suite's fixtures, created over LDAP
// as the administrator.
func adminBackend(s *Server) directorytest.AdminBackend {
	lb := lockoutBackend(s)
	return directorytest.AdminBackend{
		Backend: lb.Backend,
		Open: func(t *testing.T, baseDN string) directorytest.AdminDirectory {
			c := s.DirectoryConfig()
			if baseDN != "" {
				c.BaseDN = baseDN
			}
			return openClient(t, c)
		},
		BaseDN: s.BaseDN(),
		AddPerson: func(t *testing.T, p directorytest.Person) string {
			parent := p.Parent
			if parent == "" {
				parent = s.UsersDN()
			}
			add := ldap.NewAddRequest("CN="+ldap.EscapeDN(p.Username)+","+parent, nil)
			add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
			add.Attribute("sAMAccountName", []string{p.Username})
			add.Attribute("userPrincipalName", []string{p.Username + "@" + s.Realm()})
			add.Attribute("unicodePwd", []string{directory.EncodeUnicodePwd(p.Password)})
			add.Attribute("userAccountControl", []string{"512"})
			for attr, v := range map[string]string{"displayName": p.DisplayName, "mail": p.Mail, "mobile": p.Mobile,
				"givenName": p.GivenName, "sn": p.Surname} {
				if v != "" {
					add.Attribute(attr, []string{v})
				}
			}
			if err := adminConn(t, s).Add(add); err != nil {
				t.Fatalf("add person %s: %v", add.DN, err)
			}
			return add.DN
		},
		AddGroup: func(t *testing.T, g directorytest.GroupSpec) string {
			parent := g.Parent
			if parent == "" {
				parent = "OU=Groups," + s.BaseDN()
			}
			account := g.AccountName
			if account == "" {
				account = g.Name
			}
			add := ldap.NewAddRequest("CN="+ldap.EscapeDN(g.Name)+","+parent, nil)
			add.Attribute("objectClass", []string{"top", "group"})
			add.Attribute("sAMAccountName", []string{account})
			if len(g.Members) > 0 {
				add.Attribute("member", g.Members)
			}
			if err := adminConn(t, s).Add(add); err != nil {
				t.Fatalf("add group %s: %v", add.DN, err)
			}
			return add.DN
		},
		AddMember: lb.AddMember,
		AddOU: func(t *testing.T, name, parent string) string {
			if parent == "" {
				parent = s.BaseDN()
			}
			add := ldap.NewAddRequest("OU="+ldap.EscapeDN(name)+","+parent, nil)
			add.Attribute("objectClass", []string{"top", "organizationalUnit"})
			if err := adminConn(t, s).Add(add); err != nil {
				t.Fatalf("add OU %s: %v", add.DN, err)
			}
			return add.DN
		},
		ShortLockout:      lb.ShortLockout,
		GroupAccountNames: true,
		UPNSuffix:         "@" + s.Realm(),
		NetBIOSDomain:     "DEMO",
	}
}

func TestAdminQueriesSuite(t *testing.T) {
	t.Parallel() // a server of its own
	s := start(t, Options{})
	directorytest.RunAdmin(t, adminBackend(s))
}
