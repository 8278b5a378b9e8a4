package web

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web/browsertest"
)

// The enrollment journey in a real browser, without JavaScript of ours:
// plain forms, redirects and an <img> QR code. One browser per test
// function; each sub-test gets its own app (store, clock, server) and a
// clean cookie jar.

// tab drives the browser for one sub-test.
type tab struct {
	t     *testing.T
	ctx   context.Context
	app   *enrollApp
	url   string // the test server
	pages *templates.Pages
	lang  string // the page language the test expects now
}

func newTab(t *testing.T, ctx context.Context, acceptLanguage string, tune ...func(appTuning)) *tab {
	t.Helper()
	a := newEnrollApp(t, tune...)
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": acceptLanguage}}); err != nil {
		t.Fatalf("set Accept-Language: %v", err)
	}
	return &tab{t: t, ctx: ctx, app: a, url: srv.URL, pages: pages, lang: "en"}
}

// open navigates to path and returns the HTTP status.
func (b *tab) open(path string) int64 {
	b.t.Helper()
	return browsertest.Open(b.t, b.ctx, b.url+path)
}

// submit clicks a button and waits for the page the form leads to (after
// any redirect); it returns that page's status.
func (b *tab) submit(sel string) int64 {
	b.t.Helper()
	return browsertest.Submit(b.t, b.ctx, sel)
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	browsertest.Do(b.t, b.ctx, what, steps...)
}

// text returns the trimmed visible text of the element with this id.
func (b *tab) text(id string) string {
	b.t.Helper()
	return browsertest.Text(b.t, b.ctx, "#"+id)
}

func (b *tab) js(expr string) string {
	b.t.Helper()
	return browsertest.Eval(b.t, b.ctx, expr)
}

// msg is a page text in the language the test expects.
func (b *tab) msg(key string, args map[string]string) string {
	return b.pages.Text(b.lang, key, args)
}

// wantText fails unless element id shows exactly the text.
func (b *tab) wantText(id, want string) {
	b.t.Helper()
	if got := b.text(id); got != want {
		b.t.Fatalf("#%s = %q, want %q", id, got, want)
	}
}

func (b *tab) wantStatus(what string, got, want int64) {
	b.t.Helper()
	if got != want {
		b.t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}

func (b *tab) wantLang() {
	b.t.Helper()
	if got := b.js(`document.documentElement.lang`); got != b.lang {
		b.t.Fatalf("page language %q, want %q", got, b.lang)
	}
}

// typePhone replaces the phone field's value and picks the method.
func (b *tab) typePhone(phone, method string) {
	b.t.Helper()
	b.js(`(document.getElementById("phone").value = "", "cleared")`)
	b.do("fill the phone form",
		chromedp.SendKeys(chromedp.ID("phone"), phone),
		chromedp.Click(chromedp.ID("method-"+method)),
	)
}

// typeCode types a code into the code field, as a user would.
func (b *tab) typeCode(code string) {
	b.t.Helper()
	b.js(`(document.getElementById("code").value = "", "cleared")`)
	b.do("type the code", chromedp.SendKeys(chromedp.ID("code"), code))
}

// totpNow asks Debian's oathtool for the code of secret at the app's
// (fake) time.
func (b *tab) totpNow(secret string) string {
	b.t.Helper()
	oathtool, err := exec.LookPath("oathtool")
	if err != nil {
		b.t.Fatalf("the app test needs oathtool (apt-get install -y oathtool): %v", err)
	}
	now := b.app.clock.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	out, err := exec.Command(oathtool, "--totp", "-b", "--now", now, secret).CombinedOutput()
	if err != nil {
		b.t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestBrowserEnrollEachMethod(t *testing.T) {
	ctx := newBrowser(t)

	t.Run("sms", func(t *testing.T) {
		b := newTab(t, ctx, "en-US,en;q=0.9")
		link := b.app.activate("jdoe")
		b.wantStatus("open the emailed link", b.open(link), 200)
		b.wantLang()
		if got := b.js(`document.getElementById("phone").value`); got != phoneJdoe {
			t.Fatalf("phone pre-filled with %q, want the directory's %s", got, phoneJdoe)
		}
		if got := b.js(`document.querySelector("input[name=method]:checked").value`); got != "sms" {
			t.Fatalf("method checked by default: %q", got)
		}
		b.wantStatus("send the code", b.submit("#send"), 200)
		b.wantText("notice", b.msg("notice.sent.sms", nil))
		b.wantText("resend-at", b.msg("verify.resend.at", map[string]string{"time": hm(time.Minute), "wait": "60 s"}))
		b.typeCode(b.app.lastCode())
		b.wantStatus("verify", b.submit("#verify"), 200)
		b.wantText("done", b.msg("done.title", nil))
		b.app.wantEnrolled("jdoe", phoneJdoe, "sms", "en")
	})

	t.Run("voice", func(t *testing.T) {
		b := newTab(t, ctx, "en")
		link := b.app.activate("asmith")
		b.wantStatus("open the emailed link", b.open(link), 200)
		b.typePhone("+33 6 12 34 56 78", "voice")
		b.wantStatus("ask for a call", b.submit("#send"), 200)
		b.wantText("notice", b.msg("notice.sent.voice", nil))
		ms := b.app.messages()
		if call := ms[len(ms)-1]; call.Kind != "call" || call.To != phoneFR {
			t.Fatalf("queued %+v, want a call to %s", call, phoneFR)
		}
		b.typeCode(b.app.lastCode()) // the digits the call reads
		b.wantStatus("verify", b.submit("#verify"), 200)
		b.wantText("done", b.msg("done.title", nil))
		b.app.wantEnrolled("asmith", phoneFR, "voice", "en")
	})

	t.Run("app", func(t *testing.T) {
		b := newTab(t, ctx, "en")
		link := b.app.activate("mdupont")
		b.wantStatus("open the emailed link", b.open(link), 200)
		b.typePhone("(201) 555-0142", "app")
		b.wantStatus("set up the app", b.submit("#send"), 200)
		b.do("wait for the QR code", chromedp.WaitVisible(chromedp.ID("qr")))
		// The QR code is a plain <img> the page's CSP allows.
		if w := b.js(`String(document.getElementById("qr").naturalWidth)`); w == "0" || w == "" {
			t.Fatalf("the QR image did not load (naturalWidth %s)", w)
		}
		secret := strings.ReplaceAll(b.text("secret"), " ", "")
		if len(secret) < 16 {
			t.Fatalf("secret %q", secret)
		}
		if n := len(b.app.messages()); n != 0 {
			t.Fatalf("the app set-up sent %d messages", n)
		}
		b.typeCode(b.totpNow(secret))
		b.wantStatus("verify", b.submit("#verify"), 200)
		b.wantText("done", b.msg("done.title", nil))
		b.app.wantEnrolled("mdupont", "+12015550142", "app", "en")
		// Back: the app page is asked again (not the browser's copy of it)
		// and says the link is used.
		b.do("go back", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.ID("problem")))
		b.wantText("problem", b.msg("err.used.title", nil))
	})
}

// The error paths, in English and in French: the English run arrives with
// a French browser and switches with the language form; the French one is
// French from Accept-Language.
func TestBrowserEnrollErrors(t *testing.T) {
	ctx := newBrowser(t)
	for _, c := range []struct{ lang, accept string }{
		{"en", "fr-FR,fr;q=0.9"},
		{"fr", "fr-CA,fr;q=0.9,en;q=0.5"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			b := newTab(t, ctx, c.accept)
			// Another user already owns phoneFR.
			other := strings.TrimPrefix(b.app.activate("mdupont"), "/enroll/")
			if _, err := b.app.svc.SendCode(context.Background(), other, phoneFR, "sms"); err != nil {
				t.Fatal(err)
			}
			if _, err := b.app.svc.VerifyCode(context.Background(), other, b.app.lastCode()); err != nil {
				t.Fatal(err)
			}

			link := b.app.activate("jdoe")
			b.lang = "fr"
			b.wantStatus("open the emailed link", b.open(link), 200)
			b.wantLang() // from Accept-Language
			if c.lang == "en" {
				b.lang = "en"
				b.wantStatus("switch to English", b.submit(`button[name=lang][value=en]`), 200)
				b.wantLang()
				if h1 := b.js(`document.querySelector("h1").textContent`); h1 != b.msg("phone.title", nil) {
					t.Fatalf("title after the switch: %q", h1)
				}
			}

			// A number another user owns.
			b.typePhone("+33 6 12 34 56 78", "sms")
			b.wantStatus("send to a taken number", b.submit("#send"), 409)
			b.wantText("phone-error", b.msg("err.phone.taken", nil))
			if d := b.js(`document.getElementById("phone").getAttribute("aria-describedby")`); !strings.Contains(d, "phone-error") {
				t.Fatalf("the error is not tied to the field: aria-describedby=%q", d)
			}
			if got := b.js(`document.getElementById("phone").value`); got != "+33 6 12 34 56 78" {
				t.Fatalf("the typed number was lost: %q", got)
			}

			// Resend too early: the time is shown before and in the error.
			b.typePhone("(201) 555-0123", "sms")
			b.wantStatus("send the code", b.submit("#send"), 200)
			if body := b.app.body(b.app.messages()[len(b.app.messages())-1]); !strings.Contains(body, map[string]string{"en": "Your ReplyReset", "fr": "Votre code"}[c.lang]) {
				t.Fatalf("code SMS not in %s: %q", c.lang, body)
			}
			at := map[string]string{"time": hm(time.Minute), "wait": "60 s"}
			b.wantText("resend-at", b.msg("verify.resend.at", at))
			b.wantStatus("resend at once", b.submit("#resend-sms"), 429)
			b.wantText("page-error", b.msg("err.resend", at))

			// Five wrong codes: the tries left, then the lockout page.
			wrong := "000000"
			if b.app.lastCode() == wrong {
				wrong = "111111"
			}
			for left := 4; left >= 1; left-- {
				b.typeCode(wrong)
				b.wantStatus("wrong code", b.submit("#verify"), 422)
				key := "attempts.other"
				if left == 1 {
					key = "attempts.one"
				}
				b.wantText("code-error", b.msg("err.code.wrong", nil)+" "+b.msg(key, map[string]string{"count": string(rune('0' + left))}))
			}
			b.typeCode(wrong)
			b.wantStatus("fifth wrong code", b.submit("#verify"), 429)
			b.wantText("problem", b.msg("err.locked.title", nil))
			b.wantText("page-error", b.msg("err.locked.text", map[string]string{"time": hm(10 * time.Minute)}))
			b.wantLang()

			// The link has expired: what to do next, nothing about the user.
			b.app.clock.Advance(7*24*time.Hour + time.Minute)
			b.wantStatus("open the expired link", b.open(link), 410)
			b.wantText("problem", b.msg("err.expired.title", nil))
			b.wantText("next", b.msg("err.expired.next", nil))
			b.wantLang()
			if main := b.text("main"); strings.Contains(main, "John") || strings.Contains(main, "555") {
				t.Fatalf("the expired-link page tells about the user: %q", main)
			}
		})
	}
}
