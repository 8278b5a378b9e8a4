package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// The safe phone change (/phone/change) against a real directory (Samba
// AD and OpenLDAP), the real service, bbolt store, templates and the
// carrier line type check through twilio-go and the fake Twilio. Mail is
// recorded by enrolltest.Mailer, rendered by the real templates.

const (
	lookupSID   = "AC0123456789abcdef0123456789abcdef"
	lookupToken = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// newLookup is the Lookup client of a fresh fake Twilio.
func newLookup(t *testing.T) (*twilio.Lookup, *twiliotest.Fake) {
	t.Helper()
	fake := twiliotest.NewFake(lookupSID, lookupToken)
	t.Cleanup(fake.Close)
	s, err := twilio.NewSender(gateway.TwilioConfig{AccountSID: lookupSID, AuthToken: lookupToken,
		From: "+15550001111", APIBaseURL: fake.URL}, "https://reset.example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return twilio.NewLookup(s), fake
}

type changeApp struct {
	t       *testing.T
	lab     *ldaplab.Server
	dir     *directory.Client
	store   *bolt.Store
	sealer  *enroll.Sealer
	mailer  *enrolltest.Mailer
	clock   *enrolltest.Clock
	fake    *twiliotest.Fake
	catalog *templates.Catalog
	pages   *templates.Pages
	handler http.Handler
	log     *enrolltest.LogBuffer
	binds   *bindCounter // the sign-in binds that reached the directory
	ips     int
}

func newChangeApp(t *testing.T, lab *ldaplab.Server, opts ...func(*Deps)) *changeApp {
	t.Helper()
	dir, err := directory.New(lab.DirectoryConfig(), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	store, sealer, catalog, pages := testData(t)
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	lookup, fake := newLookup(t)
	a := &changeApp{t: t, lab: lab, dir: dir, store: store, sealer: sealer, mailer: &enrolltest.Mailer{},
		clock: enrolltest.NewClock(time.Now()), fake: fake, catalog: catalog, pages: pages, log: &enrolltest.LogBuffer{},
		binds: &bindCounter{Client: dir}}
	logger := slog.New(slog.NewJSONHandler(a.log, nil))
	svc := enroll.NewService(enroll.ServiceDeps{Store: store, Directory: dir, Authenticator: a.binds, Mailer: a.mailer, Mails: mails,
		Messages: catalog, Sealer: sealer, Outbox: outbox.NewQueue(store, sealer, nil), Log: logger, Now: a.clock.Now,
		LineChecker: lookup},
		enroll.ServiceSettings{Config: enroll.DefaultConfig(), PublicURL: "http://127.0.0.1", DefaultLanguage: "en",
			DefaultRegion: "US", Location: time.UTC})
	d := Deps{Logger: logger, Pages: pages, Enrollment: svc, Store: store, PublicURL: "http://127.0.0.1",
		Language: "en", Now: a.clock.Now, PhoneChange: svc}
	for _, opt := range opts {
		opt(&d)
	}
	a.handler = NewEcho(d)
	return a
}

// enrolled adds a directory user with an active enrollment for phone.
func (a *changeApp) enrolled(prefix, phone string, state enroll.State) (username, dn, password string) {
	a.t.Helper()
	username, password = a.lab.UniqueName(prefix), "Start#Pass1x"
	dn = a.lab.AddUser(a.t, ldaplab.UserSpec{Username: username, Password: password, DisplayName: "User " + username,
		Mail: username + "@example.com"})
	now := a.clock.Now()
	if err := a.store.PutEnrollment(context.Background(), enroll.Enrollment{Username: username, Phone: phone, Language: "en",
		State: state, Method: "sms", CreatedAt: now, UpdatedAt: now, VerifiedAt: now, Mail: username + "@example.com"}); err != nil {
		a.t.Fatal(err)
	}
	return username, dn, password
}

// browser is a new browser, with an address of its own, on the sign-in page.
func (a *changeApp) browser() *browser {
	a.t.Helper()
	a.ips++
	b := newHTTPBrowser(a.t, a.handler, "en")
	b.ip = "198.51.100." + strconv.Itoa(a.ips)
	if p := b.get("/phone/change"); p.code != http.StatusOK || !strings.Contains(p.body, `id="signin"`) {
		a.t.Fatalf("GET /phone/change: %d\n%s", p.code, p.body)
	}
	return b
}

func (a *changeApp) text(key string, args map[string]string) string {
	return a.pages.Text("en", key, args)
}

func (b *browser) signIn(username, password string) answer {
	b.t.Helper()
	return b.post("/phone/change/signin", url.Values{"username": {username}, "password": {password}})
}

// signedIn signs in and fails the test unless the number page follows.
func (b *browser) signedIn(username, password string) answer {
	b.t.Helper()
	p := b.signIn(username, password)
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/phone/change" {
		b.t.Fatalf("sign in as %s: %d %q\n%s", username, p.code, p.header.Get("Location"), errorText(p.body))
	}
	p = b.get("/phone/change")
	if p.code != http.StatusOK || !strings.Contains(p.body, `action="/phone/change/number"`) {
		b.t.Fatalf("after sign-in: %d\n%s", p.code, p.body)
	}
	return p
}

func (a *changeApp) wantAlert(p answer, status int, key string, args map[string]string) {
	a.t.Helper()
	if p.code != status || errorText(p.body) != visibleText(a.text(key, args)) {
		a.t.Fatalf("answer %d %q, want %d %q", p.code, errorText(p.body), status, a.text(key, args))
	}
}

var usernameValueRE = regexp.MustCompile(`id="username"[^>]*value="[^"]*"`)
var requestIDRE = regexp.MustCompile(`<p id="request-id" class="hint">[^<]*</p>`)

// TestPhoneChange: sign-in with the directory password (wrong password and
// unknown user answered alike), the new number checked (taken, same,
// landline refused for SMS), a wrong code, the right code: the enrollment
// takes the number, the old and new numbers get an SMS, the mail address
// an email, audited as "self".
func TestPhoneChange(t *testing.T) {
	forEachLab(t, func(t *testing.T, lab *ldaplab.Server) {
		a := newChangeApp(t, lab)
		const oldPhone, newPhone, otherPhone, landline = "+12015550601", "+12015550602", "+12015550603", "+12015550604"
		username, _, password := a.enrolled("pcuser", oldPhone, enroll.StateActive)
		a.enrolled("pcother", otherPhone, enroll.StateActive)

		// A wrong password and an unknown user: the same page.
		b := a.browser()
		known := b.signIn(username, "Wrong#Pass1x")
		a.wantAlert(known, http.StatusUnprocessableEntity, "change.err.bad_login", nil)
		unknown := b.signIn("nosuchuser77", "Wrong#Pass1x")
		a.wantAlert(unknown, http.StatusUnprocessableEntity, "change.err.bad_login", nil)
		if usernameValueRE.ReplaceAllString(known.body, "") != usernameValueRE.ReplaceAllString(unknown.body, "") {
			t.Fatalf("the pages for a known and an unknown user differ:\n%s\n----\n%s", known.body, unknown.body)
		}

		p := b.signedIn(username, password)
		if shown := visibleText(p.body); !strings.Contains(shown, templates.MaskPhone(oldPhone)) || strings.Contains(shown, oldPhone) {
			t.Fatalf("the number page does not show the masked registered number:\n%s", p.body)
		}
		number := func(phone, method string) answer {
			return b.post("/phone/change/number", url.Values{"phone": {phone}, "method": {method}})
		}
		a.wantAlert(number(otherPhone, "sms"), http.StatusConflict, "err.phone.taken", nil)
		a.wantAlert(number(oldPhone, "sms"), http.StatusUnprocessableEntity, "change.err.same", nil)
		a.fake.SetLookup(landline, twiliotest.LookupAnswer{LineType: "landline"})
		p = number(landline, "sms")
		a.wantAlert(p, http.StatusUnprocessableEntity, "err.phone.no_sms", nil)
		if !regexp.MustCompile(`id="method-voice"[^>]*checked`).MatchString(p.body) {
			t.Fatalf("the voice call is not offered for a landline:\n%s", p.body)
		}
		if n := len(enrolltest.Messages(t, a.store)); n != 0 {
			t.Fatalf("%d messages sent for refused numbers", n)
		}

		p = number("(201) 555-0602", "sms")
		if p.code != http.StatusSeeOther || p.header.Get("Location") != "/phone/change?sent=sms" {
			t.Fatalf("send the code: %d %q\n%s", p.code, p.header.Get("Location"), errorText(p.body))
		}
		code := enrolltest.LastCode(t, a.store, a.sealer)
		if ms := enrolltest.Messages(t, a.store); len(ms) != 1 || ms[0].To != newPhone {
			t.Fatalf("the code went to %+v, want %s", ms, newPhone)
		}
		if p = b.get("/phone/change?sent=sms"); !strings.Contains(p.body, `action="/phone/change/verify"`) {
			t.Fatalf("verify page: %d\n%s", p.code, p.body)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		p = b.post("/phone/change/verify", url.Values{"code": {wrong}})
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(visibleText(p.body), a.text("attempts.other", map[string]string{"count": "4"})) {
			t.Fatalf("wrong code: %d %q", p.code, errorText(p.body))
		}
		if e, _ := a.store.Enrollment(context.Background(), username); e.Phone != oldPhone {
			t.Fatalf("phone changed by a wrong code: %+v", e)
		}

		p = b.post("/phone/change/verify", url.Values{"code": {code}})
		if p.code != http.StatusOK || !strings.Contains(p.body, `id="done"`) {
			t.Fatalf("right code: %d\n%s", p.code, p.body)
		}
		e, err := a.store.Enrollment(context.Background(), username)
		if err != nil || e.Phone != newPhone || e.State != enroll.StateActive {
			t.Fatalf("enrollment after the change: %+v, %v", e, err)
		}
		if owner, err := a.store.EnrollmentByPhone(context.Background(), oldPhone); err == nil {
			t.Fatalf("the old number still belongs to %s", owner.Username)
		}

		// Both numbers told by SMS, the mail address by email.
		var told []string
		for _, m := range enrolltest.Messages(t, a.store) {
			if m.Purpose == "phone_changed" {
				told = append(told, m.To+" "+enrolltest.Body(t, a.sealer, m))
			}
		}
		wantAway := oldPhone + " " + a.catalog.Text("en", "sms.phone.changed_away", map[string]string{"username": username})
		wantTo := newPhone + " " + a.catalog.Text("en", "sms.phone.changed_to", map[string]string{"username": username})
		if len(told) != 2 || told[0] != wantAway || told[1] != wantTo {
			t.Fatalf("phone change SMS = %q", told)
		}
		mails := a.mailer.Sent()
		if len(mails) != 1 || mails[0].To != username+"@example.com" || !strings.Contains(mails[0].Text, templates.MaskPhone(newPhone)) ||
			!strings.Contains(mails[0].Text, templates.MaskPhone(oldPhone)) {
			t.Fatalf("mails = %+v", mails)
		}
		evs, err := a.store.Audit(context.Background(), enroll.AuditFilter{Username: username, Action: "change_phone"})
		if err != nil || len(evs) != 1 || evs[0].Actor != "self" || evs[0].Outcome != "ok" || evs[0].Phone != newPhone ||
			evs[0].SourceIP != b.ip {
			t.Fatalf("change_phone audit = %+v, %v", evs, err)
		}
		logins, _ := a.store.Audit(context.Background(), enroll.AuditFilter{Action: "phone_change_login"})
		for _, ev := range logins {
			if strings.Contains(ev.Detail, "Wrong#Pass1x") || strings.Contains(ev.Detail, password) {
				t.Fatalf("a password in the audit trail: %+v", ev)
			}
		}
		if strings.Contains(a.log.String(), "Wrong#Pass1x") || strings.Contains(a.log.String(), code) {
			t.Fatal("a password or the code in the logs")
		}

		// The sign-in ended with the change.
		if p = b.get("/phone/change"); !strings.Contains(p.body, `id="signin"`) {
			t.Fatalf("after the change: %d\n%s", p.code, p.body)
		}
	})
}

// TestPhoneChangeGuard: 5 failed sign-ins block the account for 10
// minutes, even with the right password; failures from one address never
// block another account; a must-change and a not active account are
// answered clearly.
func TestPhoneChangeGuard(t *testing.T) {
	forEachLab(t, func(t *testing.T, lab *ldaplab.Server) {
		a := newChangeApp(t, lab)
		username, dn, password := a.enrolled("pcguard", "+12015550611", enroll.StateActive)

		for i := range 5 {
			b := a.browser() // a new address each time: the account is what is counted
			a.wantAlert(b.signIn(username, "Wrong#Pass"+strconv.Itoa(i)), http.StatusUnprocessableEntity, "change.err.bad_login", nil)
		}
		b := a.browser()
		p := b.signIn(username, password)
		until := a.clock.Now().Add(10 * time.Minute)
		a.wantAlert(p, http.StatusTooManyRequests, "change.err.blocked", map[string]string{"time": until.In(time.Local).Format("15:04")})
		a.clock.Advance(10*time.Minute + time.Second)
		// The directory's own lockout took the 5 wrong passwords too.
		if u, err := a.dir.FindUser(context.Background(), username); err != nil || a.dir.Unlock(context.Background(), u) != nil {
			t.Fatalf("unlock %s: %v", username, err)
		}
		b.signedIn(username, password)

		// Per address: many unknown users from one address slow it down
		// but never block another account's right password.
		b = a.browser()
		for i := range addressSlowAfter + 2 {
			a.wantAlert(b.signIn("ghost"+strconv.Itoa(i), "x"), http.StatusUnprocessableEntity, "change.err.bad_login", nil)
		}
		b.signedIn(username, password)

		// Must change, locked, not active: clear answers.
		mc, _, _ := a.enrolled("pcmust", "+12015550612", enroll.StateActive)
		u, err := a.dir.FindUser(context.Background(), mc)
		if err != nil {
			t.Fatal(err)
		}
		const mcPassword = "Reset#Pass2y" // set by the helpdesk: to be changed at next logon
		if err := a.dir.SetPassword(context.Background(), u, mcPassword, directory.SetPasswordOptions{MustChange: true}); err != nil {
			t.Fatal(err)
		}
		a.wantAlert(a.browser().signIn(mc, mcPassword), http.StatusUnprocessableEntity, "change.err.must_change", nil)
		// The directory refuses a locked account whatever the password: it
		// is answered as a wrong password (see TestSignInLockedLikeUnknown).
		lab.LockOut(t, dn)
		a.wantAlert(a.browser().signIn(username, password), http.StatusUnprocessableEntity, "change.err.bad_login", nil)
		frozen, _, frozenPassword := a.enrolled("pcfrozen", "+12015550613", enroll.StateFrozen)
		a.wantAlert(a.browser().signIn(frozen, frozenPassword), http.StatusUnprocessableEntity, "change.err.not_active", nil)
	})
}

// TestPhoneChangeCodeLockout: max_attempts wrong codes kill the code and
// refuse codes for lockout_for; the phone is not changed.
func TestPhoneChangeCodeLockout(t *testing.T) {
	a := newChangeApp(t, ldaplab.OpenLDAP(t))
	username, _, password := a.enrolled("pclock", "+12015550621", enroll.StateActive)
	b := a.browser()
	b.signedIn(username, password)
	if p := b.post("/phone/change/number", url.Values{"phone": {"+12015550622"}, "method": {"sms"}}); p.code != http.StatusSeeOther {
		t.Fatalf("send: %d %q", p.code, errorText(p.body))
	}
	code := enrolltest.LastCode(t, a.store, a.sealer)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	var p answer
	for range 5 {
		p = b.post("/phone/change/verify", url.Values{"code": {wrong}})
	}
	if p.code != http.StatusTooManyRequests || !strings.Contains(p.body, a.text("change.locked.next", nil)) {
		t.Fatalf("5th wrong code: %d\n%s", p.code, p.body)
	}
	if p = b.post("/phone/change/verify", url.Values{"code": {code}}); p.code != http.StatusTooManyRequests {
		t.Fatalf("the right code during the lockout: %d %q", p.code, errorText(p.body))
	}
	if e, _ := a.store.Enrollment(context.Background(), username); e.Phone != "+12015550621" {
		t.Fatalf("phone changed: %+v", e)
	}
}

// TestEnrollRefusesLandlineForSMS: on the enrollment page, a number the
// carrier reports as landline or VoIP is refused for SMS with the voice
// call offered, and the voice call goes through; Lookup down accepts the
// number (fail open).
func TestEnrollRefusesLandlineForSMS(t *testing.T) {
	lookup, fake := newLookup(t)
	a := newEnrollApp(t, func(at appTuning) { at.deps.LineChecker = lookup })
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	for _, lineType := range []string{"landline", "fixedVoip", "nonFixedVoip"} {
		t.Run(lineType, func(t *testing.T) {
			fake.SetLookup(phoneJdoe, twiliotest.LookupAnswer{LineType: lineType})
			link := a.activate("jdoe")
			b := a.browser("en")
			b.get(link)
			p := b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}})
			if p.code != http.StatusUnprocessableEntity || errorText(p.body) != visibleText(pages.Text("en", "err.phone.no_sms", nil)) ||
				!regexp.MustCompile(`id="method-voice"[^>]*checked`).MatchString(p.body) {
				t.Fatalf("SMS to a %s: %d %q\n%s", lineType, p.code, errorText(p.body), p.body)
			}
			if p = b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"app"}}); p.code != http.StatusUnprocessableEntity {
				t.Fatalf("app with a %s: %d", lineType, p.code)
			}
			if p = b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"voice"}}); p.code != http.StatusSeeOther {
				t.Fatalf("voice to a %s: %d %q", lineType, p.code, errorText(p.body))
			}
			ms := a.messages()
			if last := ms[len(ms)-1]; last.Kind != enroll.KindCall || last.To != phoneJdoe {
				t.Fatalf("last message %+v, want a call", last)
			}
		})
	}
	// Lookup down: the number is accepted, the code sent by SMS.
	fake.Down(time.Minute)
	link := a.activate("asmith")
	b := a.browser("en")
	b.get(link)
	if p := b.post(link+"/phone", url.Values{"phone": {"+12015550631"}, "method": {"sms"}}); p.code != http.StatusSeeOther {
		t.Fatalf("SMS with Lookup down: %d %q", p.code, errorText(p.body))
	}
	if reqs := fake.LookupRequests(); len(reqs) == 0 || reqs[len(reqs)-1].Form.Get("Fields") != "line_type_intelligence" {
		t.Fatalf("Lookup requests: %+v", reqs)
	}
}

// forEachLab runs fn against Samba AD and OpenLDAP.
func forEachLab(t *testing.T, fn func(t *testing.T, lab *ldaplab.Server)) {
	t.Run("SambaAD", func(t *testing.T) { fn(t, ldaplab.Samba(t)) })
	t.Run("OpenLDAP", func(t *testing.T) { fn(t, ldaplab.OpenLDAP(t)) })
}
