package web

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// cookieNames lists the cookies the browser holds for the test server.
func (b *tab) cookieNames() []string {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.url}})
	if err != nil {
		b.t.Fatalf("cookies: %v", err)
	}
	var names []string
	for _, c := range res.Cookies {
		names = append(names, c.Name+"="+c.Value)
	}
	return names
}

// The language order (DESIGN: Languages; issue 13 item 5): a choice made
// with the switch > the enrollment's stored language > Accept-Language >
// `language`. A French browser gets French on a fresh activation link even
// when cookies of earlier pages are there, including the cookie older
// versions set on every page to the default.
func TestBrowserLanguageOrder(t *testing.T) {
	ctx := newBrowser(t)

	t.Run("browser beats a recorded default", func(t *testing.T) {
		b := newTab(t, ctx, "fr-FR,fr;q=0.9")
		// An earlier page: another user's link, shown in its stored English.
		other := b.app.activate("mdupont")
		if _, err := b.app.svc.SetLanguage(context.Background(), strings.TrimPrefix(other, "/enroll/"), "en"); err != nil {
			t.Fatal(err)
		}
		b.wantStatus("open an earlier link", b.open(other), 200)
		b.wantLang() // en: the stored choice beats the French browser
		for _, c := range b.cookieNames() {
			if strings.HasPrefix(c, langCookie+"=") {
				t.Fatalf("showing a page set the choice cookie: %s", c)
			}
		}
		// The cookie of older versions, which recorded the default.
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "replyreset_lang", Value: "en", URL: b.url}); err != nil {
			t.Fatal(err)
		}
		link := b.app.activate("jdoe")
		b.lang = "fr"
		b.wantStatus("open a fresh link", b.open(link), 200)
		b.wantLang()
		b.wantText("send", b.msg("phone.submit", nil))
		b.typePhone("(201) 555-0123", "sms")
		b.wantStatus("send the code", b.submit("#send"), 200)
		b.wantLang()
		if ms := b.app.messages(); ms[len(ms)-1].Language != "fr" {
			t.Fatalf("the code SMS goes in %q, want fr", ms[len(ms)-1].Language)
		}
	})

	t.Run("a choice beats the browser", func(t *testing.T) {
		b := newTab(t, ctx, "fr-FR,fr;q=0.9")
		link := b.app.activate("jdoe")
		b.lang = "fr"
		b.wantStatus("open the link", b.open(link), 200)
		b.wantLang()
		b.lang = "en"
		b.wantStatus("switch to English", b.submit(`button[name=lang][value=en]`), 200)
		b.wantLang()
		b.wantStatus("reload", b.open(link), 200)
		b.wantLang()
		// The choice holds on the site's other pages, and on a fresh link.
		b.wantStatus("an unknown address", b.open("/enroll/"+strings.Repeat("x", 43)), 404)
		b.wantLang()
		b.wantStatus("another fresh link", b.open(b.app.activate("asmith")), 200)
		b.wantLang()
	})

	t.Run("stored beats the browser", func(t *testing.T) {
		b := newTab(t, ctx, "en-US,en;q=0.9")
		first := strings.TrimPrefix(b.app.activate("mdupont"), "/enroll/")
		bg := context.Background()
		if _, err := b.app.svc.SetLanguage(bg, first, "fr"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.app.svc.SendCode(bg, first, phoneFR, "sms"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.app.svc.VerifyCode(bg, first, b.app.lastCode()); err != nil {
			t.Fatal(err)
		}
		// Activated again (a new phone): the enrollment's French holds.
		link := b.app.activate("mdupont")
		b.lang = "fr"
		b.wantStatus("open the new link", b.open(link), 200)
		b.wantLang()
	})

	t.Run("the default when the browser tells nothing", func(t *testing.T) {
		b := newTab(t, ctx, "de-DE,de;q=0.9")
		b.lang = "en" // config language of the test app
		b.wantStatus("open the link", b.open(b.app.activate("jdoe")), 200)
		b.wantLang()
	})
}
