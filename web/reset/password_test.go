package reset

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/templates"
)

var passwordRE = regexp.MustCompile(`<code id="password">([^<]+)</code>`)

// bindOutcome is how the directory answers a bind with password: "ok",
// or ldaplab's outcome ("invalid", "must-change", ...).
func (a *app) bindOutcome(dn, password string) string {
	a.t.Helper()
	err := a.lab.BindErr(dn, password)
	var be *ldaplab.BindError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &be):
		return be.Outcome()
	}
	a.t.Fatalf("bind: %v", err)
	return ""
}

// TestResetGeneratedPassword: on both directories, after the code, a
// generated password is shown once (no-store), set must-change as after
// an SMS reset, and the account unlocked; the phone and the mail are told
// with NOT ME; the old password no longer works.
func TestResetGeneratedPassword(t *testing.T) {
	eachLab(t, func(t *testing.T, a *app) {
		u := a.enrolled("rgp", "sms")
		a.lab.LockOut(t, u.dn)
		c := a.client()
		c.verified(u)
		res := c.post("/reset/password", url.Values{"mode": {"generate"}})
		m := passwordRE.FindStringSubmatch(res.body)
		if res.code != http.StatusOK || m == nil || !strings.Contains(res.body, `id="must-change"`) {
			t.Fatalf("generate: %d\n%s", res.code, visible(res.body))
		}
		pw := templatesUnescape(m[1])
		if a.lab.Locked(t, u.dn) {
			t.Fatal("still locked")
		}
		if got := a.bindOutcome(u.dn, pw); got != "must-change" && !(a.lab.Dialect != ldaplab.DialectAD && got == "ok") {
			t.Fatalf("bind with the new password: %s", got)
		}
		if got := a.bindOutcome(u.dn, u.password); got != "invalid" {
			t.Fatalf("bind with the old password: %s", got)
		}
		if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 || !strings.Contains(ms[0], "NOT ME") || strings.Contains(ms[0], pw) {
			t.Fatalf("notices: %q", ms)
		}
		mails := a.mailer.Sent()
		if len(mails) != 1 || mails[0].Kind != templates.MailWebReset || !strings.Contains(mails[0].Text, "NOT ME") || strings.Contains(mails[0].Text, pw) {
			t.Fatalf("mails: %+v", mails)
		}
		if got := a.audit(u.name); !slices.Equal(got, []string{"code_sent", "code_ok", "ok"}) {
			t.Fatalf("audit %q", got)
		}
		if strings.Contains(a.log.String(), pw) {
			t.Fatal("the password is in the log")
		}
		// The reset is used up: the same browser is at the start again.
		if res = c.post("/reset/password", url.Values{"mode": {"generate"}}); res.code != http.StatusConflict {
			t.Fatalf("generate again: %d\n%s", res.code, visible(res.body))
		}
	})
}

func templatesUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&#43;", "+").Replace(s)
}

// TestResetChosenPassword: a password of the user's own; the banned list,
// the policy's minimum length (checked before the directory is asked) and
// the directory's own refusals (OpenLDAP's history: the current password)
// are explained in words and change nothing; a good one is set, not
// must-change, and unlocks the account; a double tap sets it once.
func TestResetChosenPassword(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lab     func(testing.TB) *ldaplab.Server
		refused map[string]string // password -> the page text key
	}{
		{"samba", ldaplab.Samba, map[string]string{"Ab1!": "reset.err.policy.short_min"}},
		{"openldap", ldaplab.OpenLDAP, map[string]string{"Ab1!x": "reset.err.policy.short_min", "Start#Pass1x": "reset.err.policy.history"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, tc.lab(t))
			u := a.enrolled("rcp", "sms")
			a.lab.LockOut(t, u.dn)
			c := a.client()
			c.verified(u)
			choose := func(pw, confirm string) answer {
				return c.post("/reset/password", url.Values{"mode": {"choose"}, "password": {pw}, "confirm": {confirm}})
			}
			for pw, key := range map[string]string{
				"":                              "reset.err.password_empty",
				"Password2024!":                 "reset.err.banned.common",
				"P@ssw0rd":                      "reset.err.banned.common",
				"My" + u.name + "#Horse9":       "reset.err.banned.name",
				"Acmecorp-Blue-Horse-9":         "reset.err.banned.company",
				"Correct-Horse-Battery-Staple1": "reset.err.mismatch",
			} {
				confirm := pw
				if key == "reset.err.mismatch" {
					confirm = pw + "x"
				}
				res := choose(pw, confirm)
				if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, a.text(key, nil)) {
					t.Fatalf("%q: %d, want %s\n%s", pw, res.code, key, visible(res.body))
				}
			}
			for pw, key := range tc.refused {
				res := choose(pw, pw)
				msg := a.text(key, nil)
				if key == "reset.err.policy.short_min" {
					msg = a.text(key, map[string]string{"min": map[string]string{"samba": "7", "openldap": "8"}[tc.name]})
				}
				if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, msg) {
					t.Fatalf("%q: %d, want %s\n%s", pw, res.code, key, visible(res.body))
				}
			}
			if !a.lab.Locked(t, u.dn) || a.bindOutcome(u.dn, u.password) != "locked" {
				t.Fatal("a refused password changed the account")
			}
			if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 0 {
				t.Fatalf("told of a refused password: %q", ms)
			}
			good := "Violet-Harbour-Lantern-42"
			token := c.token()
			var wg sync.WaitGroup
			answers := make([]answer, 2)
			for i := range answers {
				wg.Go(func() {
					answers[i] = c.do(http.MethodPost, "/reset/password", url.Values{"csrf_token": {token}, "mode": {"choose"},
						"password": {good}, "confirm": {good}})
				})
			}
			wg.Wait()
			for i, res := range answers {
				if res.code != http.StatusOK || !strings.Contains(res.body, a.text("reset.done.chosen", map[string]string{"username": u.name})) {
					t.Fatalf("tap %d: %d\n%s", i+1, res.code, visible(res.body))
				}
			}
			if a.lab.Locked(t, u.dn) {
				t.Fatal("still locked")
			}
			if got := a.bindOutcome(u.dn, good); got != "ok" {
				t.Fatalf("bind with the chosen password: %s (a chosen password is not must-change)", got)
			}
			if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 {
				t.Fatalf("notices after a double tap: %q", ms)
			}
			got := a.audit(u.name)
			if slices.Index(got, "ok") != len(got)-1 || !slices.Contains(got, "banned") || !slices.Contains(got, "policy_rejected") {
				t.Fatalf("audit %q", got)
			}
		})
	}
}

// TestExplainPolicy: the refusals of Samba, AD and OpenLDAP ppolicy in
// words.
func TestExplainPolicy(t *testing.T) {
	for reason, want := range map[string]string{
		"the password is too short. It should be equal or longer than 7 characters!": "reset.err.policy.short_min",
		"Password is too short for policy":                                           "reset.err.policy.short",
		"the password was already used (in history)!":                                "reset.err.policy.history",
		"Password is in history of old passwords":                                    "reset.err.policy.history",
		"the password does not meet the complexity criteria!":                        "reset.err.policy.complexity",
		"Password fails quality checking policy":                                     "reset.err.policy.quality",
		"the password is too young to change!":                                       "reset.err.policy.age",
		"something else":                                                             "reset.err.policy.other",
	} {
		if got := explain(reason); got.Key != want {
			t.Errorf("explain(%q) = %s, want %s", reason, got.Key, want)
		}
	}
	if got := CompanyNames("DC=corp,DC=acmecorp,DC=com", "IT <it@acme-mail.example>"); !slices.Equal(got, []string{"corp", "acmecorp", "acme-mail"}) {
		t.Errorf("CompanyNames = %q", got)
	}
}

// TestResetGeneratedDoubleTap: two taps on "Give me a new password" both
// answer with a password, one after the other (a lease): the browser
// shows the second, which is the one in force. The owner is told once.
func TestResetGeneratedDoubleTap(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t))
	u := a.enrolled("rgd", "sms")
	c := a.client()
	c.verified(u)
	token := c.token()
	site, _ := url.Parse(a.url)
	held := c.http.Jar.Cookies(site) // the reset's cookie, as a copy of the browser would keep it
	var wg sync.WaitGroup
	answers := make([]answer, 2)
	for i := range answers {
		wg.Go(func() {
			answers[i] = c.do(http.MethodPost, "/reset/password", url.Values{"csrf_token": {token}, "mode": {"generate"}})
		})
	}
	wg.Wait()
	in := 0
	for i, res := range answers {
		m := passwordRE.FindStringSubmatch(res.body)
		if res.code != http.StatusOK || m == nil {
			t.Fatalf("tap %d: %d\n%s", i+1, res.code, visible(res.body))
		}
		if got := a.bindOutcome(u.dn, templatesUnescape(m[1])); got != "invalid" {
			in++
		}
	}
	if in != 1 {
		t.Fatalf("%d of the two passwords sign in, want the last one set", in)
	}
	if ms := a.messages(u.phone, "reset_web_notice"); len(ms) != 1 {
		t.Fatalf("notices: %q", ms)
	}
	// A third post of the same cookie, later than a double tap, finds
	// the reset used up.
	a.clock.Advance(retapWindow + time.Second)
	c.http.Jar.SetCookies(site, held)
	if res := c.do(http.MethodPost, "/reset/password", url.Values{"csrf_token": {token}, "mode": {"generate"}}); res.code != http.StatusConflict ||
		!strings.Contains(res.body, a.text("reset.err.used", nil)) {
		t.Fatalf("a later post of the same reset: %d\n%s", res.code, visible(res.body))
	}
}

// TestResetGeneratedOnly: with reset.web.choose_password false the choice
// offers no password of one's own, and a post of one is refused.
func TestResetGeneratedOnly(t *testing.T) {
	a := newApp(t, ldaplab.OpenLDAP(t), func(d *Deps) { d.ChoosePassword = false })
	u := a.enrolled("rgo", "sms")
	c := a.client()
	c.verified(u)
	if p := c.get("/reset"); strings.Contains(p.body, `id="choose"`) || !strings.Contains(p.body, `id="generate"`) {
		t.Fatalf("choice page:\n%s", visible(p.body))
	}
	res := c.post("/reset/password", url.Values{"mode": {"choose"}, "password": {"Violet-Harbour-Lantern-42"}, "confirm": {"Violet-Harbour-Lantern-42"}})
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, a.text("reset.err.mode", nil)) {
		t.Fatalf("a chosen password: %d\n%s", res.code, visible(res.body))
	}
	if got := a.bindOutcome(u.dn, u.password); got != "ok" {
		t.Fatalf("the old password: %s", got)
	}
}

// TestResetPolicyShown: the choice page shows the directory's rules before
// the user types, and a chosen password shorter than the minimum is
// refused in words without asking the directory: on OpenLDAP the ppolicy
// entry's pwdMinLength and pwdInHistory; on Samba the domain's policy,
// then a fine-grained policy (PSO) that applies to the user.
func TestResetPolicyShown(t *testing.T) {
	t.Run("openldap", func(t *testing.T) {
		a := newApp(t, ldaplab.OpenLDAP(t))
		u := a.enrolled("rpo", "sms")
		c := a.client()
		c.verified(u)
		page := c.get("/reset").body
		for _, want := range []string{a.text("reset.policy.length", map[string]string{"min": "8"}),
			a.text("reset.policy.history", map[string]string{"count": "5"})} {
			if !strings.Contains(page, want) {
				t.Fatalf("no %q on the choice page:\n%s", want, visible(page))
			}
		}
		a.wantTooShort(c, u, "Zq7#kWp", "8")
	})
	t.Run("samba", func(t *testing.T) {
		a := newApp(t, ldaplab.Samba(t))
		u := a.enrolled("rps", "sms")
		c := a.client()
		c.verified(u)
		page := c.get("/reset").body
		if !strings.Contains(page, `id="policy-length"`) || !strings.Contains(page, a.text("reset.policy.complex", nil)) {
			t.Fatalf("no domain policy on the choice page:\n%s", visible(page))
		}
		// A PSO of 14 characters: the service account sees that one
		// applies (msDS-ResultantPSO) but, as on AD by default, may not read
		// it: the page says the account has rules of its own instead of the
		// domain's 7, and the directory's refusal is worded.
		pso := a.addPSO(t, u.dn, 14)
		t.Cleanup(func() { a.deletePSO(t, pso) })
		page = c.get("/reset").body
		if !strings.Contains(page, `id="policy-own"`) || strings.Contains(page, `id="policy-length"`) {
			t.Fatalf("the PSO is not on the choice page:\n%s", visible(page))
		}
		a.wantTooShort(c, u, "Violet-Harb9", "14")
	})
}

// wantTooShort chooses pw and wants it refused as shorter than min, with
// the old password still in force.
func (a *app) wantTooShort(c *client, u user, pw, min string) {
	a.t.Helper()
	res := c.post("/reset/password", url.Values{"mode": {"choose"}, "password": {pw}, "confirm": {pw}})
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, a.text("reset.err.policy.short_min", map[string]string{"min": min})) {
		a.t.Fatalf("%q, under a minimum of %s: %d\n%s", pw, min, res.code, visible(res.body))
	}
	if got := a.bindOutcome(u.dn, u.password); got != "ok" {
		a.t.Fatalf("old password after the refusal: %s", got)
	}
}
