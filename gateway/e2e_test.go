package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ldaplab.StopAll()
	ldaplab.ReportSkipped(code)
	os.Exit(code)
}

const (
	authToken = "e2e-test-auth-token-0123456789ab"
	publicURL = "https://reset.example.test"
)

// harness is the product's real SMS path: Echo → webhook → bbolt store →
// LDAP client → a real directory server.
type harness struct {
	t       *testing.T
	lab     *ldaplab.Server
	store   *bolt.Store
	dbPath  string
	srv     *httptest.Server
	catalog *templates.Catalog
	sealer  *enroll.Sealer
	sidSeq  atomic.Int64
	seen    sync.Map // phone → the ID of the newest password message texted() returned
}

func newHarness(t *testing.T, lab *ldaplab.Server, mutate func(*directory.Config, *gateway.Settings)) *harness {
	t.Helper()
	return newHarnessOpt(t, lab, directory.Options{}, mutate)
}

// newHarnessOpt is newHarness with the directory client's options.
func newHarnessOpt(t *testing.T, lab *ldaplab.Server, opt directory.Options, mutate func(*directory.Config, *gateway.Settings)) *harness {
	t.Helper()
	dcfg := lab.DirectoryConfig()
	dcfg.Timeout = 3 * time.Second
	sealer := testkit.Sealer(t)
	set := gateway.Settings{PublicURL: publicURL, AuthToken: authToken, DefaultLanguage: "en", MaxResetsPerHour: 3,
		Password: directory.SetPasswordOptions{MustChange: true, Unlock: true}}
	if mutate != nil {
		mutate(&dcfg, &set)
	}
	dir, err := directory.New(dcfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	dbPath := filepath.Join(t.TempDir(), "replyreset.db")
	store, err := bolt.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gen, err := password.NewGenerator(password.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	set.Outbox = outbox.NewQueue(store, sealer, nil)
	wh := gateway.NewWebhook(set, gateway.WebhookDeps{Store: store, Directory: dir, Generator: gen, Catalog: catalog})
	srv := httptest.NewServer(web.NewEcho(web.Deps{SMSWebhook: wh, Directory: dir}))
	t.Cleanup(srv.Close)
	return &harness{t: t, lab: lab, store: store, dbPath: dbPath, srv: srv, catalog: catalog, sealer: sealer}
}

// user creates a directory user and an active enrollment for phone.
func (h *harness) user(phone, lang string) (username, dn, password string) {
	h.t.Helper()
	username = h.lab.UniqueName("e2e")
	password = "Start#Pass1x"
	dn = h.lab.AddUser(h.t, ldaplab.UserSpec{Username: username, Password: password, DisplayName: "E2E " + username,
		Mail: username + "@example.test"})
	now := time.Now()
	err := h.store.PutEnrollment(context.Background(), enroll.Enrollment{Username: username, Phone: phone, Language: lang,
		State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now})
	if err != nil {
		h.t.Fatal(err)
	}
	return username, dn, password
}

func (h *harness) newSID() string {
	return fmt.Sprintf("SM%032x", time.Now().UnixNano()+h.sidSeq.Add(1))
}

type reply struct {
	status int
	body   string   // raw response
	texts  []string // <Message> bodies
}

// post sends an inbound SMS form; signature "" means "sign correctly",
// "-" means "no header", anything else is sent as is.
func (h *harness) post(form url.Values, signature string) reply {
	h.t.Helper()
	switch signature {
	case "":
		signature = twiliotest.Sign(authToken, publicURL+"/sms/twilio", form)
	case "-":
		signature = ""
	}
	status, texts, raw, err := twiliotest.PostSMSSigned(context.Background(), http.DefaultClient, h.srv.URL+"/sms/twilio", signature, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return reply{status: status, body: raw, texts: texts}
}

func (h *harness) sms(from, body string) (reply, url.Values) {
	form := url.Values{"MessageSid": {h.newSID()}, "AccountSid": {"AC" + strings.Repeat("0", 32)},
		"From": {from}, "To": {"+12015550000"}, "Body": {body}, "NumSegments": {"1"}}
	return h.post(form, ""), form
}

func (h *harness) text(key string, args map[string]string) string {
	return h.catalog.Text("en", key, args)
}

func oneText(t *testing.T, r reply) string {
	t.Helper()
	if r.status != http.StatusOK || len(r.texts) != 1 {
		t.Fatalf("want one message, got status %d: %s", r.status, r.body)
	}
	return r.texts[0]
}

// texted checks that r, the answer to a RESET from phone, is an empty
// TwiML reply that does not hold the new password, and returns that
// password from the message the webhook queued in the outbox for phone
// (newer than any texted returned before). No outbox worker runs here: the
// message stays queued.
func (h *harness) texted(r reply, phone string) string {
	h.t.Helper()
	_, pw := h.textedMessage(r, phone)
	return pw
}

// textedMessage is texted, with the text of the message.
func (h *harness) textedMessage(r reply, phone string) (text, password string) {
	h.t.Helper()
	if r.status != http.StatusOK || len(r.texts) != 0 {
		h.t.Fatalf("RESET answered status %d with %d messages, want 200 and none: %s", r.status, len(r.texts), r.body)
	}
	msgs, err := h.store.Messages(context.Background(), enroll.OutboxFilter{To: phone, Limit: 20})
	if err != nil {
		h.t.Fatal(err)
	}
	last, _ := h.seen.Load(phone)
	for _, m := range msgs { // newest first
		if m.Purpose != "password" {
			continue
		}
		if last != nil && m.ID <= last.(uint64) {
			break
		}
		if m.Status != enroll.StatusQueued || m.Kind != enroll.KindSMS || m.Priority != enroll.PriorityHigh {
			h.t.Fatalf("the password message is %+v, want a queued high-priority SMS", m)
		}
		body, err := h.sealer.Open(m.Sealed, "outbox")
		if err != nil {
			h.t.Fatal(err)
		}
		h.seen.Store(phone, m.ID)
		pw := passwordFrom(h.t, string(body))
		if strings.Contains(r.body, pw) {
			h.t.Fatalf("the webhook's answer holds the password: %s", r.body)
		}
		return string(body), pw
	}
	h.t.Fatalf("no new password message to %s in the outbox: %+v", phone, msgs)
	return "", ""
}

// passwordFrom takes the password from a reset message: the line alone
// after the first line.
func passwordFrom(t *testing.T, text string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	if len(lines) < 3 {
		t.Fatalf("reset reply has no password line: %q", text)
	}
	return lines[1]
}

func (h *harness) audit(username string) []enroll.Event {
	evs, err := h.store.Audit(context.Background(), enroll.AuditFilter{Username: username})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func (h *harness) expectBind(dn, password string, want string) {
	h.t.Helper()
	err := h.lab.BindErr(dn, password)
	got := "ok"
	if be, ok := err.(*ldaplab.BindError); ok {
		if got = be.Outcome(); got == "other" {
			got = "invalid"
		}
	} else if err != nil {
		h.t.Fatalf("bind: %v", err)
	}
	if got != want {
		h.t.Fatalf("bind as %s: %s (%v), want %s", dn, got, err, want)
	}
}

func forEachDirectory(t *testing.T, fn func(t *testing.T, lab *ldaplab.Server)) {
	t.Run("SambaAD", func(t *testing.T) { fn(t, ldaplab.Samba(t)) })
	t.Run("OpenLDAP", func(t *testing.T) { fn(t, ldaplab.OpenLDAP(t)) })
}

func TestResetBySMS(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		h := newHarness(t, lab, nil)
		const phone = "+12015550101"
		username, dn, oldPassword := h.user(phone, "en")
		lab.LockOut(t, dn)

		start := time.Now()
		r, _ := h.sms(phone, "  Reset! ")
		took := time.Since(start)
		msg, pw := h.textedMessage(r, phone)
		if !strings.Contains(msg, username) || !strings.Contains(msg, "change it at next logon") {
			t.Errorf("reset message = %q", msg)
		}
		// The password in the message works (and must be changed), the old one
		// does not, and the lockout is gone.
		h.expectBind(dn, pw, "must-change")
		h.expectBind(dn, oldPassword, "invalid")
		if err := password.MeetsComplexity(pw, directory.User{Username: username, DisplayName: "E2E " + username}); err != nil {
			t.Errorf("texted password: %v", err)
		}
		t.Logf("RESET round trip %v", took.Round(time.Millisecond))

		evs := h.audit(username)
		if len(evs) != 1 || evs[0].Action != "reset" || evs[0].Outcome != "ok" || evs[0].Phone != phone {
			t.Fatalf("audit = %+v, want one reset ok", evs)
		}
		h.assertNotStored(pw)
	})
}

// assertNotStored fails if secret appears anywhere in the data file.
func (h *harness) assertNotStored(secret string) {
	h.t.Helper()
	raw, err := os.ReadFile(h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) {
		h.t.Fatalf("the data file holds a secret in clear")
	}
}

func TestWebhookRefusesForgedUnsignedAndReplayed(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		h := newHarness(t, lab, nil)
		const phone = "+12015550102"
		username, dn, oldPassword := h.user(phone, "en")

		form := url.Values{"MessageSid": {h.newSID()}, "From": {phone}, "To": {"+12015550000"}, "Body": {"RESET"}}
		good := twiliotest.Sign(authToken, publicURL+"/sms/twilio", form)
		forged := twiliotest.Sign("not-the-token", publicURL+"/sms/twilio", form)
		wrongURL := twiliotest.Sign(authToken, "https://evil.example.test/sms/twilio", form)
		for name, sig := range map[string]string{"unsigned": "-", "forged": forged, "wrong url": wrongURL, "garbage": "!!!"} {
			if r := h.post(form, sig); r.status != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", name, r.status)
			}
		}
		// A body changed after signing is refused too.
		tampered := url.Values{}
		for k, v := range form {
			tampered[k] = v
		}
		tampered.Set("From", "+12015550199")
		if r := h.post(tampered, good); r.status != http.StatusForbidden {
			t.Errorf("tampered: status %d, want 403", r.status)
		}
		if evs := h.audit(""); len(evs) != 0 {
			t.Fatalf("refused requests left audit events: %+v", evs)
		}
		h.expectBind(dn, oldPassword, "ok")

		// The genuine request works once; its replay changes nothing.
		// The answer holds no password (texted), and the password is the
		// one in force in the directory.
		first := h.post(form, good)
		pw := h.texted(first, phone)
		replay := h.post(form, good)
		if replay.status != http.StatusOK || len(replay.texts) != 0 || strings.Contains(replay.body, pw) {
			t.Fatalf("replay: status %d, body %s; want 200 and no message", replay.status, replay.body)
		}
		h.expectBind(dn, pw, "must-change")
		// The replay queued nothing: one message, the first one's.
		if msgs, err := h.store.Messages(t.Context(), enroll.OutboxFilter{To: phone}); err != nil || len(msgs) != 1 {
			t.Fatalf("outbox after the replay: %d messages (%v), want the one password", len(msgs), err)
		}
		if evs := h.audit(username); len(evs) != 1 {
			t.Fatalf("after a replay, audit has %d events, want 1", len(evs))
		}
	})
}

func TestResetRateLimit(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), func(_ *directory.Config, s *gateway.Settings) { s.MaxResetsPerHour = 2 })
	const phone = "+12015550103"
	username, dn, _ := h.user(phone, "en")
	var last string
	for i := 0; i < 2; i++ {
		r, _ := h.sms(phone, "RESET")
		last = h.texted(r, phone)
	}
	r, _ := h.sms(phone, "reset")
	if got, want := oneText(t, r), h.text("sms.reset.rate_limited", map[string]string{"minutes": "60"}); got != want {
		t.Fatalf("third reset: %q, want %q", got, want)
	}
	h.expectBind(dn, last, "must-change") // unchanged by the refused one
	evs := h.audit(username)
	if n := len(evs); n != 3 || evs[2].Outcome != "rate_limited" {
		t.Fatalf("audit = %+v", evs)
	}
}

func TestGenericReplyRevealsNothing(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), nil)
	const enrolled, stranger = "+12015550104", "+12015550198"
	h.user(enrolled, "en")
	generic := h.text("sms.generic", nil)
	for _, c := range []struct{ from, body string }{
		{stranger, "RESET"}, {stranger, "unlock"}, {stranger, "STATUS"}, {stranger, "hello"},
		{enrolled, "hello"}, {enrolled, "reset my password please"}, {stranger, "RESET 123456"},
		{"ACME", "RESET"}, {enrolled, "\xff\xfe"}, {enrolled, strings.Repeat("🙂", 2000)},
	} {
		r, _ := h.sms(c.from, c.body)
		if got := oneText(t, r); got != generic {
			t.Errorf("%s %q: reply %q, want the generic reply", c.from, c.body, got)
		}
	}
	// HELP is the same for everyone.
	a, _ := h.sms(enrolled, "help")
	b, _ := h.sms(stranger, "HELP")
	if oneText(t, a) != oneText(t, b) {
		t.Errorf("HELP differs between enrolled and unknown senders")
	}
}

func TestStopStartStatusUnlock(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		h := newHarness(t, lab, nil)
		const phone = "+12015550105"
		username, dn, password := h.user(phone, "fr")

		r, _ := h.sms(phone, "STATUT")
		if got := oneText(t, r); !strings.Contains(got, username) || !strings.Contains(got, h.catalog.Text("fr", "word.no", nil)) {
			t.Errorf("STATUT reply = %q", got)
		}
		lab.LockOut(t, dn)
		r, _ = h.sms(phone, "débloquer")
		if got, want := oneText(t, r), h.catalog.Text("fr", "sms.unlock.ok", map[string]string{"username": username}); got != want {
			t.Fatalf("DÉBLOQUER reply = %q, want %q", got, want)
		}
		h.expectBind(dn, password, "ok")
		r, _ = h.sms(phone, "UNLOCK")
		if got := oneText(t, r); got != h.catalog.Text("fr", "sms.unlock.not_locked", map[string]string{"username": username}) {
			t.Errorf("UNLOCK when not locked = %q", got)
		}

		r, _ = h.sms(phone, "STOP")
		if got := oneText(t, r); got != h.catalog.Text("fr", "sms.stop", nil) {
			t.Errorf("STOP reply = %q", got)
		}
		for _, body := range []string{"RESET", "HELP", "STATUS", "whatever"} {
			if r, _ := h.sms(phone, body); r.status != http.StatusOK || len(r.texts) != 0 {
				t.Errorf("after STOP, %q got %d %q; want no message", body, r.status, r.body)
			}
		}
		h.expectBind(dn, password, "ok") // the RESET after STOP did nothing
		r, _ = h.sms(phone, "start")
		if got := oneText(t, r); got != h.catalog.Text("fr", "sms.start", nil) {
			t.Errorf("START reply = %q", got)
		}
		r, _ = h.sms(phone, "RESET")
		h.texted(r, phone)
	})
}

// TestDirectoryDown: with the directory unreachable, every command that
// needs it (RESET, UNLOCK, STATUS, in any spelling) gets the same answer,
// in the user's language: try again in a few minutes, nothing changed. No
// password message is queued and the password stays.
func TestDirectoryDown(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	h := newHarness(t, lab, func(c *directory.Config, s *gateway.Settings) {
		c.URLs = []string{"ldaps://127.0.0.1:1"} // nothing listens there
		s.MaxResetsPerHour = 100
	})
	for _, lang := range []string{"en", "fr"} {
		phone := map[string]string{"en": "+12015550106", "fr": "+12015550116"}[lang]
		username, dn, password := h.user(phone, lang)
		want := h.catalog.Text(lang, "sms.try_later", nil)
		bodies := []string{"RESET", "unlock", "STATUS", "Réinitialiser", "débloquer", "statut"}
		for _, body := range bodies {
			start := time.Now()
			r, _ := h.sms(phone, body)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("%s %q: reply took %v with the directory down", lang, body, took)
			}
			if got := oneText(t, r); got != want {
				t.Errorf("%s %q: reply = %q, want %q", lang, body, got, want)
			}
		}
		evs := h.audit(username)
		if len(evs) != len(bodies) {
			t.Fatalf("%s: audit = %+v, want one event per command", lang, evs)
		}
		for _, ev := range evs {
			if ev.Outcome != "directory_unavailable" {
				t.Errorf("%s: audit %+v, want directory_unavailable", lang, ev)
			}
		}
		if msgs, err := h.store.Messages(t.Context(), enroll.OutboxFilter{To: phone}); err != nil || len(msgs) != 0 {
			t.Errorf("%s: outbox %+v, %v; want nothing queued", lang, msgs, err)
		}
		h.expectBind(dn, password, "ok")
	}
}

func TestNotMeFreezes(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), nil)
	const phone = "+12015550107"
	username, dn, password := h.user(phone, "en")
	r, _ := h.sms(phone, "not me")
	if got := oneText(t, r); got != h.text("sms.notme.ok", nil) {
		t.Fatalf("NOT ME reply = %q", got)
	}
	e, err := h.store.Enrollment(context.Background(), username)
	if err != nil || e.State != enroll.StateFrozen {
		t.Fatalf("enrollment after NOT ME = %+v, %v", e, err)
	}
	r, _ = h.sms(phone, "RESET")
	if got := oneText(t, r); got != h.text("sms.frozen", nil) {
		t.Fatalf("RESET when frozen = %q", got)
	}
	h.expectBind(dn, password, "ok")
}

func TestWebhookBadRequests(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), nil)
	// Signed but incomplete: no MessageSid.
	form := url.Values{"From": {"+12015550108"}, "Body": {"RESET"}}
	if r := h.post(form, ""); r.status != http.StatusBadRequest {
		t.Errorf("no MessageSid: %d, want 400", r.status)
	}
	// Oversized body.
	big := url.Values{"MessageSid": {h.newSID()}, "From": {"+12015550108"}, "Body": {strings.Repeat("x", 300<<10)}}
	if r := h.post(big, ""); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d, want 413", r.status)
	}
	resp, err := http.Get(h.srv.URL + "/sms/twilio")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /sms/twilio: %d", resp.StatusCode)
	}
}

// TestResetPolicyRefusalIsBounded gives one OpenLDAP user a policy no
// generated password can meet: the gateway tries a bounded number of
// passwords, then says so, and nothing changes.
func TestResetPolicyRefusalIsBounded(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	h := newHarness(t, lab, nil)
	const phone = "+12015550109"
	username, dn, password := h.user(phone, "en")

	admin := lab.AdminConn(t)
	policyDN := "cn=strict-" + username + ",ou=policies," + lab.BaseDN
	add := ldap.NewAddRequest(policyDN, nil)
	add.Attribute("objectClass", []string{"device", "pwdPolicy"})
	add.Attribute("cn", []string{"strict-" + username})
	add.Attribute("pwdAttribute", []string{"userPassword"})
	add.Attribute("pwdMinLength", []string{"40"})
	add.Attribute("pwdCheckQuality", []string{"2"})
	if err := admin.Add(add); err != nil {
		t.Fatalf("add strict policy: %v", err)
	}
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("pwdPolicySubentry", []string{policyDN})
	if err := admin.Modify(m); err != nil {
		t.Fatalf("assign strict policy: %v", err)
	}

	r, _ := h.sms(phone, "RESET")
	if got := oneText(t, r); got != h.text("sms.reset.failed", nil) {
		t.Fatalf("reply = %q, want the reset-failed text", got)
	}
	evs := h.audit(username)
	if len(evs) != 1 || evs[0].Outcome != "policy_rejected" || !strings.Contains(evs[0].Detail, "3 generated passwords refused") {
		t.Fatalf("audit = %+v", evs)
	}
	h.expectBind(dn, password, "ok")
	// The held message of the refused passwords was canceled, its body
	// wiped: nothing is sent, nothing of a password is kept.
	msgs, err := h.store.Messages(t.Context(), enroll.OutboxFilter{To: phone})
	if err != nil || len(msgs) != 1 || msgs[0].Status != enroll.StatusCanceled || msgs[0].Purpose != "password" {
		t.Fatalf("outbox %+v, %v; want one canceled password message", msgs, err)
	}
	if body, err := h.sealer.Open(msgs[0].Sealed, "outbox"); err != nil || len(body) != 0 {
		t.Errorf("the canceled message's body is %q (%v), want wiped", body, err)
	}
}

// TestReplyWithinBudget: a directory that accepts connections and never
// answers cannot hold the reply past the budget Twilio allows.
func TestReplyWithinBudget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	h := newHarness(t, ldaplab.OpenLDAP(t), func(c *directory.Config, s *gateway.Settings) {
		c.URLs = []string{"ldaps://" + ln.Addr().String()}
		c.Timeout = 30 * time.Second // longer than the budget on purpose
		s.ReplyBudget = 2 * time.Second
	})
	const phone = "+12015550110"
	h.user(phone, "en")
	start := time.Now()
	r, _ := h.sms(phone, "RESET")
	took := time.Since(start)
	if got := oneText(t, r); got != h.text("sms.try_later", nil) {
		t.Fatalf("reply = %q, want try-later", got)
	}
	if took > 10*time.Second {
		t.Fatalf("reply took %v with a 2 s budget", took)
	}
	t.Logf("reply with a silent directory after %v", took.Round(time.Millisecond))
}

// TestResetRequiresAppCode: with reset.require_app_code, RESET must carry
// the current code of the enrolled authenticator app (computed here by
// Debian's oathtool, independent of the code under test), once.
func TestResetRequiresAppCode(t *testing.T) {
	sealer, err := enroll.NewSealer(bytes.Repeat([]byte{7}, 64))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, ldaplab.OpenLDAP(t), func(_ *directory.Config, s *gateway.Settings) {
		s.RequireAppCode, s.Secrets = true, sealer
	})
	const phone, noApp = "+12015550111", "+12015550112"
	username, dn, password := h.user(phone, "en")
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	err = h.store.UpdateEnrollment(context.Background(), username, func(e *enroll.Enrollment) error {
		e.TOTPSealed, e.Method = sealer.Seal([]byte(secret), "totp:"+e.Username), "app"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(body, key string) {
		t.Helper()
		r, _ := h.sms(phone, body)
		if got := oneText(t, r); got != h.text(key, nil) {
			t.Fatalf("%q: reply %q, want %s", body, got, key)
		}
	}
	expect("RESET", "sms.reset.need_code")
	code := oathtool(t, secret)
	wrong := fmt.Sprintf("%06d", (atoi(t, code)+500000)%1000000)
	expect("RESET "+wrong, "sms.reset.bad_code")
	h.expectBind(dn, password, "ok")

	r, _ := h.sms(phone, "reset "+code[:3]+" "+code[3:])
	pw := h.texted(r, phone)
	h.expectBind(dn, pw, "must-change")
	expect("RESET "+code, "sms.reset.bad_code") // the same code twice
	h.expectBind(dn, pw, "must-change")

	other, _, _ := h.user(noApp, "en")
	r, _ = h.sms(noApp, "RESET 123456")
	if got := oneText(t, r); got != h.text("sms.reset.no_app", nil) {
		t.Fatalf("user without an app: %q", got)
	}
	for _, ev := range h.audit(other) {
		if ev.Outcome != "no_app" {
			t.Errorf("audit %+v", ev)
		}
	}
	h.assertNotStored(secret)
}

func oathtool(t *testing.T, secret string) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "-b", secret).Output()
	if err != nil {
		t.Fatalf("oathtool (apt-get install oathtool): %v", err)
	}
	return strings.TrimSpace(string(out))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestResetMailsTheUser: after an SMS reset the user's mailbox is told,
// over real SMTP, without the password.
func TestResetMailsTheUser(t *testing.T) {
	smtp := smtptest.New(t, smtptest.Options{})
	m, err := mailer.New(mailer.Config{Host: "127.0.0.1", Port: smtp.Port, From: "IT <it@example.test>", TLS: mailer.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, ldaplab.OpenLDAP(t), func(_ *directory.Config, s *gateway.Settings) {
		s.ResetMail = notify.NewUserNotices(m, mails, time.UTC)
	})
	const phone = "+12015550113"
	username, _, _ := h.user(phone, "fr")
	r, _ := h.sms(phone, "RESET")
	pw := h.texted(r, phone)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := smtp.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("no reset notice mail: %v", err)
	}
	got := msgs[0]
	if got.Subject != "Votre mot de passe a été réinitialisé par SMS" || !strings.Contains(got.Text, username) ||
		strings.Contains(got.Text+got.HTML, pw) || strings.Contains(got.Text, phone) {
		t.Fatalf("notice mail: subject %q\n%s", got.Subject, got.Text)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, _ := h.store.Audit(context.Background(), enroll.AuditFilter{Username: username, Action: "reset_notice"})
		if len(evs) == 1 && evs[0].Outcome == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit of the notice: %+v", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
