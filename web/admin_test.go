package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

func TestAdminLogin(t *testing.T) {
	a := newAdminApp(t)

	t.Run("nested admin by username, UPN and DOMAIN\\user", func(t *testing.T) {
		var ip string
		for _, login := range []string{a.lab.HelpdeskUsername, a.lab.HelpdeskUsername + a.lab.UPNSuffix(),
			a.lab.NetBIOSDomain() + `\` + a.lab.HelpdeskUsername} {
			b := a.browser(t)
			ip = b.ip
			b.login(login, a.lab.HelpdeskPassword)
			p := b.get("/admin/dashboard")
			if p.code != http.StatusOK || !strings.Contains(p.body, a.text("admin.dash.recent", nil)) {
				t.Fatalf("%s: dashboard status %d", login, p.code)
			}
			if ck := sessionCookie(b); ck == nil || !ck.HttpOnly {
				t.Fatalf("%s: session cookie %+v", login, ck)
			}
		}
		ok := a.events("admin_login")
		if len(ok) < 3 || ok[len(ok)-1].Outcome != "ok" || ok[len(ok)-1].SourceIP != ip ||
			!strings.EqualFold(ok[len(ok)-1].Username, a.lab.HelpdeskUsername) {
			t.Fatalf("audit %+v", ok)
		}
	})

	t.Run("session cookie attributes", func(t *testing.T) {
		b := a.browser(t)
		b.get("/admin/login")
		p := b.post("/admin/login", url.Values{"username": {a.lab.HelpdeskUsername}, "password": {a.lab.HelpdeskPassword}})
		set := strings.Join(p.header.Values("Set-Cookie"), "\n")
		for _, want := range []string{adminCookie + "=", "Path=/;", "HttpOnly", "SameSite=Strict", "Max-Age=3600"} {
			if !strings.Contains(set, want) {
				t.Errorf("Set-Cookie lacks %q:\n%s", want, set)
			}
		}
	})

	t.Run("wrong password and unknown user answer alike", func(t *testing.T) {
		b := a.browser(t)
		bad := b.post("/admin/login", url.Values{"username": {a.lab.HelpdeskUsername}, "password": {"Wrong#Pass1x"}})
		unknown := b.post("/admin/login", url.Values{"username": {"nobody-here"}, "password": {"Wrong#Pass1x"}})
		for _, p := range []answer{bad, unknown} {
			if p.code != http.StatusUnauthorized || errorText(p.body) != a.text("admin.login.bad", nil) {
				t.Fatalf("status %d, alert %q", p.code, errorText(p.body))
			}
		}
		if p := b.get("/admin/dashboard"); p.code != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/admin/login") {
			t.Fatalf("dashboard after a failed login: %d %s", p.code, p.header.Get("Location"))
		}
	})

	t.Run("member of no admin group", func(t *testing.T) {
		name := a.user("plain")
		b := a.browser(t)
		p := b.post("/admin/login", url.Values{"username": {name}, "password": {"Initial#Pass1x"}})
		if p.code != http.StatusForbidden || errorText(p.body) != a.text("admin.login.not_admin", nil) {
			t.Fatalf("status %d, alert %q", p.code, errorText(p.body))
		}
		if ck := sessionCookie(b); ck != nil {
			t.Fatalf("a non-admin got a session cookie")
		}
		evs := a.events("admin_login")
		if last := evs[len(evs)-1]; last.Outcome != "not_admin" || last.Username != name {
			t.Fatalf("audit %+v", last)
		}
	})

	t.Run("five failures block the account for ten minutes", func(t *testing.T) {
		name, password := a.admin("blocked")
		b := a.browser(t)
		for i := range 5 {
			p := b.post("/admin/login", url.Values{"username": {name}, "password": {"Wrong#Pass1x"}})
			if p.code != http.StatusUnauthorized {
				t.Fatalf("failure %d: status %d", i+1, p.code)
			}
		}
		// The right password, even spelled differently, is refused now.
		p := b.post("/admin/login", url.Values{"username": {strings.ToUpper(name)}, "password": {password}})
		if p.code != http.StatusTooManyRequests || !strings.Contains(errorText(p.body), "Try again after") {
			t.Fatalf("6th try: status %d %q", p.code, errorText(p.body))
		}
		a.clock.Advance(10*time.Minute + time.Second)
		// The lab domain also locks after 5 bad passwords. The directory
		// refuses a locked account whatever the password, so even the
		// right one is answered as a wrong one; once unlocked it works.
		if p := b.post("/admin/login", url.Values{"username": {name}, "password": {password}}); p.code != http.StatusUnauthorized ||
			errorText(p.body) != a.text("admin.login.bad", nil) {
			t.Fatalf("after the guard, the AD lockout: %d %q", p.code, errorText(p.body))
		}
		u, err := a.dir.FindUser(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.dir.Unlock(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		b.login(name, password)
	})

	t.Run("failures from one address never block another account", func(t *testing.T) {
		a2 := newAdminApp(t) // a fresh guard: the other sub-tests used this address
		b := a2.browser(t)
		for i := range addressSlowAfter + 2 {
			p := b.post("/admin/login", url.Values{"username": {a2.lab.UniqueName("guess")}, "password": {"x"}})
			if p.code != http.StatusUnauthorized {
				t.Fatalf("failure %d: status %d", i+1, p.code)
			}
		}
		// The address is slowed down, not blocked: the right password of
		// another account still signs in.
		b.login(a2.lab.HelpdeskUsername, a2.lab.HelpdeskPassword)
	})

	t.Run("no form token, no login", func(t *testing.T) {
		b := a.browser(t)
		p := b.postRaw("/admin/login", url.Values{"username": {a.lab.HelpdeskUsername}, "password": {a.lab.HelpdeskPassword}})
		if p.code != http.StatusForbidden || sessionCookie(b) != nil {
			t.Fatalf("login without CSRF token: %d", p.code)
		}
	})

	t.Run("logout ends the session", func(t *testing.T) {
		b := a.browser(t)
		b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
		old := sessionCookie(b).Value
		if p := b.post("/admin/logout", nil); p.code != http.StatusSeeOther {
			t.Fatalf("logout: %d", p.code)
		}
		// Even a copy of the old cookie is worthless now.
		c := a.browser(t)
		c.cookies[adminCookie] = &http.Cookie{Name: adminCookie, Value: old}
		if p := c.get("/admin/dashboard"); p.code != http.StatusSeeOther {
			t.Fatalf("old session after logout: %d", p.code)
		}
	})

	t.Run("session fixation: a planted cookie is replaced at login", func(t *testing.T) {
		b := a.browser(t)
		b.cookies[adminCookie] = &http.Cookie{Name: adminCookie, Value: "planted-by-an-attacker"}
		b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
		if ck := sessionCookie(b); ck == nil || ck.Value == "planted-by-an-attacker" {
			t.Fatalf("session cookie %+v", ck)
		}
	})

	t.Run("session expires after session_ttl", func(t *testing.T) {
		b := a.browser(t)
		b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
		a.clock.Advance(59 * time.Minute)
		if p := b.get("/admin/enrollments"); p.code != http.StatusOK {
			t.Fatalf("within the TTL: %d", p.code)
		}
		a.clock.Advance(2 * time.Minute)
		p := b.get("/admin/enrollments")
		if p.code != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "why=admin.login.expired") ||
			!strings.Contains(p.header.Get("Location"), "next=%2Fadmin%2Fenrollments") {
			t.Fatalf("after the TTL: %d %s", p.code, p.header.Get("Location"))
		}
		// A form posted with an expired session says so instead of acting.
		p = b.post("/admin/enrollments/x/deactivate", nil)
		if p.code != http.StatusUnauthorized {
			t.Fatalf("post after the TTL: %d", p.code)
		}
	})

	t.Run("membership is checked again after a minute", func(t *testing.T) {
		name, password := a.admin("leaver")
		b := a.browser(t)
		b.login(name, password)
		removeMember(t, a.lab, a.lab.AdminGroupDN, name)
		if p := b.get("/admin/dashboard"); p.code != http.StatusOK {
			t.Fatalf("within the minute the cached answer holds: %d", p.code)
		}
		a.clock.Advance(time.Minute)
		p := b.get("/admin/dashboard")
		if p.code != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "not_admin_any_more") {
			t.Fatalf("after leaving the group: %d %s", p.code, p.header.Get("Location"))
		}
	})

	t.Run("next only leads into the console", func(t *testing.T) {
		for next, want := range map[string]string{"/admin/audit": "/admin/audit", "//evil.example/admin/": "/admin/dashboard",
			"https://evil.example/": "/admin/dashboard", "/admin/login": "/admin/dashboard"} {
			b := a.browser(t)
			p := b.post("/admin/login", url.Values{"username": {a.lab.HelpdeskUsername}, "password": {a.lab.HelpdeskPassword}, "next": {next}})
			if p.header.Get("Location") != want {
				t.Errorf("next %q: went to %q, want %q", next, p.header.Get("Location"), want)
			}
		}
	})
}

func sessionCookie(b *browser) *http.Cookie { return b.cookies[adminCookie] }

// removeMember takes the user out of the group, as an AD admin would.
func removeMember(t *testing.T, lab *ldaplab.Server, groupDN, username string) {
	t.Helper()
	conn := lab.AdminConn(t)
	res, err := conn.Search(ldapSearch(lab.BaseDN, "(sAMAccountName="+username+")"))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("find %s: %v", username, err)
	}
	if err := conn.Modify(ldapDelMember(groupDN, res.Entries[0].DN)); err != nil {
		t.Fatalf("remove %s from the group: %v", username, err)
	}
}

func TestAdminConsoleOperations(t *testing.T) {
	a := newAdminApp(t)
	b := a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	actor := "admin:" + a.lab.HelpdeskUsername

	t.Run("search and activate one user", func(t *testing.T) {
		name := a.user("search")
		p := b.get("/admin/users?q=" + url.QueryEscape(name))
		if p.code != http.StatusOK || !strings.Contains(p.body, `value="`+name+`"`) {
			t.Fatalf("search: %d\n%s", p.code, p.body)
		}
		p = b.post("/admin/users/activate", url.Values{"username": {name}})
		if p.code != http.StatusOK || !strings.Contains(p.body, "1 email sent, 0 not sent") {
			t.Fatalf("activate: %d %s", p.code, errorText(p.body))
		}
		evs := a.events("activate")
		last := evs[len(evs)-1]
		if last.Username != name || last.Actor != actor || last.SourceIP != b.ip || last.Outcome != "ok" {
			t.Fatalf("audit %+v", last)
		}
		if sent := a.mailer.Sent(); len(sent) == 0 || sent[len(sent)-1].To != name+"@example.com" {
			t.Fatalf("no activation mail to %s", name)
		}
	})

	t.Run("activate a group recursively, skipping the enrolled", func(t *testing.T) {
		u1, u2, u3 := a.user("grp"), a.user("grp"), a.user("grp")
		inner := a.lab.AddGroup(t, ldaplab.GroupSpec{Name: a.lab.UniqueName("inner"), Members: []string{dnOf(t, a, u2), dnOf(t, a, u3)}})
		outer := a.lab.AddGroup(t, ldaplab.GroupSpec{Name: a.lab.UniqueName("outer"), Members: []string{dnOf(t, a, u1), inner}})
		if _, err := a.svc.EnrollInPerson(context.Background(), u3, "+12015550177", "en", "cli:test"); err != nil {
			t.Fatal(err)
		}
		p := b.post("/admin/users/activate", url.Values{"group": {outer}})
		if p.code != http.StatusOK || !strings.Contains(p.body, "2 emails sent, 1 not sent") ||
			!strings.Contains(p.body, a.text("admin.act.already_enrolled", nil)) {
			t.Fatalf("group: %d %s\n%s", p.code, errorText(p.body), p.body)
		}
		// Run again (as after a time limit): nobody is mailed twice, the
		// links already sent stay valid.
		mails := len(a.mailer.Sent())
		p = b.post("/admin/users/activate", url.Values{"group": {outer}})
		if p.code != http.StatusOK || !strings.Contains(p.body, "0 emails sent, 3 not sent") ||
			!strings.Contains(visibleText(p.body), a.text("admin.act.already_activated", nil)) || len(a.mailer.Sent()) != mails {
			t.Fatalf("group again: %d %s, %d new mails", p.code, errorText(p.body), len(a.mailer.Sent())-mails)
		}
		// Named on its own, a user gets a new link (re-send).
		p = b.post("/admin/users/activate", url.Values{"username": {u1}})
		if !strings.Contains(p.body, "1 email sent, 0 not sent") {
			t.Fatalf("single re-send: %s", errorText(p.body))
		}
	})

	t.Run("activate an OU", func(t *testing.T) {
		ou := a.lab.AddOU(t, a.lab.UniqueName("ou"), "")
		for range 2 {
			a.lab.AddUserIn(t, ou, ldaplab.UserSpec{Username: a.lab.UniqueName("ouu"), Password: "Initial#Pass1x", Mail: "x@example.com"})
		}
		p := b.post("/admin/users/activate", url.Values{"ou": {ou}})
		if p.code != http.StatusOK || !strings.Contains(p.body, "2 emails sent, 0 not sent") {
			t.Fatalf("ou: %d %s", p.code, errorText(p.body))
		}
		p = b.post("/admin/users/activate", url.Values{"ou": {"OU=Elsewhere,DC=other,DC=test"}})
		if p.code == http.StatusOK || errorText(p.body) == "" {
			t.Fatalf("an OU outside the base: %d", p.code)
		}
	})

	t.Run("activate from a CSV upload", func(t *testing.T) {
		u1, u2 := a.user("csv"), a.user("csv")
		file := "username\n" + u1 + "\n\n# a comment\n" + strings.ToUpper(u2) + ";ignored\nnot-a-user-xyz\n" + u1 + "\n"
		p := b.postMultipart("/admin/users/activate", "csv", "people.csv", file)
		if p.code != http.StatusOK || !strings.Contains(p.body, "people.csv: 2 emails sent, 1 not sent") ||
			!strings.Contains(p.body, a.text("admin.act.not_found", nil)) {
			t.Fatalf("csv: %d %s\n%s", p.code, errorText(p.body), p.body)
		}
		p = b.postMultipart("/admin/users/activate", "csv", "bad.csv", "\xff\xfe binary")
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(errorText(p.body), "UTF-8") {
			t.Fatalf("binary csv: %d %q", p.code, errorText(p.body))
		}
	})

	t.Run("enrollment actions", func(t *testing.T) {
		name := a.user("enr")
		p := b.post("/admin/enroll", url.Values{"username": {name}, "phone": {"(201) 555-0188"}})
		if p.code != http.StatusSeeOther {
			t.Fatalf("enroll in person: %d %s", p.code, errorText(p.body))
		}
		p = b.get(p.header.Get("Location"))
		if noticeText(p.body) != a.text("admin.done.enrolled", nil) || !strings.Contains(visibleText(p.body), "+12015550188") {
			t.Fatalf("details after enrolling: %q", noticeText(p.body))
		}
		// Another user's number is refused with a clear message.
		other := a.user("enr")
		p = b.post("/admin/enroll", url.Values{"username": {other}, "phone": {"+1 201 555 0188"}})
		if p.code != http.StatusConflict || errorText(p.body) != a.text("admin.err.phone_taken", nil) {
			t.Fatalf("taken phone: %d %q", p.code, errorText(p.body))
		}
		p = b.post("/admin/enrollments/"+name+"/phone", url.Values{"phone": {"not a phone"}})
		if p.code != http.StatusUnprocessableEntity || !strings.HasPrefix(errorText(p.body), "The phone number is not valid") {
			t.Fatalf("bad phone: %d %q", p.code, errorText(p.body))
		}
		p = b.post("/admin/enrollments/"+name+"/phone", url.Values{"phone": {"+1 201 555 0199"}})
		if p.code != http.StatusSeeOther {
			t.Fatalf("change phone: %d %s", p.code, errorText(p.body))
		}
		e, err := a.store.Enrollment(context.Background(), name)
		if err != nil || e.Phone != "+12015550199" {
			t.Fatalf("after the change: %+v %v", e, err)
		}
		// Deactivating asks first, and changes nothing until confirmed.
		p = b.post("/admin/enrollments/"+name+"/deactivate", nil)
		if p.code != http.StatusOK || !strings.Contains(p.body, `id="confirm"`) || !strings.Contains(p.body, `name="confirm" value="yes"`) {
			t.Fatalf("deactivate without confirmation: %d\n%s", p.code, p.body)
		}
		if e, _ := a.store.Enrollment(context.Background(), name); e.State != enroll.StateActive {
			t.Fatalf("deactivated before the confirmation: %s", e.State)
		}
		p = b.post("/admin/enrollments/"+name+"/deactivate", url.Values{"confirm": {"yes"}})
		if p.code != http.StatusSeeOther {
			t.Fatalf("deactivate: %d %s", p.code, errorText(p.body))
		}
		if e, _ := a.store.Enrollment(context.Background(), name); e.State != enroll.StateDeactivated {
			t.Fatalf("state %s", e.State)
		}
		p = b.post("/admin/enrollments/"+name+"/resend", nil)
		if p.code != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "done=resent") {
			t.Fatalf("resend: %d %s", p.code, errorText(p.body))
		}
		for _, action := range []string{"enroll", "change_phone", "deactivate", "activate"} {
			found := false
			for _, ev := range a.events(action) {
				if strings.EqualFold(ev.Username, name) && ev.Actor == actor && ev.SourceIP == b.ip {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s event by %s from 127.0.0.1 for %s", action, actor, name)
			}
		}
		p = b.get("/admin/enrollments/" + name)
		if p.code != http.StatusOK || !strings.Contains(p.body, "change_phone") {
			t.Fatalf("history lacks the phone change: %d", p.code)
		}
	})

	t.Run("enrollments list filters and paginates", func(t *testing.T) {
		ctx := context.Background()
		for i := range 60 {
			e := enroll.Enrollment{Username: "bulk" + string(rune('a'+i/26)) + string(rune('a'+i%26)), State: enroll.StatePending,
				Language: "en", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := a.store.PutEnrollment(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		p := b.get("/admin/enrollments?state=pending&q=bulk")
		if p.code != http.StatusOK || !strings.Contains(p.body, "60 users.") || !strings.Contains(p.body, "Page 1 of 2") {
			t.Fatalf("list: %d\n%s", p.code, p.body)
		}
		p = b.get("/admin/enrollments?state=pending&q=bulk&page=2")
		if !strings.Contains(p.body, "Page 2 of 2") || !strings.Contains(p.body, "bulkch") || strings.Contains(p.body, ">bulkaa<") {
			t.Fatalf("page 2 is wrong")
		}
		p = b.get("/admin/enrollments?state=nonsense")
		if p.code != http.StatusOK || errorText(p.body) != a.text("admin.enr.bad_state", nil) {
			t.Fatalf("bad state: %q", errorText(p.body))
		}
	})

	t.Run("lockouts page and unlock", func(t *testing.T) {
		name := a.user("locked")
		dn := dnOf(t, a, name)
		a.lab.LockOut(t, dn)
		p := b.get("/admin/lockouts")
		if p.code != http.StatusOK || !strings.Contains(p.body, `id="unlock-`+name+`"`) {
			t.Fatalf("lockouts page lacks %s: %d", name, p.code)
		}
		p = b.post("/admin/lockouts/"+name+"/unlock", nil)
		if p.code != http.StatusSeeOther {
			t.Fatalf("unlock: %d %s", p.code, errorText(p.body))
		}
		if a.lab.Locked(t, dn) {
			t.Fatal("still locked")
		}
		p = b.get(p.header.Get("Location"))
		if strings.Contains(p.body, `id="unlock-`+name+`"`) || !strings.Contains(noticeText(p.body), name) {
			t.Fatalf("after unlock: %q", noticeText(p.body))
		}
	})

	t.Run("audit filter and exports", func(t *testing.T) {
		p := b.get("/admin/audit?action=activate&since=" + time.Now().Format("2006-01-02"))
		if p.code != http.StatusOK || !strings.Contains(p.body, "matching events") {
			t.Fatalf("audit: %d", p.code)
		}
		p = b.get("/admin/audit?since=yesterday")
		// A catalog sentence, not the parser's error.
		if p.code != http.StatusUnprocessableEntity || errorText(p.body) != a.text("admin.audit.bad_filter", nil) {
			t.Fatalf("bad since: %d %q", p.code, errorText(p.body))
		}
		p = b.get("/admin/audit/export?format=csv&action=activate")
		if p.code != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(p.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("csv export: %d %v", p.code, p.header)
		}
		rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
		if err != nil || len(rows) < 2 || rows[0][0] != "seq" {
			t.Fatalf("csv: %v %v", rows, err)
		}
		for _, r := range rows[1:] {
			if r[3] != "activate" {
				t.Fatalf("filtered export holds %v", r)
			}
		}
		p = b.get("/admin/audit/export?format=json&action=activate")
		var evs []enroll.Event
		if err := json.Unmarshal([]byte(p.body), &evs); err != nil || len(evs) != len(rows)-1 {
			t.Fatalf("json export: %v, %d events vs %d rows", err, len(evs), len(rows)-1)
		}
		if ex := a.events("audit_export"); len(ex) != 2 || ex[0].Actor != actor {
			t.Fatalf("exports audited: %+v", ex)
		}
	})

	t.Run("dashboard counts", func(t *testing.T) {
		p := b.get("/admin/dashboard")
		if p.code != http.StatusOK || !strings.Contains(p.body, `id="state-active"`) {
			t.Fatalf("dashboard: %d", p.code)
		}
	})

	t.Run("forms without a token change nothing", func(t *testing.T) {
		name := a.user("csrf")
		if _, err := a.svc.EnrollInPerson(context.Background(), name, "+12015550166", "en", "cli:test"); err != nil {
			t.Fatal(err)
		}
		p := b.postRaw("/admin/enrollments/"+name+"/deactivate", url.Values{"confirm": {"yes"}})
		if p.code != http.StatusForbidden || !strings.Contains(p.body, a.text("admin.err.csrf", nil)) {
			t.Fatalf("no token: %d", p.code)
		}
		p = b.postRaw("/admin/enrollments/"+name+"/deactivate", url.Values{csrfField: {"forged"}, "confirm": {"yes"}})
		if p.code != http.StatusForbidden {
			t.Fatalf("forged token: %d", p.code)
		}
		if e, _ := a.store.Enrollment(context.Background(), name); e.State != enroll.StateActive {
			t.Fatalf("state changed to %s", e.State)
		}
	})

	t.Run("French", func(t *testing.T) {
		b2 := a.browser(t)
		b2.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
		p := b2.post("/admin/language", url.Values{"lang": {"fr"}, "back": {"/admin/lockouts"}})
		if p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/lockouts" {
			t.Fatalf("language: %d %s", p.code, p.header.Get("Location"))
		}
		p = b2.get("/admin/lockouts")
		if !strings.Contains(p.body, `<html lang="fr">`) || !strings.Contains(p.body, a.pages.Text("fr", "admin.nav.lockouts", nil)) {
			t.Fatal("the console is not in French")
		}
	})
}

// dnOf returns the DN of a username.
func dnOf(t *testing.T, a *adminApp, username string) string {
	t.Helper()
	u, err := a.dir.FindUser(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.DN
}

// postMultipart uploads one file as the CSV form does.
func (b *browser) postMultipart(path, field, filename, content string) answer {
	b.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField(csrfField, b.csrf)
	fw, _ := w.CreateFormFile(field, filename)
	_, _ = fw.Write([]byte(content))
	w.Close()
	req := httptest.NewRequest(http.MethodPost, path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return b.do(req)
}
