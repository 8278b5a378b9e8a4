package web

import (
	"context"
	"encoding/csv"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/web/browsertest"
)

// The admin console in headless Chromium against Samba AD: the admin group
// is Helpdesk → Tier2 → helpdeskadmin, so the admin who signs in is a
// member only through a nested group.

type adminTab struct {
	t   *testing.T
	ctx context.Context
	a   *adminApp
	url string
}

func newAdminTab(t *testing.T, ctx context.Context, a *adminApp) *adminTab {
	t.Helper()
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
	return &adminTab{t: t, ctx: ctx, a: a, url: srv.URL}
}

func (b *adminTab) open(path string) int64 {
	b.t.Helper()
	return browsertest.Open(b.t, b.ctx, b.url+path)
}
func (b *adminTab) submit(sel string) int64 { b.t.Helper(); return browsertest.Submit(b.t, b.ctx, sel) }
func (b *adminTab) text(sel string) string  { b.t.Helper(); return browsertest.Text(b.t, b.ctx, sel) }
func (b *adminTab) js(expr string) string   { b.t.Helper(); return browsertest.Eval(b.t, b.ctx, expr) }

func (b *adminTab) fill(id, value string) {
	b.t.Helper()
	b.js(`(document.getElementById(` + jsString(id) + `).value = "", "cleared")`)
	browsertest.Do(b.t, b.ctx, "type into #"+id, chromedp.SendKeys(chromedp.ID(id), value))
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (b *adminTab) login(username, password string) int64 {
	b.t.Helper()
	if st := b.open("/admin/login"); st != 200 {
		b.t.Fatalf("login page: %d", st)
	}
	b.fill("username", username)
	b.fill("password", password)
	return b.submit("#login")
}

func (b *adminTab) wantStatus(what string, got, want int64) {
	b.t.Helper()
	if got != want {
		b.t.Fatalf("%s: status %d, want %d (page: %s)", what, got, want, b.js(`document.body.innerText.slice(0, 400)`))
	}
}

func TestBrowserAdminLogin(t *testing.T) {
	ctx := newBrowser(t)
	a := newAdminApp(t)

	t.Run("bad password", func(t *testing.T) {
		b := newAdminTab(t, ctx, a)
		b.wantStatus("sign in", b.login(a.lab.HelpdeskUsername, "Wrong#Pass1x"), 401)
		if got := b.text("#page-error"); got != a.text("admin.login.bad", nil) {
			t.Fatalf("alert %q", got)
		}
		// The password field is empty again; the username is kept.
		if b.js(`document.getElementById("password").value`) != "" || b.js(`document.getElementById("username").value`) != a.lab.HelpdeskUsername {
			t.Fatal("form values after a failed sign-in")
		}
	})

	t.Run("not an admin", func(t *testing.T) {
		b := newAdminTab(t, ctx, a)
		name := a.user("nonadmin")
		b.wantStatus("sign in", b.login(name, "Initial#Pass1x"), 403)
		if got := b.text("#page-error"); got != a.text("admin.login.not_admin", nil) {
			t.Fatalf("alert %q", got)
		}
		b.wantStatus("dashboard without a session", b.open("/admin/dashboard"), 200)
		if !strings.HasSuffix(b.js(`location.pathname`), "/admin/login") {
			t.Fatalf("not sent to the login page: %s", b.js(`location.href`))
		}
	})

	t.Run("nested admin signs in and out", func(t *testing.T) {
		b := newAdminTab(t, ctx, a)
		b.wantStatus("sign in", b.login(a.lab.HelpdeskUsername+a.lab.UPNSuffix(), a.lab.HelpdeskPassword), 200)
		if got := b.text("#admin-name"); got == "" || b.js(`location.pathname`) != "/admin/dashboard" {
			t.Fatalf("after sign-in: %q at %s", got, b.js(`location.pathname`))
		}
		// The session cookie is not readable from scripts.
		if strings.Contains(b.js(`document.cookie`), adminCookie) {
			t.Fatal("the session cookie is visible to JavaScript")
		}
		browsertest.Screenshot(t, ctx, filepath.Join(browsertest.ArtifactDir(t), "admin-dashboard.png"))
		b.wantStatus("sign out", b.submit("#logout"), 200)
		if got := b.text("#notice"); got != a.text("admin.login.signed_out", nil) {
			t.Fatalf("after sign-out: %q", got)
		}
		b.open("/admin/enrollments")
		if b.js(`location.pathname`) != "/admin/login" {
			t.Fatal("the console still opens after sign-out")
		}
	})
}

func TestBrowserAdminOperations(t *testing.T) {
	ctx := newBrowser(t)
	a := newAdminApp(t)
	b := newAdminTab(t, ctx, a)
	b.wantStatus("sign in", b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword), 200)

	t.Run("activate a group", func(t *testing.T) {
		u1, u2 := a.user("bgrp"), a.user("bgrp")
		inner := a.lab.AddGroup(t, ldaplab.GroupSpec{Name: a.lab.UniqueName("binner"), Members: []string{dnOf(t, a, u2)}})
		name := a.lab.UniqueName("bouter")
		a.lab.AddGroup(t, ldaplab.GroupSpec{Name: name, Members: []string{dnOf(t, a, u1), inner}})
		b.wantStatus("users page", b.open("/admin/users"), 200)
		b.fill("group", name) // by name, not DN
		b.wantStatus("activate the group", b.submit("#activate-group"), 200)
		if got := b.text("#summary"); got != name+": 2 emails sent, 0 not sent." {
			t.Fatalf("summary %q", got)
		}
		rows := b.js(`[...document.querySelectorAll("#results tbody tr")].map(r => r.cells[0].innerText).sort().join(",")`)
		want := []string{u1, u2}
		slices.Sort(want)
		if rows != strings.Join(want, ",") {
			t.Fatalf("result rows %q, want %v", rows, want)
		}
	})

	t.Run("activate from a CSV file", func(t *testing.T) {
		u1, u2 := a.user("bcsv"), a.user("bcsv")
		file := filepath.Join(t.TempDir(), "new-starters.csv")
		if err := os.WriteFile(file, []byte("\ufeffusername,department\n"+u1+",Sales\n"+u2+",IT\nghost-user-x,IT\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		b.wantStatus("users page", b.open("/admin/users"), 200)
		browsertest.Do(t, ctx, "choose the file", chromedp.SetUploadFiles(chromedp.ID("csv"), []string{file}))
		b.wantStatus("activate the file", b.submit("#activate-csv"), 200)
		if got := b.text("#summary"); got != "new-starters.csv: 2 emails sent, 1 not sent." {
			t.Fatalf("summary %q", got)
		}
		if got := b.js(`document.querySelector("#results tr.failed td:last-child").innerText`); got != a.text("admin.act.not_found", nil) {
			t.Fatalf("failed row says %q", got)
		}
	})

	t.Run("unlock from the lockouts page", func(t *testing.T) {
		name := a.user("block")
		dn := dnOf(t, a, name)
		a.lab.LockOut(t, dn)
		b.wantStatus("lockouts page", b.open("/admin/lockouts"), 200)
		b.wantStatus("unlock", b.submit("#unlock-"+name), 200)
		if got := b.text("#notice"); got != a.text("admin.done.unlocked", map[string]string{"user": name}) {
			t.Fatalf("notice %q", got)
		}
		if a.lab.Locked(t, dn) {
			t.Fatal("the account is still locked")
		}
		if b.js(`String(document.getElementById("unlock-`+name+`") === null)`) != "true" {
			t.Fatal("the unlocked account is still listed")
		}
	})

	t.Run("audit filter and export", func(t *testing.T) {
		b.wantStatus("audit page", b.open("/admin/audit"), 200)
		b.fill("action", "unlock")
		b.wantStatus("filter", b.submit("#filter"), 200)
		if n := b.js(`String(document.querySelectorAll("#events tbody tr").length)`); n != "1" {
			t.Fatalf("%s unlock events shown, want 1", n)
		}
		// Click the export link: Chromium downloads the file (the page's
		// CSP forbids fetching it from a script, as it should).
		dir := t.TempDir()
		if _, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
			t.Fatalf("allow downloads: %v", err)
		}
		browsertest.Do(t, ctx, "click the CSV export", chromedp.Click(chromedp.ID("export-csv")))
		var text string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			files, _ := filepath.Glob(filepath.Join(dir, "replyreset-audit-*.csv"))
			if len(files) == 1 {
				data, err := os.ReadFile(files[0])
				if err == nil && len(data) > 0 {
					text = string(data)
					break
				}
			}
		}
		status := "200"
		if text == "" {
			status = "no file downloaded"
		}
		rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
		if status != "200" || err != nil || len(rows) != 2 || rows[1][3] != "unlock" || rows[1][2] != "admin:"+a.lab.HelpdeskUsername {
			t.Fatalf("csv export: %s %v %v", status, rows, err)
		}
	})
}
