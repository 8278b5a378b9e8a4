package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// TestCSRFBoundToLink: the form token of one enrollment link fails on
// another, even in the same browser (same CSRF cookie); the link's own
// token works.
func TestCSRFBoundToLink(t *testing.T) {
	a := newEnrollApp(t)
	l1, l2 := a.activate("jdoe"), a.activate("asmith")
	b := newHTTPBrowser(t, a.handler, "en")
	b.get(l1)
	tok1 := b.csrf
	b.get(l2)
	if tok1 == b.csrf {
		t.Fatal("two links got the same form token")
	}
	p := b.post(l2+"/phone", url.Values{csrfField: {tok1}, "phone": {"+12015550188"}, "method": {"sms"}})
	p.want(t, "link 1's token on link 2", http.StatusForbidden, pageText(t, "en", "err.csrf.title", nil))
	p = b.post(l2+"/phone", url.Values{"phone": {"+12015550188"}, "method": {"sms"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("link 2's own token: %d\n%s", p.code, errorText(p.body))
	}
}

// TestCSRFBoundToSession: a console form token works only with its own
// session: another admin's token, even with that admin's CSRF cookie
// planted, is refused; so is a token of the phone change sign-in page
// once signed in, and a form of an ended session leads to the sign-in.
func TestCSRFBoundToSession(t *testing.T) {
	lab := ldaplab.Samba(t)
	t.Run("admin console", func(t *testing.T) {
		a := newAdminAppOn(t, lab)
		b1, b2 := a.browser(t), a.browser(t)
		b1.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
		b2.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
		b1.get("/admin/users")
		b2.get("/admin/users")
		name := a.user("csrf")
		// b2 with b1's CSRF cookie and token: the pair matches, the session does not.
		b2.cookies[csrfCookie] = b1.cookies[csrfCookie]
		p := b2.post("/admin/users/activate", url.Values{csrfField: {b1.csrf}, "username": {name}})
		if p.code != http.StatusForbidden || !strings.Contains(p.body, a.text("admin.err.csrf", nil)) {
			t.Fatalf("another session's token: %d %q", p.code, errorText(p.body))
		}
		if evs := a.events("activate"); len(evs) != 0 {
			t.Fatalf("activated with another session's token: %+v", evs)
		}
		p = b1.post("/admin/users/activate", url.Values{"username": {name}})
		if p.code != http.StatusOK {
			t.Fatalf("the session's own token: %d %q", p.code, errorText(p.body))
		}
	})
	t.Run("phone change", func(t *testing.T) {
		a := newChangeApp(t, lab)
		username, _, password := a.enrolled("csrfpc", "+12015550177", enroll.StateActive)
		b := a.browser()
		before := b.csrf // the sign-in page's, bound to no phone change
		b.signedIn(username, password)
		if b.csrf == before {
			t.Fatal("the form token did not change with the sign-in")
		}
		p := b.post("/phone/change/number", url.Values{csrfField: {before}, "phone": {"+12015550178"}, "method": {"sms"}})
		p.want(t, "the sign-in page's token after sign-in", http.StatusForbidden, a.text("err.csrf.title", nil))
		p = b.post("/phone/change/number", url.Values{"phone": {"+12015550178"}, "method": {"sms"}})
		if p.code != http.StatusSeeOther {
			t.Fatalf("the phone change's own token: %d %q", p.code, errorText(p.body))
		}
	})
}

// TestHostCookies: over https every cookie is __Host- named, Secure,
// HttpOnly, SameSite and Path=/ (admin session, CSRF, language, phone
// change), and the pages work with them.
func TestHostCookies(t *testing.T) {
	lab := ldaplab.Samba(t)
	want := func(t *testing.T, h http.Header, name string) {
		t.Helper()
		for _, set := range h.Values("Set-Cookie") {
			if !strings.HasPrefix(set, hostPrefix+name+"=") {
				continue
			}
			for _, attr := range []string{"; Path=/;", "; HttpOnly", "; Secure", "; SameSite="} {
				if !strings.Contains(set+";", attr) {
					t.Errorf("Set-Cookie %q lacks %q", set, attr)
				}
			}
			if strings.Contains(strings.ToLower(set), "domain=") {
				t.Errorf("Set-Cookie %q has a Domain", set)
			}
			return
		}
		t.Errorf("no %s%s cookie in %q", hostPrefix, name, h.Values("Set-Cookie"))
	}
	t.Run("admin console", func(t *testing.T) {
		a := newAdminAppOn(t, lab, func(d *Deps) { d.PublicURL = "https://reset.example.com" })
		b := newHTTPBrowser(t, a.handler, "en")
		want(t, b.get("/admin/login").header, csrfCookie)
		p := b.post("/admin/login", url.Values{"username": {a.lab.HelpdeskUsername}, "password": {a.lab.HelpdeskPassword}})
		if p.code != http.StatusSeeOther {
			t.Fatalf("sign-in over https: %d %q", p.code, errorText(p.body))
		}
		want(t, p.header, adminCookie)
		if p := b.get("/admin/dashboard"); p.code != http.StatusOK {
			t.Fatalf("dashboard with the __Host- session cookie: %d", p.code)
		}
		want(t, b.post("/admin/language", url.Values{"lang": {"fr"}, "back": {"/admin/dashboard"}}).header, langCookie)
	})
	t.Run("phone change", func(t *testing.T) {
		a := newChangeApp(t, lab, func(d *Deps) { d.PublicURL = "https://reset.example.com" })
		username, _, password := a.enrolled("hostpc", "+12015550166", enroll.StateActive)
		b := a.browser()
		p := b.signIn(username, password)
		if p.code != http.StatusSeeOther {
			t.Fatalf("sign-in over https: %d %q", p.code, errorText(p.body))
		}
		want(t, p.header, phoneChangeCookie)
		if p := b.get("/phone/change"); !strings.Contains(p.body, `action="/phone/change/number"`) {
			t.Fatalf("the number page with the __Host- cookie: %d", p.code)
		}
	})
}
