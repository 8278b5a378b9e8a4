package main

// The first hour of a helpdesk and an employee (issue 13): every address a
// person opens answers HTML in their language with a way back, JSON only
// under /api/; every page passes axe-core at a phone and a desktop size,
// in English and in French. Against `replyreset demo`: the whole product
// with its embedded AD directory.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/directory/demodir"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web/browsertest"
)

// startTestDemo runs `replyreset demo` in-process until the test ends.
func startTestDemo(t *testing.T) *demo {
	t.Helper()
	runCtx, stop := context.WithCancel(context.Background())
	d, err := startDemo(runCtx, demoOptions{Listen: "127.0.0.1:0", Log: io.Discard})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		d.Close()
	})
	return d
}

var formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// personClient is a person's browser without JavaScript: cookies, redirects
// followed, Accept and Accept-Language sent.
type personClient struct {
	t      *testing.T
	c      *http.Client
	base   string
	accept string
	lang   string
}

func newPersonClient(t *testing.T, base, lang string) *personClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &personClient{t: t, c: &http.Client{Jar: jar}, base: base, accept: "text/html,application/xhtml+xml", lang: lang}
}

type httpAnswer struct {
	status int
	ctype  string
	body   string
}

func (h *personClient) do(method, path string, form url.Values) httpAnswer {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.base+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", h.accept)
	req.Header.Set("Accept-Language", h.lang)
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return httpAnswer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(b)}
}

// signIn signs in to the console as the demo's helpdesk admin.
func (h *personClient) signIn(d *demo) {
	h.t.Helper()
	page := h.do(http.MethodGet, "/admin/", nil) // the README's address: the sign-in, then the console's home
	m := formTokenRE.FindStringSubmatch(page.body)
	if page.status != 200 || m == nil {
		h.t.Fatalf("GET /admin/: %d, no form token\n%s", page.status, page.body)
	}
	admin := d.dir.HelpdeskAdmin()
	next := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(page.body)
	form := url.Values{"csrf_token": {m[1]}, "username": {admin.Username}, "password": {admin.Password}}
	if next != nil {
		form.Set("next", next[1])
	}
	home := h.do(http.MethodPost, "/admin/login", form)
	if home.status != 200 || !strings.Contains(home.body, `id="admin-name"`) || !strings.Contains(home.body, `aria-current="page"`) {
		h.t.Fatalf("signing in from /admin/: %d %s\n%s", home.status, home.ctype, home.body)
	}
}

// TestErrorAddressesAnswerHTML fetches unknown and error addresses as a
// browser does (Accept: text/html) in English and French: each answers an
// HTML page in that language with a link back; under /api/ the answer is
// JSON. Signing in from /admin/ lands on the console's home.
func TestErrorAddressesAnswerHTML(t *testing.T) {
	d := startTestDemo(t)
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	type addr struct {
		method, path string
		status       int
		title        string // page text key of the <h1>
		back         string // the way back
	}
	signedOut := []addr{
		{"GET", "/", 200, "home.title", `href="/phone/change"`},
		{"GET", "/nope", 404, "err.notfound.title", `href="/"`},
		{"GET", "/enroll/", 404, "err.notfound.title", `href="/"`},
		{"GET", "/enroll/" + strings.Repeat("A", 43), 404, "err.unknown.title", `href="/"`},
		{"GET", "/enroll/" + strings.Repeat("A", 43) + "/nope", 404, "err.notfound.title", `href="/"`},
		{"GET", "/static/nope.css", 404, "err.notfound.title", `href="/"`},
		{"GET", "/demo/phone?user=nobody", 404, "err.notfound.title", `href="/"`},
		{"GET", "/phone/change/nope", 404, "err.notfound.title", `href="/"`},
		{"POST", "/healthz", 405, "err.method.title", `href="/"`},
		{"GET", "/enroll/" + strings.Repeat("A", 43) + "/phone", 405, "err.method.title", `href="/"`},
		{"GET", "/admin/nope", 200, "admin.login.title", `action="/admin/login"`}, // signed out: the sign-in first
	}
	signedIn := []addr{
		{"GET", "/admin/", 200, "admin.nav.dashboard", `href="/admin/dashboard"`},
		{"GET", "/admin/nope", 404, "err.notfound.title", `href="/admin/"`},
		{"GET", "/admin/enrollments/nobody-at-all", 404, "", `href="/admin/"`},
		{"GET", "/admin/logout", 404, "err.notfound.title", `href="/admin/"`}, // the group catch-all: 404, not 405
	}
	for _, lang := range []string{"en", "fr"} {
		accept := map[string]string{"en": "en-GB,en;q=0.9", "fr": "fr-FR,fr;q=0.9,en;q=0.5"}[lang]
		t.Run(lang, func(t *testing.T) {
			h := newPersonClient(t, d.url, accept)
			check := func(a addr) {
				t.Helper()
				var form url.Values
				if a.method == http.MethodPost {
					form = url.Values{}
				}
				r := h.do(a.method, a.path, form)
				what := a.method + " " + a.path
				if r.status != a.status || !strings.HasPrefix(r.ctype, "text/html") {
					t.Errorf("%s: %d %s, want %d HTML\n%.600s", what, r.status, r.ctype, a.status, r.body)
					return
				}
				if !strings.Contains(r.body, `<html lang="`+lang+`">`) {
					t.Errorf("%s: not in %s:\n%.300s", what, lang, r.body)
				}
				if a.title != "" && !strings.Contains(r.body, htmlEscaped(pages.Text(lang, a.title, nil))) {
					t.Errorf("%s: no %q (%s)\n%.900s", what, pages.Text(lang, a.title, nil), a.title, r.body)
				}
				if !strings.Contains(r.body, a.back) {
					t.Errorf("%s: no way back (%s)", what, a.back)
				}
				if strings.Contains(r.body, `{"error"`) || strings.Contains(r.body, "[missing message") {
					t.Errorf("%s: %.300s", what, r.body)
				}
			}
			for _, a := range signedOut {
				check(a)
			}
			h.signIn(d)
			for _, a := range signedIn {
				check(a)
			}
			// The language switch of an error page works, and the choice holds.
			other := map[string]string{"en": "fr", "fr": "en"}[lang]
			for _, path := range []string{"/nope", "/enroll/" + strings.Repeat("B", 43)} {
				page := h.do(http.MethodGet, path, nil)
				m := regexp.MustCompile(`(?s)action="/language".*?name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page.body)
				if m == nil {
					t.Fatalf("%s: no language switch", path)
				}
				r := h.do(http.MethodPost, "/language", url.Values{"csrf_token": {m[1]}, "lang": {other}, "back": {path}})
				if r.status != 404 || !strings.Contains(r.body, `<html lang="`+other+`">`) {
					t.Errorf("switch to %s on %s: %d\n%.300s", other, path, r.status, r.body)
				}
				r = h.do(http.MethodPost, "/language", url.Values{"csrf_token": {m[1]}, "lang": {lang}, "back": {"/"}})
				if r.status != 200 || !strings.Contains(r.body, `<html lang="`+lang+`">`) {
					t.Errorf("switch back to %s: %d", lang, r.status)
				}
			}

			// The Twilio webhook: a bare status, no page, no JSON.
			if r := h.do(http.MethodGet, "/sms/twilio", nil); r.status != 405 || !strings.HasPrefix(r.ctype, "text/plain") {
				t.Errorf("GET /sms/twilio: %d %s", r.status, r.ctype)
			}

			// The API answers JSON, with its stable codes.
			h.accept = "application/json"
			for _, a := range []struct {
				method, path string
				status       int
				code         string
			}{
				{"GET", "/api/v1/nope", 404, "not_found"},
				{"GET", "/api/v1/summary", 401, ""},
				{"POST", "/api/v1/summary", 405, "method_not_allowed"},
			} {
				r := h.do(a.method, a.path, nil)
				var body struct {
					Error struct{ Code, Message string }
				}
				if r.status != a.status || !strings.HasPrefix(r.ctype, "application/json") || json.Unmarshal([]byte(r.body), &body) != nil ||
					(a.code != "" && body.Error.Code != a.code) {
					t.Errorf("%s %s: %d %s %s, want %d JSON %s", a.method, a.path, r.status, r.ctype, r.body, a.status, a.code)
				}
			}
		})
	}
}

// htmlEscaped is s as html/template writes it.
func htmlEscaped(s string) string {
	return strings.NewReplacer("'", "&#39;", "+", "&#43;", `"`, "&#34;", "&", "&amp;").Replace(s)
}

// screenshotDir is where the README's phone screenshots go when
// REPLYRESET_SCREENSHOTS is set (docs/screenshots), else "".
func screenshotDir(t *testing.T) string {
	if os.Getenv("REPLYRESET_SCREENSHOTS") == "" {
		return ""
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "docs", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageWalk drives one browser over the pages of one language and size,
// checking each with axe-core and, at the phone size with
// REPLYRESET_SCREENSHOTS set, saving it for the README.
type pageWalk struct {
	t     *testing.T
	ctx   context.Context
	d     *demo
	lang  string
	vp    browsertest.Viewport
	shots string
	n     *int // screenshot number, shared by the walks of a language
}

func newPageWalk(t *testing.T, d *demo, lang string, vp browsertest.Viewport, n *int) *pageWalk {
	ctx := browsertest.New(t)
	browsertest.SetViewport(t, ctx, vp)
	browsertest.AcceptLanguage(t, ctx, map[string]string{"en": "en-US,en;q=0.9", "fr": "fr-FR,fr;q=0.9"}[lang])
	w := &pageWalk{t: t, ctx: ctx, d: d, lang: lang, vp: vp, n: n}
	if vp == browsertest.Phone {
		w.shots = screenshotDir(t)
	}
	return w
}

// check asserts the page's language and 0 axe-core violations, and takes
// the screenshot.
func (w *pageWalk) check(name string) {
	w.t.Helper()
	if got := browsertest.Eval(w.t, w.ctx, `document.documentElement.lang`); got != w.lang {
		w.t.Errorf("%s: page in %q, want %q", name, got, w.lang)
	}
	browsertest.WantAccessible(w.t, w.ctx, w.lang+" "+w.vp.Name+" "+name)
	if w.shots != "" {
		*w.n++
		browsertest.Screenshot(w.t, w.ctx, filepath.Join(w.shots, fmt.Sprintf("%s-%02d-%s.png", w.lang, *w.n, name)))
	}
}

func (w *pageWalk) open(path string, status int64, name string) {
	w.t.Helper()
	if got := browsertest.Open(w.t, w.ctx, w.d.url+path); got != status {
		w.t.Fatalf("open %s: %d, want %d", path, got, status)
	}
	w.check(name)
}

func (w *pageWalk) submit(sel string, status int64, name string) {
	w.t.Helper()
	if got := browsertest.Submit(w.t, w.ctx, sel); got != status {
		w.t.Fatalf("%s: submit %s: %d, want %d: %s", name, sel, got, status,
			browsertest.Eval(w.t, w.ctx, `document.body.innerText.slice(0, 300)`))
	}
	w.check(name)
}

func (w *pageWalk) fill(id, value string) {
	w.t.Helper()
	browsertest.Eval(w.t, w.ctx, `(document.getElementById("`+id+`").value = "", "")`)
	browsertest.Do(w.t, w.ctx, "type into #"+id, chromedp.SendKeys(chromedp.ID(id), value))
}

// code waits for the newest verification code texted to phone.
func (w *pageWalk) code(phone string, before int) string {
	w.t.Helper()
	re := regexp.MustCompile(`\b\d{6}\b`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ms, err := w.d.backend.Conversation(context.Background(), phone)
		if err != nil {
			w.t.Fatal(err)
		}
		for i := len(ms) - 1; i >= before; i-- {
			if m := ms[i]; m.Incoming && re.MatchString(m.Body) {
				return re.FindString(m.Body)
			}
		}
	}
	w.t.Fatalf("no code texted to %s", phone)
	return ""
}

// TestPagesAccessible opens every page an employee, an admin and a demo
// user reach, at a phone (390x844) and a desktop size, in English and
// French, and asserts 0 axe-core violations on each (WCAG 2.2 A/AA and
// best practices). With REPLYRESET_SCREENSHOTS=1 it refreshes the phone
// screenshots under docs/screenshots/ (README: Screenshots).
func TestPagesAccessible(t *testing.T) {
	d := startTestDemo(t)
	var users []demodir.User
	for _, u := range d.dir.Users() {
		if u.Mobile != "" && u.Mail != "" {
			users = append(users, u)
		}
	}
	if len(users) < 4 {
		t.Fatalf("%d sample users with a phone and a mail, want 4", len(users))
	}
	if dir := screenshotDir(t); dir != "" {
		old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
		for _, f := range old {
			os.Remove(f)
		}
	}
	next := 0
	for _, lang := range []string{"en", "fr"} {
		n := 0
		for _, vp := range browsertest.Viewports {
			user := users[next]
			next++
			t.Run(lang+"/"+vp.Name+"/employee", func(t *testing.T) {
				w := newPageWalk(t, d, lang, vp, &n)
				w.open("/", 200, "start")
				w.open("/no-such-page", 404, "not-found")
				w.open("/enroll/"+strings.Repeat("A", 43), 404, "unknown-link")
				before := len(d.backend.mailbox.Mails())
				if _, err := d.app.enroll.Activate(context.Background(), user.Username, "admin:test"); err != nil {
					t.Fatal(err)
				}
				// The mail queue's worker delivers the email in the background.
				for deadline := time.Now().Add(20 * time.Second); len(d.backend.mailbox.Mails()) == before; time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the activation email did not reach the demo mailbox")
					}
				}
				w.open("/demo/mail", 200, "mailbox")
				browsertest.Do(t, w.ctx, "open the newest mail", chromedp.Click(chromedp.CSS(`#mails li a`)),
					chromedp.WaitVisible(chromedp.ID("mail-body")))
				w.check("mail")
				link := strings.TrimPrefix(browsertest.Eval(t, w.ctx, `document.querySelector("#mail-body a").href`), d.url)
				w.open(link, 200, "enroll-phone")
				w.fill("phone", "12")
				w.submit("#send", 422, "enroll-phone-error")
				w.fill("phone", user.Mobile)
				browsertest.Do(t, w.ctx, "choose the app", chromedp.Click(chromedp.ID("method-app")))
				w.submit("#send", 200, "enroll-app")
				// Same-device enrollment: the QR step also links the otpauth URI.
				if href := browsertest.Eval(t, w.ctx, `(document.querySelector("#open-app") || {href: ""}).href`); !strings.HasPrefix(href, "otpauth://") {
					t.Errorf("the app step links %q, want an otpauth:// link", href)
				}
				w.open(link+"?step=phone", 200, "enroll-change-method")
				ms, _ := d.backend.Conversation(context.Background(), user.Mobile)
				browsertest.Do(t, w.ctx, "choose SMS", chromedp.Click(chromedp.ID("method-sms")))
				w.submit("#send", 200, "enroll-verify")
				code := w.code(user.Mobile, len(ms))
				wrong := "000000"
				if code == wrong {
					wrong = "111111"
				}
				w.fill("code", wrong)
				w.submit("#verify", 422, "enroll-verify-error")
				w.fill("code", code)
				w.submit("#verify", 200, "enroll-done")
				w.open("/phone/change", 200, "phone-change")
				w.open("/demo/phone?user="+user.Username, 200, "demo-phone")
			})
			t.Run(lang+"/"+vp.Name+"/admin", func(t *testing.T) {
				w := newPageWalk(t, d, lang, vp, &n)
				admin := d.dir.HelpdeskAdmin()
				w.open("/admin/", 200, "admin-login")
				w.fill("username", admin.Username)
				w.fill("password", "wrong")
				w.submit("#login", 401, "admin-login-error")
				w.fill("username", admin.Username)
				w.fill("password", admin.Password)
				w.submit("#login", 200, "admin-dashboard")
				w.open("/admin/users", 200, "admin-users")
				w.open("/admin/users?q="+url.QueryEscape(users[0].Username[:3]), 200, "admin-search")
				w.fill("one", users[len(users)-1].Username)
				w.submit("#activate-one", 200, "admin-results")
				w.open("/admin/enrollments", 200, "admin-enrollments")
				w.open("/admin/enrollments?state=invited", 200, "admin-enrollments-invited")
				// A destructive action first answers its confirmation step.
				w.submit(`#enrollments form[action$="/revoke"] button`, 200, "admin-confirm-revoke")
				w.open("/admin/enrollments/"+user.Username, 200, "admin-enrollment")
				w.submit("#deactivate", 200, "admin-confirm-deactivate")
				w.open("/admin/lockouts", 200, "admin-lockouts")
				// No account is locked here, so the page offers no "unlock
				// all": post the same form the page would.
				browsertest.Eval(t, w.ctx, `(() => {
					const f = document.createElement("form");
					f.method = "post"; f.action = "/admin/lockouts/unlock-all";
					const i = document.createElement("input");
					i.type = "hidden"; i.name = "csrf_token"; i.value = document.querySelector('input[name="csrf_token"]').value;
					const b = document.createElement("button");
					b.type = "submit"; b.id = "probe-unlock-all";
					f.append(i, b); document.body.append(f); return "";
				})()`)
				w.submit("#probe-unlock-all", 200, "admin-confirm-unlock-all")
				w.open("/admin/mail", 200, "admin-mail")
				w.open("/admin/audit", 200, "admin-audit")
				w.open("/admin/nope", 404, "admin-not-found")
			})
		}
	}
}
