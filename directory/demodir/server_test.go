package demodir

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
)

func TestRootDSE(t *testing.T) {
	s := start(t, Options{BaseDN: "DC=corp,DC=example,DC=test"})
	res, err := dial(t, s).Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", nil, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("anonymous RootDSE: %v", err)
	}
	e := res.Entries[0]
	if e.DN != "" {
		t.Errorf("RootDSE DN = %q", e.DN)
	}
	for attr, want := range map[string]string{
		"defaultNamingContext":       "DC=corp,DC=example,DC=test",
		"rootDomainNamingContext":    "DC=corp,DC=example,DC=test",
		"configurationNamingContext": "CN=Configuration,DC=corp,DC=example,DC=test",
		"dsServiceName":              "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=corp,DC=example,DC=test",
		"dnsHostName":                "dc1.corp.example.test",
		"isSynchronized":             "TRUE",
	} {
		if got := e.GetAttributeValue(attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	controls := e.GetAttributeValues("supportedControl")
	for _, oid := range []string{oidPagedResults, oidPolicyHints, oidPolicyHintsDeprecated} {
		if !slices.Contains(controls, oid) {
			t.Errorf("supportedControl %v lacks %s", controls, oid)
		}
	}
	if got := e.GetAttributeValue("highestCommittedUSN"); got != fmt.Sprint(s.HighestCommittedUSN()) || got == "0" {
		t.Errorf("highestCommittedUSN = %q, want %d", got, s.HighestCommittedUSN())
	}
	// Attribute selection applies to the RootDSE too.
	res, err = dial(t, s).Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"highestCommittedUSN", "DSSERVICENAME"}, nil))
	if err != nil || len(res.Entries[0].Attributes) != 2 {
		t.Errorf("RootDSE with two attributes: %v, %+v", err, res.Entries[0].Attributes)
	}
	if s.Realm() != "corp.example.test" || s.DirectoryConfig().BaseDN != "DC=corp,DC=example,DC=test" {
		t.Errorf("realm %q, config %+v", s.Realm(), s.DirectoryConfig())
	}
	if err := openClient(t, s.DirectoryConfig()).Ping(ctxT(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestPagedSearch(t *testing.T) {
	t.Parallel() // a server of its own
	s := start(t, Options{})
	const n = 2500
	for i := 0; i < n; i++ {
		if _, err := s.AddUser(UserSpec{Username: fmt.Sprintf("page%04d", i), Password: "Paged#Pass1", Mail: fmt.Sprintf("p%d@example.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	filter := "(&(objectClass=user)(sAMAccountName=page*))"
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"sAMAccountName"}, nil), 300)
	if err != nil {
		t.Fatalf("paged search: %v", err)
	}
	if len(res.Entries) != n {
		t.Fatalf("paged search returned %d entries, want %d", len(res.Entries), n)
	}
	seen := map[string]bool{}
	for _, e := range res.Entries {
		seen[e.GetAttributeValue("sAMAccountName")] = true
	}
	if len(seen) != n {
		t.Errorf("paged search returned %d distinct users, want %d", len(seen), n)
	}
	// Without paging: MaxPageSize (1000), then sizeLimitExceeded.
	res, err = c.Search(ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"1.1"}, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || len(res.Entries) != maxPageSize {
		t.Errorf("unpaged search of %d: %v, %d entries", n, err, len(res.Entries))
	}
	// A size limit with paging bounds the whole search.
	paging := ldap.NewControlPaging(100)
	req := ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 250, 0, false, filter, []string{"1.1"}, []ldap.Control{paging})
	total := 0
	for {
		res, err := c.Search(req)
		if res != nil {
			total += len(res.Entries)
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("paged search with a size limit: %v", err)
		}
		ctrl := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if len(ctrl.Cookie) == 0 {
			t.Fatal("the paged search ended without reaching the size limit")
		}
		paging.SetCookie(ctrl.Cookie)
	}
	if total != 250 {
		t.Errorf("size limit 250 with pages of 100: %d entries", total)
	}
	// A cookie from nowhere is refused.
	paging.SetCookie([]byte("not-a-cookie"))
	if _, err := c.Search(req); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
		t.Errorf("unknown cookie: %v", err)
	}
	// The product's paged scan reads them all: the lockout sweep.
	d := openClient(t, s.DirectoryConfig())
	_, _, st, err := d.ScanLockouts(ctxT(t), nil, true)
	if err != nil || st.EntriesRead != 0 {
		t.Errorf("full lockout sweep: %v, %d entries read (none locked)", err, st.EntriesRead)
	}
	users, err := d.UsersUnder(ctxT(t), s.UsersDN())
	if err != nil || len(users) != n+1 { // and helpdeskadmin
		t.Errorf("UsersUnder: %v, %d users, want %d", err, len(users), n+1)
	}
}

func TestTLSVerification(t *testing.T) {
	s := start(t, Options{StartTLSAddr: "127.0.0.1:0"})
	block, _ := pem.Decode(s.CAPEM())
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CAPEM: %v", err)
	}
	onDisk, err := os.ReadFile(s.CAFile())
	if err != nil || string(onDisk) != string(s.CAPEM()) {
		t.Fatalf("CAFile %s: %v", s.CAFile(), err)
	}
	path, err := s.WriteCAFile(t.TempDir())
	if err != nil || filepath.Base(path) != "demodir-ca.pem" {
		t.Fatalf("WriteCAFile: %q, %v", path, err)
	}
	ctx := ctxT(t)
	for name, mod := range map[string]func(*directory.Config){
		"ldaps 127.0.0.1": func(*directory.Config) {},
		"starttls":        func(c *directory.Config) { c.URLs, c.StartTLS = []string{s.StartTLSURL()}, true },
		"written CA file": func(c *directory.Config) { c.CAFile = path },
	} {
		c := s.DirectoryConfig()
		mod(&c)
		if err := openClient(t, c).Ping(ctx); err != nil {
			t.Errorf("%s: Ping: %v", name, err)
		}
	}
	// Without the CA (system roots), or with another server's CA: a TLS error.
	other := start(t, Options{})
	for name, mod := range map[string]func(*directory.Config){
		"system roots":    func(c *directory.Config) { c.CAFile = "" },
		"another CA":      func(c *directory.Config) { c.CAFile = other.CAFile() },
		"starttls, no CA": func(c *directory.Config) { c.URLs, c.StartTLS, c.CAFile = []string{s.StartTLSURL()}, true, "" },
	} {
		c := s.DirectoryConfig()
		mod(&c)
		if err := openClient(t, c).Ping(ctx); !errors.Is(err, directory.ErrTLS) {
			t.Errorf("%s: Ping: %v, want ErrTLS", name, err)
		}
	}
	// The certificate names 127.0.0.1, ::1 and localhost, and nothing else
	// (checked without a DNS lookup: the name is the TLS server name).
	for name, ok := range map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true, "dc1.demo.example": true, "example.com": false} {
		cfg := tlsFor(s)
		cfg.ServerName = name
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL(), "ldaps://"), cfg)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != ok {
			t.Errorf("TLS with server name %s: %v, want ok=%v", name, err, ok)
		}
	}
}

func TestListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:636", "localhost:0"} {
		s, err := Start(context.Background(), Options{Addr: addr})
		if err == nil {
			s.Close()
			t.Errorf("Start(Addr %q) succeeded", addr)
		}
	}
	// A fixed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := start(t, Options{Addr: addr})
	if s.URL() != "ldaps://"+addr {
		t.Errorf("URL = %s, want ldaps://%s", s.URL(), addr)
	}
	// The port is now taken: a second server fails to start.
	if s2, err := Start(context.Background(), Options{Addr: addr}); err == nil {
		s2.Close()
		t.Errorf("a second server started on the busy %s", addr)
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := directory.New(s.DirectoryConfig(), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(ctxT(t)); err != nil { // leaves a pooled connection open
		t.Fatal(err)
	}
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with an idle client connection", took)
	}
	if _, err := os.Stat(s.CAFile()); !os.IsNotExist(err) {
		t.Errorf("the temporary CA file survived Close: %v", err)
	}
	if err := d.Ping(ctxT(t)); !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("Ping after Close: %v, want ErrUnavailable", err)
	}
}

func TestSeed(t *testing.T) {
	s := start(t, Options{Seed: true})
	users := s.Users()
	if len(users) < 20 {
		t.Fatalf("%d users, want about 20", len(users))
	}
	var sales, engineering int
	for _, u := range users {
		if u.Mail == "" || u.DisplayName == "" || u.DN == "" {
			t.Errorf("sample user %+v lacks mail, name or DN", u)
		}
		if u.Mobile != "" && !(strings.HasPrefix(u.Mobile, "+1") && len(u.Mobile) == 12 && u.Mobile[5:9] == "5550" && u.Mobile[9] == '1') {
			t.Errorf("%s: mobile %s is not in +1 NPA 555-01xx", u.Username, u.Mobile)
		}
		switch {
		case strings.Contains(u.DN, "OU=Sales,OU=Demo Users,"):
			sales++
		case strings.Contains(u.DN, "OU=Engineering,OU=Demo Users,"):
			engineering++
		}
	}
	if sales < 8 || engineering < 8 {
		t.Errorf("%d sales and %d engineering users", sales, engineering)
	}
	if !slices.IsSortedFunc(users, func(a, b User) int { return strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)) }) {
		t.Error("Users() is not sorted by username")
	}
	if err := s.Bind("amartin", SamplePassword); err != nil {
		t.Errorf("sample password: %v", err)
	}
	if err := s.Bind("jwright", SamplePassword); !isData(err, dataDisabled) {
		t.Errorf("disabled sample user: %v", err)
	}
	if err := s.Bind("tnguyen@"+s.Realm(), SamplePassword); !isData(err, dataMustChange) {
		t.Errorf("must-change sample user: %v", err)
	}
	if err := s.Bind(HelpdeskUsername, HelpdeskPassword); err != nil {
		t.Errorf("helpdesk admin: %v", err)
	}

	// The product: nested admin group, sample users found by mobile, reset
	// and unlock within the delegation.
	d := openClient(t, s.DirectoryConfig())
	ctx := ctxT(t)
	if ok, err := d.IsAdmin(ctx, HelpdeskUsername); !ok || err != nil {
		t.Errorf("IsAdmin(helpdeskadmin) = %v, %v", ok, err)
	}
	if ok, err := d.IsAdmin(ctx, "amartin"); ok || err != nil {
		t.Errorf("IsAdmin(amartin) = %v, %v", ok, err)
	}
	admins, err := d.AdminContacts(ctx)
	if err != nil || len(admins) != 1 || admins[0].Username != HelpdeskUsername {
		t.Errorf("AdminContacts = %+v, %v", admins, err)
	}
	u, err := d.FindByMobile(ctx, "+14155550101")
	if err != nil || u.Username != "amartin" || u.DisplayName != "Alice Martin" || u.Mail != "alice.martin@demo.example" {
		t.Fatalf("FindByMobile = %+v, %v", u, err)
	}
	for i := 0; i < DefaultLockoutThreshold; i++ {
		_ = s.Bind("amartin", "Wrong#Pass1")
	}
	ev, _, _, err := d.ScanLockouts(ctx, nil, true)
	if err != nil || len(ev) != 1 || ev[0].User.Username != "amartin" {
		t.Errorf("ScanLockouts = %+v, %v", ev, err)
	}
	if err := d.SetPassword(ctx, u, "Fresh#Pass2026", directory.SetPasswordOptions{MustChange: true, Unlock: true}); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if err := s.Bind("amartin", "Fresh#Pass2026"); !isData(err, dataMustChange) {
		t.Errorf("after a must-change reset: %v", err)
	}
	if got := s.Users()[slices.IndexFunc(s.Users(), func(u User) bool { return u.Username == "amartin" })]; got.Locked || !got.MustChange {
		t.Errorf("Users() after reset: %+v", got)
	}
	// The Administrator is out of the service account's reach.
	admin, err := d.FindUser(ctx, "Administrator")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetPassword(ctx, admin, "Evil#Pass2026", directory.SetPasswordOptions{}); !errors.Is(err, directory.ErrInsufficientRights) {
		t.Errorf("SetPassword(Administrator) = %v, want ErrInsufficientRights", err)
	}
}
