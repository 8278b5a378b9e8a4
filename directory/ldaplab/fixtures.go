package ldaplab

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// DefaultPassword is the password AddUser gives when UserSpec.Password is
// empty. It satisfies both labs' policies (AD complexity, ppolicy length).
const DefaultPassword = "Initial#Pass1"

// LockoutThreshold is the number of failed binds that lock an account in
// both labs.
const LockoutThreshold = 5

// opTimeout bounds every LDAP operation of the harness.
const opTimeout = 10 * time.Second

// UserSpec describes a user for AddUser. Empty fields are left out, except
// Username (default: UniqueName("user")) and Password (DefaultPassword).
type UserSpec struct {
	Username    string // sAMAccountName (AD) or uid (OpenLDAP); at most 20 characters on AD
	Password    string
	GivenName   string
	Surname     string
	DisplayName string
	Mail        string
	Mobile      string
}

// Dial opens an LDAPS connection to the server that verifies its certificate
// against CAFile. The caller binds and closes it.
func (s *Server) Dial() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.LDAPSURL,
		ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}),
		ldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		return nil, fmt.Errorf("ldaplab: dial %s: %w", s.LDAPSURL, err)
	}
	c.SetTimeout(opTimeout)
	return c, nil
}

// bound dials and binds as dn.
func (s *Server) bound(dn, password string) (*ldap.Conn, error) {
	c, err := s.Dial()
	if err != nil {
		return nil, err
	}
	if err := c.Bind(dn, password); err != nil {
		c.Close()
		return nil, fmt.Errorf("ldaplab: bind as %s: %w", dn, err)
	}
	return c, nil
}

// probe is the readiness check: an admin bind over verified LDAPS.
func (s *Server) probe() error {
	c, err := s.bound(s.AdminDN, s.AdminPassword)
	if err != nil {
		return err
	}
	return c.Close()
}

// Conn returns a connection bound as dn over LDAPS, closed when the test
// ends.
func (s *Server) Conn(t testing.TB, dn, password string) *ldap.Conn {
	t.Helper()
	c, err := s.bound(dn, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// AdminConn returns a connection bound as the administrator (for fixtures),
// closed when the test ends.
func (s *Server) AdminConn(t testing.TB) *ldap.Conn {
	t.Helper()
	return s.Conn(t, s.AdminDN, s.AdminPassword)
}

// UniqueName returns prefix (lower-cased, letters and digits only, cut to 11
// characters) with a random suffix: at most 20 characters, so it fits
// sAMAccountName.
func UniqueName(prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if b.Len() == 11 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("u")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return b.String() + "-" + hex.EncodeToString(suffix)
}

// UniqueName is the package function UniqueName, for convenience.
func (s *Server) UniqueName(prefix string) string { return UniqueName(prefix) }

// AddUser creates an enabled user in UsersDN as the administrator and returns
// its DN. On AD the user gets sAMAccountName, userPrincipalName
// (username@sspr.test), unicodePwd and userAccountControl 512; on OpenLDAP an
// inetOrgPerson with uid and a cleartext userPassword that ppolicy hashes.
func (s *Server) AddUser(t testing.TB, u UserSpec) string {
	t.Helper()
	if u.Username == "" {
		u.Username = UniqueName("user")
	}
	if u.Password == "" {
		u.Password = DefaultPassword
	}
	var add *ldap.AddRequest
	if s.Dialect == DialectAD {
		add = ldap.NewAddRequest("CN="+ldap.EscapeDN(u.Username)+","+s.UsersDN, nil)
		add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		add.Attribute("sAMAccountName", []string{u.Username})
		add.Attribute("userPrincipalName", []string{u.Username + "@" + strings.ToLower(sambaRealm)})
		add.Attribute("unicodePwd", []string{adPassword(u.Password)})
		add.Attribute("userAccountControl", []string{"512"}) // normal account, enabled
	} else {
		add = ldap.NewAddRequest("uid="+ldap.EscapeDN(u.Username)+","+s.UsersDN, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{u.Username})
		add.Attribute("cn", []string{firstNonEmpty(u.DisplayName, u.Username)})
		add.Attribute("sn", []string{firstNonEmpty(u.Surname, u.Username)})
		add.Attribute("userPassword", []string{u.Password})
	}
	for attr, v := range map[string]string{"givenName": u.GivenName, "displayName": u.DisplayName,
		"mail": u.Mail, "mobile": u.Mobile} {
		if v != "" {
			add.Attribute(attr, []string{v})
		}
	}
	if s.Dialect == DialectAD && u.Surname != "" {
		add.Attribute("sn", []string{u.Surname})
	}
	c, err := s.bound(s.AdminDN, s.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Add(add); err != nil {
		t.Fatalf("ldaplab: add user %s: %v", add.DN, err)
	}
	return add.DN
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// adPassword encodes a unicodePwd value: the password in double quotes, as
// UTF-16LE.
func adPassword(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return string(b)
}
