package reset

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// text is a page text as the HTML holds it.
func (a *app) text(key string, args map[string]string) string {
	return template.HTMLEscapeString(a.pages.Text("en", key, args))
}

// verified takes c from the name to the choice page with the code texted.
func (c *client) verified(u user) {
	c.a.t.Helper()
	c.start(u.name)
	if p := c.post("/reset/verify", url.Values{"code": {c.a.code(u.phone)}}); p.code != http.StatusSeeOther {
		c.a.t.Fatalf("right code: %d\n%s", p.code, visible(p.body))
	}
	if p := c.get("/reset"); !strings.Contains(p.body, `id="unlock"`) {
		c.a.t.Fatalf("after the right code: %d\n%s", p.code, visible(p.body))
	}
}

// TestResetUnlock: on both directories, a locked account's owner types
// the name, gets a code by SMS, types a wrong one then the right one, and
// unlocks the account without changing the password; the phone is told
// with NOT ME; each step is audited as reset_web.
func TestResetUnlock(t *testing.T) {
	eachLab(t, func(t *testing.T, a *app) {
		u := a.enrolled("rwu", "sms")
		a.lab.LockOut(t, u.dn)
		c := a.client()
		p := c.start(u.name)
		if !strings.Contains(p.body, a.text("reset.code.intro", map[string]string{"login": u.name})) {
			t.Fatalf("code page:\n%s", visible(p.body))
		}
		if ms := a.messages(u.phone, "reset_web_code"); len(ms) != 1 || !strings.Contains(ms[0], u.name) {
			t.Fatalf("codes texted: %q", ms)
		}
		code := a.code(u.phone)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		p = c.post("/reset/verify", url.Values{"code": {wrong}})
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, a.text("reset.code.wrong", nil)) {
			t.Fatalf("wrong code: %d\n%s", p.code, visible(p.body))
		}
		if p = c.post("/reset/verify", url.Values{"code": {code[:3] + " " + code[3:]}}); p.code != http.StatusSeeOther {
			t.Fatalf("right code: %d\n%s", p.code, visible(p.body))
		}
		p = c.post("/reset/unlock", url.Values{})
		if p.code != http.StatusOK || !strings.Contains(p.body, a.text("reset.done.unlocked", map[string]string{"username": u.name})) {
			t.Fatalf("unlock: %d\n%s", p.code, visible(p.body))
		}
		if a.lab.Locked(t, u.dn) {
			t.Fatal("the account is still locked")
		}
		if err := a.lab.BindErr(u.dn, u.password); err != nil {
			t.Fatalf("the password changed, or the account does not sign in: %v", err)
		}
		if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 || !strings.Contains(ms[0], "NOT ME") {
			t.Fatalf("notices: %q", ms)
		}
		if got, want := a.audit(u.name), []string{"code_sent", "bad_code", "code_ok", "ok"}; !slices.Equal(got, want) {
			t.Fatalf("audit %q, want %q", got, want)
		}
		// The reset is over: the same browser posts again and gets
		// the start again, nothing done.
		if p = c.post("/reset/unlock", url.Values{}); p.code != http.StatusConflict {
			t.Fatalf("unlock again: %d\n%s", p.code, visible(p.body))
		}
		if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 {
			t.Fatalf("notices after the second post: %q", ms)
		}
	})
}

// TestResetDoubleTap: two unlocks of one reset at once (a double tap) get
// the same page; one unlock is audited, one notice texted.
func TestResetDoubleTap(t *testing.T) {
	a := newApp(t, ldaplab.Samba(t))
	u := a.enrolled("rwd", "sms")
	a.lab.LockOut(t, u.dn)
	c := a.client()
	c.verified(u)
	token := c.token()
	var wg sync.WaitGroup
	answers := make([]answer, 2)
	for i := range answers {
		wg.Go(func() { answers[i] = c.do(http.MethodPost, "/reset/unlock", url.Values{"csrf_token": {token}}) })
	}
	wg.Wait()
	for i, p := range answers {
		if p.code != http.StatusOK || !strings.Contains(p.body, `id="done"`) {
			t.Fatalf("tap %d: %d\n%s", i+1, p.code, visible(p.body))
		}
	}
	if a.lab.Locked(t, u.dn) {
		t.Fatal("still locked")
	}
	if got := a.audit(u.name); !slices.Equal(got, []string{"code_sent", "code_ok", "ok"}) {
		t.Fatalf("audit %q", got)
	}
	if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 {
		t.Fatalf("notices: %q", ms)
	}
}

// TestResetSameAnswerForEveryName: an enrolled name, an unknown one, a
// directory account that is not enrolled and one whose enrollment is
// frozen all get the same page (but the name) and a cookie of one length;
// only the enrolled one gets a text.
func TestResetSameAnswerForEveryName(t *testing.T) {
	a := newApp(t, ldaplab.Samba(t))
	known := a.enrolled("rws", "sms")
	frozen := a.enrolled("rwf", "sms")
	if err := a.store.UpdateEnrollment(context.Background(), frozen.name, func(e *enroll.Enrollment) error {
		e.State = enroll.StateFrozen
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	plain := a.lab.UniqueName("rwn")
	a.lab.AddUser(t, ldaplab.UserSpec{Username: plain, Password: "Start#Pass1x", Mail: plain + "@example.com"})
	unknown := a.lab.UniqueName("rwx")
	var pages []string
	var cookies []int
	for _, login := range []string{known.name, unknown, plain, frozen.name, "nobody*)(uid=*"} {
		c := a.client()
		p := c.start(login)
		pages = append(pages, strings.ReplaceAll(visible(p.body), login, "NAME"))
		u, _ := url.Parse(a.url)
		for _, ck := range c.http.Jar.Cookies(u) {
			if ck.Name == cookieName {
				cookies = append(cookies, len(ck.Value))
			}
		}
	}
	for i := range pages {
		if pages[i] != pages[0] {
			t.Errorf("page %d differs from the enrolled name's:\n%s\n---\n%s", i, pages[i], pages[0])
		}
	}
	if len(cookies) != len(pages) || len(slices.Compact(slices.Clone(cookies))) != 1 {
		t.Errorf("cookie lengths %v for %d pages, want one length", cookies, len(pages))
	}
	all := queued(t, a)
	if len(all) != 1 || all[0].To != known.phone {
		t.Fatalf("messages queued: %+v", all)
	}
}

func queued(t *testing.T, a *app) []enroll.OutboundMessage {
	t.Helper()
	ms, err := a.store.Messages(context.Background(), enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestResetSixWrongCodes: 5 wrong codes refuse the account's codes for 10
// minutes, the right one included, from any browser; nothing is
// unlocked. Ten minutes later a new code works.
func TestResetSixWrongCodes(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t))
	u := a.enrolled("rw6", "sms")
	a.lab.LockOut(t, u.dn)
	c := a.client()
	c.start(u.name)
	code := a.code(u.phone)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 1; i <= 4; i++ {
		if p := c.post("/reset/verify", url.Values{"code": {wrong}}); p.code != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code %d: %d\n%s", i, p.code, visible(p.body))
		}
	}
	p := c.post("/reset/verify", url.Values{"code": {wrong}})
	if p.code != http.StatusTooManyRequests || !strings.Contains(p.body, a.text("err.locked.title", nil)) {
		t.Fatalf("wrong code 5: %d\n%s", p.code, visible(p.body))
	}
	// A sixth try from another browser, with the right code of a new
	// start, is refused unseen.
	other := a.client()
	other.start(u.name)
	p = other.post("/reset/verify", url.Values{"code": {a.code(u.phone)}})
	if p.code != http.StatusTooManyRequests {
		t.Fatalf("right code while refused: %d\n%s", p.code, visible(p.body))
	}
	if !a.lab.Locked(t, u.dn) {
		t.Fatal("unlocked while refused")
	}
	a.clock.Advance(10*time.Minute + time.Second)
	c.verified(u)
	if got := a.audit(u.name); got[len(got)-1] != "code_ok" || !slices.Contains(got, "locked") {
		t.Fatalf("audit %q", got)
	}
}

// TestResetAppCode: an account enrolled with the authenticator app gets
// no text; the app's code (computed by oathtool) lets its owner in, once.
func TestResetAppCode(t *testing.T) {
	a := newApp(t, ldaplab.Samba(t))
	u := a.enrolled("rwa", "app")
	c := a.client()
	c.start(u.name)
	if ms := queued(t, a); len(ms) != 0 {
		t.Fatalf("queued for an app enrollment: %+v", ms)
	}
	code := a.totp(u.secret)
	if p := c.post("/reset/verify", url.Values{"code": {code}}); p.code != http.StatusSeeOther {
		t.Fatalf("app code: %d\n%s", p.code, visible(p.body))
	}
	// The same code in another browser is refused: it worked once.
	other := a.client()
	other.start(u.name)
	if p := other.post("/reset/verify", url.Values{"code": {code}}); p.code != http.StatusUnprocessableEntity {
		t.Fatalf("the same app code again: %d\n%s", p.code, visible(p.body))
	}
}

// TestResetByMail: the mail address finds the account too.
func TestResetByMail(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t))
	u := a.enrolled("rwm", "sms")
	a.client().start(u.name + "@example.com")
	if ms := a.messages(u.phone, "reset_web_code"); len(ms) != 1 {
		t.Fatalf("codes: %q", ms)
	}
}

// TestResetPrivilegedRefused: a Domain Admin gets the service-desk page
// after the right code, never the choice; nothing is unlocked.
func TestResetPrivilegedRefused(t *testing.T) {
	a := newApp(t, ldaplab.Samba(t))
	u := a.enrolled("rwp", "sms")
	a.lab.AddMember(t, "CN=Domain Admins,CN=Users,"+a.lab.BaseDN, u.dn)
	a.lab.LockOut(t, u.dn)
	c := a.client()
	c.start(u.name)
	p := c.post("/reset/verify", url.Values{"code": {a.code(u.phone)}})
	if p.code != http.StatusForbidden || !strings.Contains(p.body, a.text("reset.no_self_service.text", nil)) {
		t.Fatalf("privileged: %d\n%s", p.code, visible(p.body))
	}
	if p = c.post("/reset/unlock", url.Values{}); p.code != http.StatusConflict {
		t.Fatalf("unlock after the refusal: %d\n%s", p.code, visible(p.body))
	}
	if !a.lab.Locked(t, u.dn) {
		t.Fatal("a privileged account was unlocked")
	}
	evs, err := a.store.Audit(context.Background(), enroll.AuditFilter{Username: u.name, Action: enroll.ActionSelfServiceRefused})
	if err != nil || len(evs) != 1 || !strings.HasPrefix(evs[0].Detail, actionWebReset+": ") {
		t.Fatalf("refusal audited: %+v %v", evs, err)
	}
}

// TestResetNeedsTheFormToken: a post without its form token is refused
// and sends nothing.
func TestResetNeedsTheFormToken(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t))
	u := a.enrolled("rwc", "sms")
	c := a.client()
	c.get("/reset")
	if p := c.do(http.MethodPost, "/reset/start", url.Values{"login": {u.name}}); p.code != http.StatusForbidden {
		t.Fatalf("no token: %d\n%s", p.code, visible(p.body))
	}
	if ms := queued(t, a); len(ms) != 0 {
		t.Fatalf("queued: %+v", ms)
	}
}

// TestResetLinkedFromHome: the start page links to /reset.
func TestResetLinkedFromHome(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t))
	if p := a.client().get("/"); p.code != http.StatusOK || !strings.Contains(p.body, `<a id="reset-link" href="/reset">`) {
		t.Fatalf("GET /: %d\n%s", p.code, visible(p.body))
	}
}

// TestResetRefusesDisabledAndFrozen: an account disabled in the directory,
// or whose enrollment was frozen (NOT ME) after the code was sent, gets
// the service-desk page after the right code, and nothing is changed.
func TestResetRefusesDisabledAndFrozen(t *testing.T) {
	a := newApp(t, ldaplab.Samba(t))
	disabled, frozen := a.enrolled("rwz", "sms"), a.enrolled("rwq", "sms")
	for _, u := range []user{disabled, frozen} {
		c := a.client()
		c.start(u.name)
		if u == disabled {
			conn := a.lab.AdminConn(t)
			mod := ldap.NewModifyRequest(u.dn, nil)
			mod.Replace("userAccountControl", []string{"514"}) // ACCOUNTDISABLE
			if err := conn.Modify(mod); err != nil {
				t.Fatal(err)
			}
			conn.Close()
		} else if err := a.store.UpdateEnrollment(context.Background(), u.name, func(e *enroll.Enrollment) error {
			e.State = enroll.StateFrozen
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		p := c.post("/reset/verify", url.Values{"code": {a.code(u.phone)}})
		if p.code != http.StatusForbidden || !strings.Contains(p.body, a.text("reset.no_self_service.text", nil)) {
			t.Fatalf("%s: %d\n%s", u.name, p.code, visible(p.body))
		}
		if got := a.audit(u.name); got[len(got)-1] != "denied" {
			t.Fatalf("%s: audit %q", u.name, got)
		}
		if p = c.post("/reset/password", url.Values{"mode": {"generate"}}); p.code != http.StatusConflict {
			t.Fatalf("%s: a password after the refusal: %d", u.name, p.code)
		}
	}
}

// TestResetVoiceEnrollment: an account enrolled by voice gets its code by
// a call, read digit by digit, and the code works.
func TestResetVoiceEnrollment(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t))
	u := a.enrolled("rwv", "voice")
	c := a.client()
	c.start(u.name)
	ms := queued(t, a)
	if len(ms) != 1 || ms[0].Kind != enroll.KindCall || ms[0].To != u.phone {
		t.Fatalf("queued for a voice enrollment: %+v", ms)
	}
	if p := c.post("/reset/verify", url.Values{"code": {a.code(u.phone)}}); p.code != http.StatusSeeOther {
		t.Fatalf("the spoken code: %d\n%s", p.code, visible(p.body))
	}
}
