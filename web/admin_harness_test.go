package web

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// The admin console and API are tested against a real Samba AD DC (the
// admin group is nested: Helpdesk → Tier2 → helpdeskadmin), the real
// directory client, enrollment service, bbolt store and templates. Mail is
// recorded by enrolltest.Mailer; the clock of sessions and guards is a
// test clock.

func TestMain(m *testing.M) {
	code := m.Run()
	ldaplab.StopAll()
	ldaplab.ReportSkipped(code)
	os.Exit(code)
}

var (
	_ AdminDirectory = (*directory.Client)(nil)
	_ AdminService   = (*enroll.Service)(nil)
	_ AdminStore     = (*bolt.Store)(nil)
	_ Store          = (*bolt.Store)(nil)
	_ AdminPages     = (*templates.Pages)(nil)
)

type adminApp struct {
	t        *testing.T
	lab      *ldaplab.Server
	dir      *directory.Client
	store    *bolt.Store
	sealer   *enroll.Sealer
	svc      *enroll.Service
	mailer   *enrolltest.Mailer
	clock    *enrolltest.Clock
	handler  http.Handler
	deps     Deps // what handler was built from: NewEcho(deps) is another node on the same store
	pages    *templates.Pages
	log      *enrolltest.LogBuffer
	binds    *bindCounter // the sign-in binds that reached the directory
	browsers int
}

func newAdminApp(t *testing.T) *adminApp {
	t.Helper()
	return newAdminAppOn(t, ldaplab.Samba(t))
}

// newAdminAppOn is newAdminApp on the given lab (Samba AD or OpenLDAP);
// each opt may change the server's Deps.
func newAdminAppOn(t *testing.T, lab *ldaplab.Server, opts ...func(*Deps)) *adminApp {
	t.Helper()
	cfg := lab.DirectoryConfig()
	cfg.AdminGroup = lab.AdminGroupDN
	dir, err := directory.New(cfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	store, sealer, catalog, pages := testData(t)
	a := &adminApp{t: t, lab: lab, dir: dir, store: store, sealer: sealer, mailer: &enrolltest.Mailer{},
		clock: enrolltest.NewClock(time.Now()), pages: pages, log: &enrolltest.LogBuffer{}, binds: &bindCounter{Client: dir}}
	logger := slog.New(slog.NewJSONHandler(a.log, nil))
	a.svc = enroll.NewService(enroll.ServiceDeps{Store: store, Directory: dir, Mailer: a.mailer, Mails: &enrolltest.Renderer{},
		Messages: catalog, Sealer: sealer, Outbox: outbox.NewQueue(store, sealer, nil), Log: logger, Now: a.clock.Now},
		enroll.ServiceSettings{Config: enroll.DefaultConfig(), PublicURL: "http://127.0.0.1", DefaultLanguage: "en", DefaultRegion: "US"})
	d := Deps{Logger: logger, Pages: pages, Enrollment: a.svc, Store: store,
		PublicURL: "http://127.0.0.1", Language: "en", Now: a.clock.Now,
		AdminDirectory: a.binds, AdminService: a.svc, Admin: AdminConfig{SessionTTL: time.Hour},
		MailQueue: store}
	for _, opt := range opts {
		opt(&d)
	}
	a.deps, a.handler = d, NewEcho(d)
	return a
}

// bindCounter is the real directory client, counting the sign-in binds
// (Authenticate calls) that reach the directory.
type bindCounter struct {
	*directory.Client
	n atomic.Int64
}

func (b *bindCounter) Authenticate(ctx context.Context, login, password string) (directory.User, error) {
	b.n.Add(1)
	return b.Client.Authenticate(ctx, login, password)
}

// user adds a directory user with a mail address and returns its username.
func (a *adminApp) user(prefix string) string {
	a.t.Helper()
	name := a.lab.UniqueName(prefix)
	a.lab.AddUser(a.t, ldaplab.UserSpec{Username: name, Password: "Initial#Pass1x", DisplayName: "User " + name,
		Mail: name + "@example.com"})
	return name
}

// admin adds a directory user who is a direct member of the admin group.
func (a *adminApp) admin(prefix string) (username, password string) {
	a.t.Helper()
	username, password = a.lab.UniqueName(prefix), "Admin#Pass1x"
	dn := a.lab.AddUser(a.t, ldaplab.UserSpec{Username: username, Password: password, DisplayName: "Admin " + username})
	a.lab.AddMember(a.t, a.lab.AdminGroupDN, dn)
	return username, password
}

// browser returns a fresh browser that has opened the login page, so it
// holds a form token.
func (a *adminApp) browser(t *testing.T) *browser {
	b := newHTTPBrowser(t, a.handler, "en")
	a.browsers++
	b.ip = fmt.Sprintf("192.0.2.%d", a.browsers) // each its own address, for the per-address guard
	b.get("/admin/login")
	return b
}

// login signs in and fails the test unless it worked.
func (b *browser) login(username, password string) {
	b.t.Helper()
	p := b.post("/admin/login", url.Values{"username": {username}, "password": {password}})
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/dashboard" {
		b.t.Fatalf("login as %s: status %d location %q\n%s", username, p.code, p.header.Get("Location"), errorText(p.body))
	}
	b.get("/admin/dashboard") // where the redirect leads: its forms carry the session's token
}

var alertRE = regexp.MustCompile(`(?s)role="alert">(.*?)</p>`)
var noticeRE = regexp.MustCompile(`(?s)id="notice"[^>]*>(.*?)</p>`)

// errorText is the page's alert, for failure messages and assertions.
func errorText(body string) string {
	if m := alertRE.FindStringSubmatch(body); m != nil {
		return visibleText(m[1])
	}
	return ""
}

func noticeText(body string) string {
	if m := noticeRE.FindStringSubmatch(body); m != nil {
		return visibleText(m[1])
	}
	return ""
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// visibleText is HTML as a reader sees it: no tags, entities decoded.
func visibleText(s string) string {
	return strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(s, "")))
}

func (a *adminApp) text(key string, args map[string]string) string {
	return a.pages.Text("en", key, args)
}

// events returns the audit events of action.
func (a *adminApp) events(action string) []enroll.Event {
	a.t.Helper()
	evs, err := a.store.Audit(context.Background(), enroll.AuditFilter{Action: action})
	if err != nil {
		a.t.Fatal(err)
	}
	return evs
}

// token creates a read-write API token owned by the lab's helpdesk admin
// (a nested member of the admin group) and returns its secret.
func (a *adminApp) token(name string) string {
	a.t.Helper()
	return a.scopedToken(name, a.lab.HelpdeskUsername, enroll.ScopeRead, enroll.ScopeWrite)
}

// scopedToken creates an API token owned by owner with scopes.
func (a *adminApp) scopedToken(name, owner string, scopes ...string) string {
	a.t.Helper()
	secret, _, err := a.svc.CreateToken(context.Background(), enroll.TokenSpec{Name: name, Owner: owner, Scopes: scopes}, "cli:test")
	if err != nil {
		a.t.Fatal(err)
	}
	return secret
}

func ldapSearch(base, filter string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false, filter, []string{"dn"}, nil)
}

func ldapDelMember(groupDN, memberDN string) *ldap.ModifyRequest {
	m := ldap.NewModifyRequest(groupDN, nil)
	m.Delete("member", []string{memberDN})
	return m
}
