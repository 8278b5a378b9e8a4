package ldaplab

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// GroupSpec describes a static group for AddGroup.
type GroupSpec struct {
	Name string // cn
	// AccountName is the group's sAMAccountName on AD (default Name);
	// OpenLDAP groups have none.
	AccountName string
	// Parent is the container the group is created in; default the groups
	// OU (GroupsDN).
	Parent string
	// Members are the member DNs. A groupOfNames (OpenLDAP) needs at least
	// one.
	Members []string
}

// GroupsDN is the container of the fixture groups (Helpdesk, Tier2).
func (s *Server) GroupsDN() string {
	if s.Dialect == DialectAD {
		return "OU=Groups," + s.BaseDN
	}
	return "ou=groups," + s.BaseDN
}

// UPNSuffix is what AddUser appends to the username for userPrincipalName
// on AD ("@sspr.test"); "" on OpenLDAP.
func (s *Server) UPNSuffix() string {
	if s.Dialect == DialectAD {
		return "@" + strings.ToLower(sambaRealm)
	}
	return ""
}

// NetBIOSDomain is the AD domain's NetBIOS name ("SSPR"); "" on OpenLDAP.
func (s *Server) NetBIOSDomain() string {
	if s.Dialect == DialectAD {
		return sambaDomain
	}
	return ""
}

// AddGroup creates a static group as the administrator and returns its DN:
// an AD security group, or an OpenLDAP groupOfNames.
func (s *Server) AddGroup(t testing.TB, g GroupSpec) string {
	t.Helper()
	parent := firstNonEmpty(g.Parent, s.GroupsDN())
	var add *ldap.AddRequest
	if s.Dialect == DialectAD {
		add = ldap.NewAddRequest("CN="+ldap.EscapeDN(g.Name)+","+parent, nil)
		add.Attribute("objectClass", []string{"top", "group"})
		add.Attribute("sAMAccountName", []string{firstNonEmpty(g.AccountName, g.Name)})
	} else {
		add = ldap.NewAddRequest("cn="+ldap.EscapeDN(g.Name)+","+parent, nil)
		add.Attribute("objectClass", []string{"groupOfNames"})
		add.Attribute("cn", []string{g.Name})
	}
	if len(g.Members) > 0 {
		add.Attribute("member", g.Members)
	}
	if err := s.AdminConn(t).Add(add); err != nil {
		t.Fatalf("ldaplab: add group %s: %v", add.DN, err)
	}
	return add.DN
}

// AddMember adds memberDN to the group at groupDN.
func (s *Server) AddMember(t testing.TB, groupDN, memberDN string) {
	t.Helper()
	m := ldap.NewModifyRequest(groupDN, nil)
	m.Add("member", []string{memberDN})
	if err := s.AdminConn(t).Modify(m); err != nil {
		t.Fatalf("ldaplab: add member %s to %s: %v", memberDN, groupDN, err)
	}
}

// AddOU creates the organizational unit name under parent (default BaseDN)
// and returns its DN.
func (s *Server) AddOU(t testing.TB, name, parent string) string {
	t.Helper()
	rdn := "ou="
	if s.Dialect == DialectAD {
		rdn = "OU="
	}
	add := ldap.NewAddRequest(rdn+ldap.EscapeDN(name)+","+firstNonEmpty(parent, s.BaseDN), nil)
	add.Attribute("objectClass", []string{"top", "organizationalUnit"})
	add.Attribute("ou", []string{name})
	if err := s.AdminConn(t).Add(add); err != nil {
		t.Fatalf("ldaplab: add OU %s: %v", add.DN, err)
	}
	return add.DN
}

// AddUserIn is AddUser, then moves the user to parent (UsersDN when empty)
// and returns its DN there. Only UsersDN carries the service account's
// delegation: it cannot reset or unlock users elsewhere on AD.
func (s *Server) AddUserIn(t testing.TB, parent string, u UserSpec) string {
	t.Helper()
	dn := s.AddUser(t, u)
	if parent == "" || strings.EqualFold(parent, s.UsersDN) {
		return dn
	}
	rdn := strings.TrimSuffix(dn, ","+s.UsersDN)
	if err := s.AdminConn(t).ModifyDN(ldap.NewModifyDNRequest(dn, rdn, true, parent)); err != nil {
		t.Fatalf("ldaplab: move %s to %s: %v", dn, parent, err)
	}
	return rdn + "," + parent
}
