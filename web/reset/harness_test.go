package reset

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ldaplab.StopAll()
	ldaplab.ReportSkipped(code)
	os.Exit(code)
}

var _ Store = (*bolt.Store)(nil)

// app is the reset site on a real directory and a real data file, behind
// the real server (its CSRF guard, its client address rules), on
// 127.0.0.1. The clock is the test's; the directory's is its own.
type app struct {
	t      *testing.T
	lab    *ldaplab.Server
	dir    *directory.Client
	store  *bolt.Store
	sealer *enroll.Sealer
	clock  *enrolltest.Clock
	pages  *templates.Pages
	log    *enrolltest.LogBuffer
	mailer *enrolltest.Mailer
	url    string
	phones atomic.Int64
}

// newApp starts the site on lab; opts change its Deps.
func newApp(t *testing.T, lab *ldaplab.Server, opts ...func(*Deps)) *app {
	t.Helper()
	dir, err := directory.New(lab.DirectoryConfig(), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	store, sealer := enrolltest.DataDir(t)
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, lab: lab, dir: dir, store: store, sealer: sealer, clock: enrolltest.NewClock(time.Now()),
		pages: pages, log: &enrolltest.LogBuffer{}, mailer: &enrolltest.Mailer{}}
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := password.NewGenerator(password.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(a.log, nil))
	d := Deps{Directory: dir, Store: store, Outbox: outbox.NewQueue(store, sealer, nil), Messages: catalog,
		Pages: pages, Sealer: sealer, Log: logger, Now: a.clock.Now, Language: "en", Location: time.UTC,
		Passwords: gen, MustChange: true, ChoosePassword: true, Banned: CompanyNames("DC=acmecorp,DC=com", "it@acmecorp.example"),
		Mailer: a.mailer, Mails: mails}
	for _, opt := range opts {
		opt(&d)
	}
	site := New(d)
	// 127.0.0.1 is the trusted proxy: a test names its client's address
	// in X-Forwarded-For, so that per-address limits are per test client.
	h := web.NewEcho(web.Deps{Logger: logger, Pages: pages, Store: store, Language: "en", Now: a.clock.Now,
		PublicURL: "http://127.0.0.1", Reset: site, Proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// eachLab runs fn on an app of each real directory: Samba AD, OpenLDAP.
func eachLab(t *testing.T, fn func(t *testing.T, a *app)) {
	for _, lab := range []struct {
		name  string
		start func(testing.TB) *ldaplab.Server
	}{{"samba", ldaplab.Samba}, {"openldap", ldaplab.OpenLDAP}} {
		t.Run(lab.name, func(t *testing.T) { fn(t, newApp(t, lab.start(t))) })
	}
}

// user is a directory account with an active enrollment.
type user struct {
	name, dn, password, phone string
	secret                    string // the authenticator app's, base32 ("" for SMS)
}

// enrolled adds a directory user enrolled with method (sms, voice, app).
func (a *app) enrolled(prefix, method string) user {
	a.t.Helper()
	u := user{name: a.lab.UniqueName(prefix), password: "Start#Pass1x", phone: fmt.Sprintf("+1201555%04d", 100+a.phones.Add(1))}
	u.dn = a.lab.AddUser(a.t, ldaplab.UserSpec{Username: u.name, Password: u.password, DisplayName: "User " + u.name,
		Mail: u.name + "@example.com"})
	now := a.clock.Now()
	e := enroll.Enrollment{Username: u.name, Phone: u.phone, Language: "en", State: enroll.StateActive, Method: method,
		CreatedAt: now, UpdatedAt: now, VerifiedAt: now, Mail: u.name + "@example.com"}
	if method == "app" {
		raw := make([]byte, 20)
		_, _ = rand.Read(raw)
		u.secret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
		e.TOTPSealed = a.sealer.Seal([]byte(u.secret), "totp:"+u.name)
	}
	if err := a.store.PutEnrollment(context.Background(), e); err != nil {
		a.t.Fatal(err)
	}
	return u
}

// messages are the texts and calls queued to phone for purpose, oldest
// first, opened.
func (a *app) messages(phone, purpose string) []string {
	a.t.Helper()
	var out []string
	for _, m := range enrolltest.Messages(a.t, a.store) {
		if m.To == phone && m.Purpose == purpose {
			out = append(out, enrolltest.Body(a.t, a.sealer, m))
		}
	}
	return out
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// code is the newest code texted to phone.
func (a *app) code(phone string) string {
	a.t.Helper()
	ms := a.messages(phone, "reset_web_code")
	if len(ms) == 0 {
		a.t.Fatalf("no code queued to %s", phone)
	}
	c := sixDigits.FindString(strings.ReplaceAll(ms[len(ms)-1], ", ", ""))
	if c == "" {
		a.t.Fatalf("no code in %q", ms[len(ms)-1])
	}
	return c
}

// totp asks Debian's oathtool for the app's code at the test's time: an
// implementation other than the one under test.
func (a *app) totp(secret string) string {
	a.t.Helper()
	oathtool, err := exec.LookPath("oathtool")
	if err != nil {
		a.t.Fatalf("the app test needs oathtool (apt-get install -y oathtool): %v", err)
	}
	now := a.clock.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	out, err := exec.Command(oathtool, "--totp", "-b", "--now", now, secret).CombinedOutput()
	if err != nil {
		a.t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// audit is the outcomes of the reset_web events of username, in order.
func (a *app) audit(username string) []string {
	a.t.Helper()
	evs, err := a.store.Audit(context.Background(), enroll.AuditFilter{Username: username, Action: actionWebReset})
	if err != nil {
		a.t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Outcome
	}
	return out
}

// client is a browser without JavaScript: a cookie jar, no redirects
// followed, an address of its own.
type client struct {
	a    *app
	http *http.Client
	ip   string
}

var clients atomic.Int64

func (a *app) client() *client {
	jar, _ := cookiejar.New(nil)
	n := clients.Add(1)
	return &client{a: a, ip: "198.51." + strconv.FormatInt(n/250%250, 10) + "." + strconv.FormatInt(n%250+1, 10),
		http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	code     int
	body     string
	location string
}

func (c *client) do(method, path string, form url.Values) answer {
	c.a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.a.url+path, body)
	if err != nil {
		c.a.t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", c.ip)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{code: res.StatusCode, body: string(b), location: res.Header.Get("Location")}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (c *client) get(path string) answer { return c.do(http.MethodGet, path, nil) }

// token is the form token of the page /reset shows now.
func (c *client) token() string {
	c.a.t.Helper()
	m := csrfRE.FindStringSubmatch(c.get("/reset").body)
	if m == nil {
		c.a.t.Fatal("no form token on /reset")
	}
	return m[1]
}

// post posts form with the form token of the page /reset shows now.
func (c *client) post(path string, form url.Values) answer {
	c.a.t.Helper()
	form.Set("csrf_token", c.token())
	return c.do(http.MethodPost, path, form)
}

// start asks for a code for login and returns the code page.
func (c *client) start(login string) answer {
	c.a.t.Helper()
	if p := c.post("/reset/start", url.Values{"login": {login}}); p.code != http.StatusSeeOther || p.location != "/reset" {
		c.a.t.Fatalf("start %q: %d %q\n%s", login, p.code, p.location, p.body)
	}
	return c.get("/reset")
}

var tagRE = regexp.MustCompile(`<[^>]*>|\s+`)

// visible is the page's main text, without its form token: what a person
// sees.
func visible(body string) string {
	body = csrfRE.ReplaceAllString(body, "")
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	return strings.TrimSpace(tagRE.ReplaceAllString(body, " "))
}

// addPSO gives the AD account dn a fine-grained password policy of
// minLength characters and a history of 3, and returns its DN.
func (a *app) addPSO(t *testing.T, dn string, minLength int) string {
	t.Helper()
	pso := "CN=" + a.lab.UniqueName("pso") + ",CN=Password Settings Container,CN=System," + a.lab.BaseDN
	req := ldap.NewAddRequest(pso, nil)
	for name, v := range map[string]string{
		"objectClass": "msDS-PasswordSettings", "msDS-PasswordSettingsPrecedence": "1",
		"msDS-PasswordReversibleEncryptionEnabled": "FALSE", "msDS-PasswordHistoryLength": "3",
		"msDS-PasswordComplexityEnabled": "TRUE", "msDS-MinimumPasswordLength": strconv.Itoa(minLength),
		"msDS-MinimumPasswordAge": "0", "msDS-MaximumPasswordAge": "-37108517437440",
		"msDS-LockoutThreshold": "0", "msDS-LockoutObservationWindow": "-18000000000",
		"msDS-LockoutDuration": "-18000000000", "msDS-PSOAppliesTo": dn,
	} {
		req.Attribute(name, []string{v})
	}
	conn := a.lab.AdminConn(t)
	defer conn.Close()
	if err := conn.Add(req); err != nil {
		t.Fatalf("add PSO: %v", err)
	}
	return pso
}

func (a *app) deletePSO(t *testing.T, pso string) {
	conn := a.lab.AdminConn(t)
	defer conn.Close()
	if err := conn.Del(ldap.NewDelRequest(pso, nil)); err != nil {
		t.Errorf("delete PSO: %v", err)
	}
}
