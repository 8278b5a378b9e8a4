package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/web/browsertest"
)

// TestBrowserStoreDownPage (issue 17 item 5) walks the store's 503 as an
// employee meets it, in Chromium at a phone viewport, in English and in
// French: the enrollment page opened while the store answers, then the
// store lost; a double tap on "send the code" answers the "try again in a
// few minutes" page twice in the visitor's language (accessible, nothing
// queued); Back and reload answer it again; once the store is back, a
// reload shows the enrollment page and the code goes out once.
func TestBrowserStoreDownPage(t *testing.T) {
	ctx := newBrowser(t)
	browsertest.SetViewport(t, ctx, browsertest.Phone)
	for _, c := range []struct{ accept, lang string }{{"en-US,en;q=0.9", "en"}, {"fr-FR,fr;q=0.9", "fr"}} {
		t.Run(c.lang, func(t *testing.T) {
			var us *unreachableStore
			var gate *StoreGate
			b := newTab(t, ctx, c.accept, gateTuning(&us, &gate))
			b.lang = c.lang
			link := b.app.activate("jdoe")
			b.wantStatus("open the emailed link", b.open(link), 200)
			b.wantLang()

			us.down.Store(true)
			if err := gate.Probe(t.Context()); err == nil {
				t.Fatal("probe of a store that does not answer succeeded")
			}
			wantDown := func(what string) {
				t.Helper()
				if got := b.js(`document.documentElement.lang`); got != c.lang {
					t.Errorf("%s: page language %q, want %q", what, got, c.lang)
				}
				body := b.js(`document.body.innerText`)
				for _, key := range []string{"err.store.title", "err.store.text"} {
					if want := b.msg(key, nil); !strings.Contains(body, want) {
						t.Errorf("%s: the page does not say %q (%s):\n%s", what, want, key, body)
					}
				}
			}
			// A double tap, as fast as a script can: the browser aborts the
			// first submission for the second; both are refused and
			// neither queues a code.
			b.js(`(() => { const s = document.getElementById("send"); s.click(); s.click(); return "tapped" })()`)
			b.do("wait for the store's page", chromedp.WaitVisible(chromedp.ID("problem")))
			b.wantText("problem", b.msg("err.store.title", nil))
			wantDown("double tap on send the code")
			browsertest.WantAccessible(t, b.ctx, "the store's 503 page ("+c.lang+")")
			browsertest.Screenshot(t, b.ctx, "store-down-"+c.lang+".png")
			// Back to the enrollment page: it is asked again (no-store),
			// and the store's page answers it; so does a reload.
			b.do("go back", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.ID("problem")))
			wantDown("Back")
			b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("problem")))
			wantDown("reload")
			if n := len(b.app.messages()); n != 0 {
				t.Fatalf("%d messages queued while the store was down", n)
			}

			us.down.Store(false)
			if err := gate.Probe(t.Context()); err != nil {
				t.Fatalf("probe of a store that answers again: %v", err)
			}
			b.wantStatus("reload, store back", b.open(link), 200)
			b.wantLang()
			b.wantStatus("send the code, store back", b.submit("#send"), 200)
			b.wantText("notice", b.msg("notice.sent.sms", nil))
			if n := len(b.app.messages()); n != 1 {
				t.Fatalf("%d messages queued once the store was back, want 1", n)
			}
		})
	}
}
