package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/web/browsertest"
)

// viewports are the screens every journey test walks: a phone and a
// desktop.
var viewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"phone", 390, 844, true},
	{"desktop", 1280, 800, false},
}

// languages are the page languages the journeys are walked in, with the
// browser's Accept-Language.
var journeyLanguages = []struct{ lang, accept string }{
	{"en", "en-US,en;q=0.9"},
	{"fr", "fr-FR,fr;q=0.9"},
}

// eachScreen runs fn for every viewport and language, each with its own
// app and a clean cookie jar, at that size.
func eachScreen(t *testing.T, ctx context.Context, fn func(t *testing.T, b *tab), tune ...func(appTuning)) {
	for _, vp := range viewports {
		for _, l := range journeyLanguages {
			t.Run(vp.name+"/"+l.lang, func(t *testing.T) {
				opts := []chromedp.EmulateViewportOption{}
				if vp.mobile {
					opts = append(opts, chromedp.EmulateMobile)
				}
				browsertest.Do(t, ctx, "set the viewport", chromedp.EmulateViewport(vp.width, vp.height, opts...))
				b := newTab(t, ctx, l.accept, tune...)
				b.lang = l.lang
				fn(t, b)
			})
		}
	}
}

const companyNumber = "+15550001111"

func withCompanyNumber(tu appTuning) { tu.settings.SMSNumber = companyNumber }

// A double tap on "Send verification code": the second tap cancels the
// first request in the browser; both land on the same code page, one SMS
// goes out. Then Back and reopening the used link say "you're enrolled",
// with the number to text.
func TestBrowserDoubleTapAndUsedLink(t *testing.T) {
	ctx := newBrowser(t)
	eachScreen(t, ctx, func(t *testing.T, b *tab) {
		link := b.app.activate("jdoe")
		b.wantStatus("open the emailed link", b.open(link), 200)
		b.wantLang()
		// Two clicks in a row, as fast as a script can: the browser aborts
		// the first submission for the second.
		b.js(`(() => { const s = document.getElementById("send"); s.click(); s.click(); return "tapped" })()`)
		b.do("wait for the code page", chromedp.WaitVisible(chromedp.ID("notice")))
		b.wantText("notice", b.msg("notice.sent.sms", nil))
		if path := b.js(`location.pathname + location.search`); path != link+"?sent=sms" {
			t.Fatalf("after a double tap: at %s", path)
		}
		if n := codeMessages(b.app.messages()); n != 1 {
			t.Fatalf("%d code SMS after a double tap, want 1", n)
		}
		// A third tap, from the phone page again (Back), is the same request.
		b.wantStatus("phone page again", b.open(link+"?step=phone"), 200)
		b.wantStatus("send again", b.submit("#send"), 200)
		b.wantText("notice", b.msg("notice.sent.sms", nil))
		if n := codeMessages(b.app.messages()); n != 1 {
			t.Fatalf("%d code SMS after the same number three times, want 1", n)
		}

		b.typeCode(b.app.lastCode())
		b.wantStatus("verify", b.submit("#verify"), 200)
		b.wantText("done", b.msg("done.title", nil))
		browsertest.Screenshot(t, b.ctx, fmt.Sprintf("enroll-done-%s.png", strings.ReplaceAll(t.Name(), "/", "-")))

		// Back: the verify page's address, fetched again (no-store).
		b.do("go back", chromedp.NavigateBack())
		b.do("wait for the page", chromedp.WaitVisible(chromedp.ID("problem")))
		b.wantText("problem", b.msg("err.used.title", nil))
		b.wantText("next", b.msg("err.used.next", map[string]string{"number": companyNumber}))
		b.wantLang()
		// The link from the email, opened again later.
		b.app.clock.Advance(24 * time.Hour)
		b.wantStatus("reopen the used link", b.open(link), 200)
		b.wantText("problem", b.msg("err.used.title", nil))
		b.wantText("notice", b.msg("err.used.text", nil))
		b.wantText("next", b.msg("err.used.next", map[string]string{"number": companyNumber}))
	}, withCompanyNumber)
}

// An expired link says so and that the helpdesk can send it again, also
// once the expired activation was purged from the data file.
func TestBrowserExpiredLink(t *testing.T) {
	ctx := newBrowser(t)
	eachScreen(t, ctx, func(t *testing.T, b *tab) {
		link := b.app.activate("asmith")
		b.app.clock.Advance(7*24*time.Hour + time.Minute)
		for _, purged := range []bool{false, true} {
			if purged {
				if n, err := b.app.store.PurgeActivations(context.Background(), b.app.clock.Now()); err != nil || n != 1 {
					t.Fatalf("PurgeActivations = %d, %v", n, err)
				}
			}
			b.wantStatus("open the expired link", b.open(link), 410)
			b.wantText("problem", b.msg("err.expired.title", nil))
			b.wantText("next", b.msg("err.expired.next", nil))
			b.wantLang()
		}
	})
}

// The QR step also offers the otpauth:// link itself, tappable: a phone
// cannot scan its own screen (same-device enrollment).
func TestBrowserAppLink(t *testing.T) {
	ctx := newBrowser(t)
	eachScreen(t, ctx, func(t *testing.T, b *tab) {
		link := b.app.activate("mdupont")
		b.wantStatus("open the emailed link", b.open(link), 200)
		b.typePhone("(201) 555-0142", "app")
		b.wantStatus("set up the app", b.submit("#send"), 200)
		b.wantText("open-app", b.msg("app.open", nil))
		href := b.js(`document.getElementById("open-app").getAttribute("href")`)
		secret := strings.ReplaceAll(b.text("secret"), " ", "")
		if !strings.HasPrefix(href, "otpauth://totp/") || !strings.Contains(href, "secret="+secret) {
			t.Fatalf("open-app link %q, want the otpauth URI with secret %s", href, secret)
		}
		if visible := b.js(`String(document.getElementById("open-app").getBoundingClientRect().width > 0)`); visible != "true" {
			t.Fatal("the app link is not shown")
		}
	})
}
