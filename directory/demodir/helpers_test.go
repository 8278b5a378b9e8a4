package demodir

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
)

// start runs a demo directory for the test.
func start(t testing.TB, opt Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tlsFor verifies the server against its CA.
func tlsFor(s *Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// dial opens a verified LDAPS connection, closed when the test ends.
func dial(t testing.TB, s *Server) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}), ldap.DialWithTLSConfig(tlsFor(s)))
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL(), err)
	}
	c.SetTimeout(10 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// bound dials and binds as dn.
func bound(t testing.TB, s *Server, dn, password string) *ldap.Conn {
	t.Helper()
	c := dial(t, s)
	if err := c.Bind(dn, password); err != nil {
		t.Fatalf("bind as %s: %v", dn, err)
	}
	return c
}

func adminConn(t testing.TB, s *Server) *ldap.Conn {
	t.Helper()
	return bound(t, s, s.Administrator().DN, s.Administrator().Password)
}

// uniqueName is prefix (at most 11 characters) and a random suffix: at
// most 20 characters, so it fits sAMAccountName.
func uniqueName(prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if b.Len() == 11 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return b.String() + "-" + hex.EncodeToString(suffix)
}

// ldapAddUser creates an enabled user in UsersDN over LDAP, as the
// administrator, like the Samba lab does.
func ldapAddUser(t testing.TB, s *Server, username, password, displayName, mail, mobile string) string {
	t.Helper()
	add := ldap.NewAddRequest("CN="+ldap.EscapeDN(username)+","+s.UsersDN(), nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{username})
	add.Attribute("userPrincipalName", []string{username + "@" + s.Realm()})
	add.Attribute("unicodePwd", []string{directory.EncodeUnicodePwd(password)})
	add.Attribute("userAccountControl", []string{"512"})
	for attr, v := range map[string]string{"displayName": displayName, "mail": mail, "mobile": mobile} {
		if v != "" {
			add.Attribute(attr, []string{v})
		}
	}
	if err := adminConn(t, s).Add(add); err != nil {
		t.Fatalf("add user %s: %v", add.DN, err)
	}
	return add.DN
}

var adData = regexp.MustCompile(`data ([0-9a-fA-F]+),`)

// bindData binds as dn over its own LDAPS connection and returns AD's
// sub-code ("" for success, "other" for a non-49 failure).
func bindData(t testing.TB, s *Server, dn, password string) (string, error) {
	t.Helper()
	c := dial(t, s)
	defer c.Close()
	err := c.Bind(dn, password)
	if err == nil {
		return "", nil
	}
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		return "other", err
	}
	if m := adData.FindStringSubmatch(err.Error()); m != nil {
		return strings.ToLower(m[1]), err
	}
	return "other", err
}

// computed reads msDS-User-Account-Control-Computed of dn as the
// administrator.
func computed(t testing.TB, s *Server, dn string) int64 {
	t.Helper()
	res, err := adminConn(t, s).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", []string{"msDS-User-Account-Control-Computed"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read computed flags of %s: %v", dn, err)
	}
	var n int64
	for _, ch := range res.Entries[0].GetAttributeValue("msDS-User-Account-Control-Computed") {
		n = n*10 + int64(ch-'0')
	}
	return n
}

func openClient(t testing.TB, c directory.Config) *directory.Client {
	t.Helper()
	d, err := directory.New(c, directory.Options{})
	if err != nil {
		t.Fatalf("directory.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func timeAt(s string) time.Time {
	t, err := time.Parse("20060102150405", s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}
