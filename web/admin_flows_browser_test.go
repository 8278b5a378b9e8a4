package web

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/web/browsertest"
)

// The console's first hour, in Chromium against Samba AD, at a phone and a
// desktop viewport, in English and in French: invited users and their
// links, re-send and revoke with a confirmation step, disabled and expired
// accounts named as such, plurals, dates in the admin's named zone, and
// unlock all.

// adminScreen signs in at the viewport, in lang, from a browser in
// Europe/Paris, and returns the tab.
func adminScreen(t *testing.T, ctx context.Context, a *adminApp, vp int, lang, accept string) *adminTab {
	t.Helper()
	v := viewports[vp]
	opts := []chromedp.EmulateViewportOption{}
	if v.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	browsertest.Do(t, ctx, "set the viewport", chromedp.EmulateViewport(v.width, v.height, opts...))
	b := newAdminTab(t, ctx, a)
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": accept}}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Paris"}); err != nil {
		t.Fatal(err)
	}
	b.wantStatus("sign in", b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword), 200)
	if got := b.js(`document.documentElement.lang`); got != lang {
		t.Fatalf("console language %q, want %q", got, lang)
	}
	// The zone the login form sent (static/tz.js) is the one named.
	if got := b.text("#zone"); got != a.pages.Text(lang, "admin.zone", map[string]string{"zone": "Europe/Paris"}) {
		t.Fatalf("zone line %q", got)
	}
	return b
}

func eachAdminScreen(t *testing.T, fn func(t *testing.T, a *adminApp, b *adminTab, lang string)) {
	ctx := newBrowser(t)
	a := newAdminApp(t)
	for vp := range viewports {
		for _, l := range journeyLanguages {
			t.Run(viewports[vp].name+"/"+l.lang, func(t *testing.T) {
				fn(t, a, adminScreen(t, ctx, a, vp, l.lang, l.accept), l.lang)
			})
		}
	}
}

func TestBrowserAdminInvitedUsers(t *testing.T) {
	eachAdminScreen(t, func(t *testing.T, a *adminApp, b *adminTab, lang string) {
		name := a.user("binv")
		if _, err := a.svc.Activate(context.Background(), name, "admin:"+a.lab.HelpdeskUsername); err != nil {
			t.Fatal(err)
		}
		token := lastLinkToken(t, a)

		// Listed at once as invited, with the link's dates, and found by
		// the state filter; "1 user", not "1 users".
		b.wantStatus("invited users", b.open("/admin/enrollments?state=invited&q="+name), 200)
		if got := b.text("#count"); got != a.pages.Plural(lang, "admin.enr.count", 1, nil) {
			t.Fatalf("count %q", got)
		}
		row := "#row-" + name
		if got := b.text(row + " .state"); got != a.pages.Text(lang, "admin.state.invited", nil) {
			t.Fatalf("state %q", got)
		}
		paris, _ := time.LoadLocation("Europe/Paris")
		expires := b.text(row + " .expires")
		// The test clock stands still: the link expires in exactly 7 days.
		wantRel := a.pages.Plural(lang, "admin.rel.future.days", 7, nil)
		wantAbs := a.clock.Now().Add(7 * 24 * time.Hour).In(paris).Format("15:04 MST")
		if !strings.Contains(expires, wantRel) || !strings.Contains(expires, wantAbs) {
			t.Fatalf("link expires %q, want %q in Paris time and %q", expires, wantAbs, wantRel)
		}
		if sent := b.text(row + " .invited"); !strings.Contains(sent, a.pages.Text(lang, "admin.rel.now", nil)) ||
			!strings.Contains(sent, a.lab.HelpdeskUsername) {
			t.Fatalf("link sent %q", sent)
		}
		// The dashboard counts invited users and leads to the list.
		b.wantStatus("dashboard", b.open("/admin/dashboard"), 200)
		if n, _ := strconv.Atoi(b.text("#state-invited")); n < 1 {
			t.Fatalf("dashboard invited count %q", b.text("#state-invited"))
		}
		if href := b.js(`document.querySelector("#state-invited a").getAttribute("href")`); href != "/admin/enrollments?state=invited" {
			t.Fatalf("dashboard invited link %q", href)
		}
		// The other filters do not show the user; all states do.
		b.open("/admin/enrollments?state=active&q=" + name)
		if got := b.text("#count"); got != a.pages.Plural(lang, "admin.enr.count", 0, nil) {
			t.Fatalf("active filter count %q", got)
		}

		// Re-send from the list: a new mail, the old link stops working.
		mails := len(a.mailer.Sent())
		b.open("/admin/enrollments?q=" + name)
		b.wantStatus("re-send", b.submit("#resend-"+name), 200)
		if got := b.text("#notice"); got != a.pages.Text(lang, "admin.done.resent", nil) || len(a.mailer.Sent()) != mails+1 {
			t.Fatalf("after re-send: %q, %d mails", got, len(a.mailer.Sent())-mails)
		}
		if _, err := a.svc.Open(context.Background(), token); !errors.Is(err, enroll.ErrTokenUnknown) {
			t.Fatalf("the old link after a re-send: %v", err)
		}
		token = lastLinkToken(t, a)

		// Revoke asks first; Cancel changes nothing.
		b.open("/admin/enrollments?q=" + name)
		b.wantStatus("revoke", b.submit("#revoke-"+name), 200)
		if got := b.text("#confirm-question"); got != a.pages.Text(lang, "admin.confirm.revoke", map[string]string{"user": name}) {
			t.Fatalf("confirmation %q", got)
		}
		b.wantStatus("cancel", b.submit("#cancel"), 200)
		if _, err := a.svc.Open(context.Background(), token); err != nil {
			t.Fatalf("the link after a cancelled revoke: %v", err)
		}
		b.wantStatus("revoke", b.submit("#revoke"), 200)
		b.wantStatus("confirm", b.submit("#confirm"), 200)
		if got := b.text("#notice"); got != a.pages.Text(lang, "admin.done.revoked", nil) {
			t.Fatalf("after revoke: %q", got)
		}
		if _, err := a.svc.Open(context.Background(), token); !errors.Is(err, enroll.ErrTokenUnknown) {
			t.Fatalf("the revoked link: %v", err)
		}
		if evs := a.events("revoke_activation"); len(evs) == 0 || evs[len(evs)-1].Username != name ||
			evs[len(evs)-1].Actor != "admin:"+a.lab.HelpdeskUsername || evs[len(evs)-1].Outcome != "ok" {
			t.Fatalf("audit %+v", evs)
		}
		b.open("/admin/enrollments?state=invited&q=" + name)
		if got := b.text("#count"); got != a.pages.Plural(lang, "admin.enr.count", 0, nil) {
			t.Fatalf("invited after revoke: %q", got)
		}
	})
}

// lastLinkToken is the token of the newest activation mail.
func lastLinkToken(t *testing.T, a *adminApp) string {
	t.Helper()
	sent := a.mailer.Sent()
	m := linkRE.FindStringSubmatch(sent[len(sent)-1].Text)
	if m == nil {
		t.Fatalf("no link in %q", sent[len(sent)-1].Text)
	}
	return m[1][strings.LastIndex(m[1], "/")+1:]
}

// modify sets attributes of dn as the lab's administrator.
func modify(t *testing.T, a *adminApp, dn string, attrs map[string]string) {
	t.Helper()
	conn := a.lab.AdminConn(t)
	m := ldap.NewModifyRequest(dn, nil)
	for k, v := range attrs {
		m.Replace(k, []string{v})
	}
	if err := conn.Modify(m); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

func TestBrowserAdminAccountStates(t *testing.T) {
	eachAdminScreen(t, func(t *testing.T, a *adminApp, b *adminTab, lang string) {
		disabled, expired := a.user("bdis"), a.user("bexp")
		modify(t, a, dnOf(t, a, disabled), map[string]string{"userAccountControl": "514"})
		past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		modify(t, a, dnOf(t, a, expired), map[string]string{"accountExpires": strconv.FormatInt(past.Unix()*10000000+116444736000000000, 10)})

		b.wantStatus("disabled user", b.open("/admin/enrollments/"+disabled), 200)
		if got := b.text("#directory-state"); got != a.pages.Text(lang, "admin.dir.disabled", nil) {
			t.Fatalf("disabled account shown as %q", got)
		}
		b.wantStatus("expired user", b.open("/admin/enrollments/"+expired), 200)
		if got := b.text("#directory-state"); got != a.pages.Text(lang, "admin.dir.expired", nil) {
			t.Fatalf("expired account shown as %q", got)
		}
		b.wantStatus("unknown user", b.open("/admin/enrollments/nobody-"+disabled), 404)

		// Activating a disabled account says why not, not "not in the
		// directory" (an expired one is found, and shown as expired above).
		for user, key := range map[string]string{disabled: "admin.act.disabled"} {
			b.wantStatus("users page", b.open("/admin/users"), 200)
			b.fill("one", user)
			b.wantStatus("activate", b.submit("#activate-one"), 200)
			if got := b.js(`(document.querySelector("#results tr.failed td:last-child") || document.body).innerText`); got != a.pages.Text(lang, key, nil) {
				t.Fatalf("activation of %s: %q, want %q", user, got, a.pages.Text(lang, key, nil))
			}
			if got := b.text("#summary"); got != a.pages.Text(lang, "admin.results.summary", map[string]string{"source": user,
				"sent": a.pages.Plural(lang, "admin.results.n_sent", 0, nil), "failed": a.pages.Plural(lang, "admin.results.n_failed", 1, nil)}) {
				t.Fatalf("summary %q", got)
			}
		}
	})
}

var phoneSeq int

func TestBrowserAdminDeactivateAndUnlockAllConfirm(t *testing.T) {
	eachAdminScreen(t, func(t *testing.T, a *adminApp, b *adminTab, lang string) {
		name := a.user("bdea")
		phoneSeq++
		if _, err := a.svc.EnrollInPerson(context.Background(), name, fmt.Sprintf("+1201555%04d", 300+phoneSeq), "en", "cli:test"); err != nil {
			t.Fatal(err)
		}
		b.wantStatus("enrollment", b.open("/admin/enrollments/"+name), 200)
		b.wantStatus("deactivate", b.submit("#deactivate"), 200)
		if got := b.text("#confirm-question"); got != a.pages.Text(lang, "admin.confirm.deactivate", map[string]string{"user": name}) {
			t.Fatalf("confirmation %q", got)
		}
		if e, _ := a.store.Enrollment(context.Background(), name); e.State != enroll.StateActive {
			t.Fatalf("deactivated before the confirmation: %s", e.State)
		}
		b.wantStatus("confirm", b.submit("#confirm"), 200)
		if e, _ := a.store.Enrollment(context.Background(), name); e.State != enroll.StateDeactivated {
			t.Fatalf("state after the confirmation: %s", e.State)
		}

		// Unlock all: the button and the question count the accounts.
		u1, u2 := a.user("bula"), a.user("bula")
		a.lab.LockOut(t, dnOf(t, a, u1))
		a.lab.LockOut(t, dnOf(t, a, u2))
		b.wantStatus("lockouts", b.open("/admin/lockouts"), 200)
		n, _ := strconv.Atoi(b.js(`String(document.querySelectorAll("#lockouts tbody tr").length)`))
		if got := b.text("#unlock-all"); got != a.pages.Plural(lang, "admin.lock.unlock_all", n, nil) || n < 2 {
			t.Fatalf("unlock-all button %q for %d rows", got, n)
		}
		b.wantStatus("unlock all", b.submit("#unlock-all"), 200)
		if got := b.text("#confirm-question"); got != a.pages.Plural(lang, "admin.confirm.unlock_all", n, nil) {
			t.Fatalf("question %q", got)
		}
		if !a.lab.Locked(t, dnOf(t, a, u1)) {
			t.Fatal("unlocked before the confirmation")
		}
		b.wantStatus("confirm", b.submit("#confirm"), 200)
		if got := b.text("#notice"); got != a.pages.Plural(lang, "admin.done.unlocked_all", n, nil) {
			t.Fatalf("notice %q", got)
		}
		if a.lab.Locked(t, dnOf(t, a, u1)) || a.lab.Locked(t, dnOf(t, a, u2)) {
			t.Fatal("still locked after unlock all")
		}
	})
}
