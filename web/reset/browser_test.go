package reset

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/web/browsertest"
)

// tab drives Chromium through the reset pages of one app, in one language.
type tab struct {
	t    *testing.T
	ctx  context.Context
	a    *app
	lang string
}

func (b *tab) open(path string) int64 {
	b.t.Helper()
	return browsertest.Open(b.t, b.ctx, b.a.url+path)
}

func (b *tab) submit(id string) int64 { b.t.Helper(); return browsertest.Submit(b.t, b.ctx, "#"+id) }

func (b *tab) js(expr string) string { b.t.Helper(); return browsertest.Eval(b.t, b.ctx, expr) }

// want fails unless element id shows the page text key.
func (b *tab) want(id, key string, args map[string]string) {
	b.t.Helper()
	if got, want := browsertest.Text(b.t, b.ctx, "#"+id), b.a.pages.Text(b.lang, key, args); got != want {
		b.t.Fatalf("#%s = %q, want %q", id, got, want)
	}
	if got := b.js(`document.documentElement.lang`); got != b.lang {
		b.t.Fatalf("page language %q, want %q", got, b.lang)
	}
}

func (b *tab) status(what string, got, want int64) {
	b.t.Helper()
	if got != want {
		b.t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}

// fill replaces the value of the field id with text typed as a user would.
func (b *tab) fill(id, text string) {
	b.t.Helper()
	b.js(`(document.getElementById("` + id + `").value = "", "cleared")`)
	browsertest.Do(b.t, b.ctx, "type into #"+id, chromedp.SendKeys(chromedp.ID(id), text))
}

// back goes back one page; a page that was the answer to a post is not
// kept (no-store), and the browser says so instead (ERR_CACHE_MISS).
func (b *tab) back() {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.NavigateBack()); err != nil && !strings.Contains(err.Error(), "ERR_CACHE_MISS") {
		b.t.Fatalf("go back: %v", err)
	}
}

func (b *tab) accessible(what string) {
	b.t.Helper()
	browsertest.WantAccessible(b.t, b.ctx, b.lang+" "+what)
}

// TestBrowserResetUnlock walks the whole reset in Chromium at a phone's
// size, in English and French, against Samba AD: the name, a double tap
// on the button, a reload of the code page, a wrong code, the right one,
// Back and reload of the choice, a double tap on Unlock, and the start
// again after it. Every page passes axe-core. An unknown name, then an
// app enrollment with oathtool's code, go the same way.
func TestBrowserResetUnlock(t *testing.T) {
	ctx := browsertest.New(t)
	browsertest.SetViewport(t, ctx, browsertest.Phone)
	a := newApp(t, ldaplab.Samba(t))
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			b := &tab{t: t, ctx: ctx, a: a, lang: lang}
			browsertest.ClearCookies(t, ctx)
			browsertest.AcceptLanguage(t, ctx, lang)
			u := a.enrolled("rb"+lang, "sms")
			a.lab.LockOut(t, u.dn)

			b.status("open /reset", b.open("/reset"), 200)
			b.want("start", "reset.start.submit", nil)
			b.accessible("the name page")
			b.fill("login", u.name)
			b.js(`(() => { const s = document.getElementById("start"); s.click(); s.click(); return "tapped" })()`)
			browsertest.Do(t, ctx, "wait for the code page", chromedp.WaitVisible(chromedp.ID("sent")))
			b.want("sent", "reset.code.intro", map[string]string{"login": u.name})
			b.accessible("the code page")
			if got := b.js(`location.pathname + location.search`); got != "/reset" {
				t.Fatalf("code page at %s: a URL with more than the route", got)
			}
			b.status("reload the code page", b.open("/reset"), 200)
			b.want("sent", "reset.code.intro", map[string]string{"login": u.name})

			code := a.code(u.phone) // the newest: the double tap's second start is the browser's
			b.fill("code", "000000")
			if code == "000000" {
				b.fill("code", "111111")
			}
			b.status("a wrong code", b.submit("verify"), 422)
			b.want("code-error", "reset.code.wrong", nil)
			b.accessible("the code page with its error")
			b.fill("code", code)
			b.status("the right code", b.submit("verify"), 200)
			b.want("unlock", "reset.choose.unlock", nil)
			b.accessible("the choice page")
			// Back leads to the wrong code's answer to a post, which the
			// browser does not keep (no-store); the address again shows
			// where the reset is.
			b.back()
			b.status("reload after Back", b.open("/reset"), 200)
			b.want("unlock", "reset.choose.unlock", nil)

			b.js(`(() => { const s = document.getElementById("unlock"); s.click(); s.click(); return "tapped" })()`)
			browsertest.Do(t, ctx, "wait for the done page", chromedp.WaitVisible(chromedp.ID("done")))
			b.want("done-text", "reset.done.unlocked", map[string]string{"username": u.name})
			b.accessible("the done page")
			if a.lab.Locked(t, u.dn) {
				t.Fatal("still locked")
			}
			if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 {
				t.Fatalf("notices after a double tap: %q", ms)
			}
			b.back()
			b.status("reload after the end", b.open("/reset"), 200)
			b.want("start", "reset.start.submit", nil)

			// An unknown name: the same code page, no text.
			before := len(queued(t, a))
			unknown := a.lab.UniqueName("rbx")
			b.fill("login", unknown)
			b.status("an unknown name", b.submit("start"), 200)
			b.want("sent", "reset.code.intro", map[string]string{"login": unknown})
			if n := len(queued(t, a)); n != before {
				t.Fatalf("%d messages queued for an unknown name", n-before)
			}
			b.fill("code", "123456")
			b.status("a code for an unknown name", b.submit("verify"), 422)
			b.want("code-error", "reset.code.wrong", nil)
			b.status("cancel", b.submit("cancel"), 200)

			// The authenticator app: no text, oathtool's code.
			app := a.enrolled("rba"+lang, "app")
			b.fill("login", app.name)
			b.status("an app enrollment", b.submit("start"), 200)
			b.want("sent", "reset.code.intro", map[string]string{"login": app.name})
			b.fill("code", a.totp(app.secret))
			b.status("the app's code", b.submit("verify"), 200)
			b.want("unlock", "reset.choose.unlock", nil)
			a.clock.Advance(31e9) // the next time step for the next language's app code
			if lang == "en" {
				// A generated password, shown once.
				b.status("a generated password", b.submit("generate"), 200)
				b.want("once", "reset.password.once", nil)
				b.accessible("the generated password page")
				if pw := browsertest.Text(t, ctx, "#password"); len(pw) < 12 || a.bindOutcome(app.dn, pw) != "must-change" {
					t.Fatalf("generated password %q does not sign in as must-change", pw)
				}
				return
			}
			// A password of one's own: too short, in words; then a good one.
			b.fill("password", "Ab1!")
			b.fill("confirm", "Ab1!")
			b.status("a too short password", b.submit("choose"), 422)
			b.want("page-error", "reset.err.policy.short_min", map[string]string{"min": "7"})
			b.accessible("the choice page with the directory's refusal")
			b.fill("password", "Violet-Harbour-Lantern-42")
			b.fill("confirm", "Violet-Harbour-Lantern-42")
			b.status("a good password", b.submit("choose"), 200)
			b.want("done-text", "reset.done.chosen", map[string]string{"username": app.name})
			b.accessible("the done page of a chosen password")
			if got := a.bindOutcome(app.dn, "Violet-Harbour-Lantern-42"); got != "ok" {
				t.Fatalf("bind with the chosen password: %s", got)
			}
		})
	}
}
