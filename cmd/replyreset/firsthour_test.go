package main

// The first hour of a helpdesk and an employee (issue 13): every address a
// person opens answers HTML in their language with a way back, JSON only
// under /api/; every page passes axe-core at a phone and a desktop size,
// in English and in French. Against `replyreset demo`: the whole product
// with its embedded AD directory.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/templates"
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
