package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

// smsRig is the whole SMS path with Twilio faked: Echo → webhook and
// status callback → bbolt → outbox → twilio-go → the fake, with a real
// directory, an SMS budget, and every log line kept.
type smsRig struct {
	t       *testing.T
	lab     *ldaplab.Server
	dir     *directory.Client
	store   *bolt.Store
	dbPath  string
	sealer  *enroll.Sealer
	fake    *twiliotest.Fake
	srv     *httptest.Server
	logs    *testkit.LockedBuffer
	outbox  *outbox.Outbox
	budget  *gateway.SMSBudget
	catalog *templates.Catalog
	seq     int
}

func newSMSRig(t *testing.T, lab *ldaplab.Server, budgets gateway.BudgetConfig) *smsRig {
	t.Helper()
	dcfg := lab.DirectoryConfig()
	dcfg.Timeout = 3 * time.Second
	dir, err := directory.New(dcfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	r := &smsRig{t: t, lab: lab, dir: dir, sealer: testkit.Sealer(t), fake: testkit.NewFake(t), logs: &testkit.LockedBuffer{}}
	r.dbPath = t.TempDir() + "/replyreset.db"
	if r.store, err = bolt.Open(r.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.store.Close() })
	gen, err := password.NewGenerator(password.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	r.catalog = catalog
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.budget = gateway.NewSMSBudget(r.store, gateway.SMSBudgetOptions{Budgets: budgets, Log: log})
	t.Cleanup(r.budget.Close)
	r.outbox = outbox.New(r.store, r.sealer, testkit.TwilioSender(t, r.fake, nil, nil), log, outbox.Options{
		BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 50 * time.Millisecond,
		Budget: r.budget, Audit: r.store})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.outbox.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	queue := outbox.NewQueue(r.store, r.sealer, r.outbox.Notify)
	status := twilio.NewStatusHandler(twilio.StatusSettings{PublicURL: testkit.PublicURL, AuthToken: testkit.AuthToken,
		Redactions: queue}, r.store, log)
	wh := gateway.NewWebhook(gateway.Settings{PublicURL: testkit.PublicURL, AuthToken: testkit.AuthToken, DefaultLanguage: "en",
		MaxResetsPerHour: 10, Password: directory.SetPasswordOptions{MustChange: true, Unlock: true}, SMSBudget: r.budget,
		Outbox: queue}, gateway.WebhookDeps{Store: r.store, Directory: dir, Generator: gen, Catalog: catalog, Log: log})
	t.Cleanup(wh.Close)
	r.srv = httptest.NewServer(web.NewEcho(web.Deps{Logger: log, SMSWebhook: wh, SMSStatus: status, Directory: dir}))
	t.Cleanup(r.srv.Close)
	return r
}

// user adds a directory user enrolled with phone; it returns the DN and
// the initial password.
func (r *smsRig) user(phone string, spec ldaplab.UserSpec) (username, dn, password string) {
	r.t.Helper()
	spec.Username = r.lab.UniqueName("rd")
	spec.Password = "Start#Pass1x"
	spec.DisplayName = "Redact " + spec.Username
	dn = r.lab.AddUser(r.t, spec)
	if phone != "" {
		now := time.Now()
		err := r.store.PutEnrollment(context.Background(), enroll.Enrollment{Username: spec.Username, Phone: phone,
			Language: "en", State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now})
		if err != nil {
			r.t.Fatal(err)
		}
	}
	return spec.Username, dn, spec.Password
}

// text posts an inbound SMS as Twilio would and returns the raw TwiML and
// its <Message> texts.
func (r *smsRig) text(from, body string) (raw string, texts []string) {
	r.t.Helper()
	r.seq++
	return r.post(url.Values{"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano()+int64(r.seq))},
		"AccountSid": {testkit.AccountSID}, "From": {from}, "To": {testkit.From}, "Body": {body}})
}

// post posts form, signed, to the webhook; the answer must be 200.
func (r *smsRig) post(form url.Values) (raw string, texts []string) {
	r.t.Helper()
	status, texts, raw, err := twiliotest.PostSMS(r.t.Context(), http.DefaultClient, r.srv.URL+"/sms/twilio",
		testkit.PublicURL+"/sms/twilio", testkit.AuthToken, form)
	if err != nil || status != http.StatusOK {
		r.t.Fatalf("POST /sms/twilio: %d, %v", status, err)
	}
	return raw, texts
}

// reset texts RESET from phone: the webhook's answer is an empty TwiML
// reply, and the outbox sends the password to phone through the fake
// Twilio, with the status callback. It returns the password and the SID
// of the message that carried it.
func (r *smsRig) reset(phone string) (password, sid string) {
	r.t.Helper()
	before := len(r.fake.Resources())
	raw, texts := r.text(phone, "RESET")
	if len(texts) != 0 {
		r.t.Fatalf("RESET answered with a message: %s", raw)
	}
	var sent twiliotest.Resource
	testkit.Eventually(r.t, "the new password to be sent", func() bool {
		for _, res := range r.fake.Resources()[before:] {
			if res.Kind == "sms" && res.To == phone && strings.HasPrefix(res.Body, "ReplyReset: new password for ") {
				sent = res
				return true
			}
		}
		return false
	})
	if sent.StatusCallback != testkit.StatusURL || sent.From != testkit.From {
		r.t.Fatalf("the password message is from %q with StatusCallback %q, want from %s with %q",
			sent.From, sent.StatusCallback, testkit.From, testkit.StatusURL)
	}
	password = passwordFrom(r.t, sent.Body)
	if strings.Contains(raw, password) {
		r.t.Fatalf("the webhook's answer holds the password: %s", raw)
	}
	r.waitSent(sent.SID)
	return password, sent.SID
}

// waitSent waits until the outbox recorded that Twilio accepted sid, after
// which its status reports are known.
func (r *smsRig) waitSent(sid string) {
	r.t.Helper()
	testkit.Eventually(r.t, "the outbox to record "+sid, func() bool {
		m, err := r.store.MessageByProviderID(r.t.Context(), sid)
		return err == nil && m.Status == enroll.StatusSent
	})
}

// report has the fake post a status report for sid to its callback.
func (r *smsRig) report(sid, status string, code int) {
	r.t.Helper()
	got, err := r.fake.Report(r.t.Context(), r.srv.URL, sid, status, code)
	if err != nil || got != http.StatusNoContent {
		r.t.Fatalf("report %s %s: HTTP %d, %v; want 204", sid, status, got, err)
	}
}

// redactions are the fake's update requests for sid, by answer status.
func (r *smsRig) redactions(sid string) []int {
	var out []int
	for _, req := range r.fake.Requests() {
		if strings.HasSuffix(req.Path, "/Messages/"+sid+".json") && req.Method == http.MethodPost {
			if body, ok := req.Form["Body"]; !ok || len(body) != 1 || body[0] != "" {
				r.t.Errorf("update of %s does not blank the body: %v", sid, req.Form)
			}
			out = append(out, req.Status)
		}
	}
	return out
}

func (r *smsRig) waitRedacted(sid string) {
	r.t.Helper()
	testkit.Eventually(r.t, "redaction of "+sid, func() bool {
		res, _ := r.fake.Resource(sid)
		return res.Redacted
	})
}

// assertNowhere fails if any secret is in the logs or the data file.
func (r *smsRig) assertNowhere(secrets ...string) {
	r.t.Helper()
	raw, err := os.ReadFile(r.dbPath)
	if err != nil {
		r.t.Fatal(err)
	}
	logs := r.logs.String()
	if len(logs) == 0 || len(raw) == 0 {
		r.t.Fatal("nothing logged or stored: the check would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			r.t.Errorf("the data file holds %q", s)
		}
		if strings.Contains(logs, s) {
			r.t.Errorf("the logs hold %q", s)
		}
	}
}

// TestRedactionAtTwilioE2E: each RESET's password goes out through the
// outbox with the status callback; when it reports the message delivered,
// undelivered or failed, the body is
// blanked at the fake Twilio, once, retried after a 500. A verification
// code sent by the outbox is redacted the same way. No password or body
// is in the logs, the audit trail or the data file.
func TestRedactionAtTwilioE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newSMSRig(t, lab, gateway.BudgetConfig{PerNumberDay: 50, PerDay: 500})
		const phone = "+12015550301"
		username, dn, _ := r.user(phone, ldaplab.UserSpec{})
		var secrets []string
		var sids []string
		for _, final := range []struct {
			status string
			code   int
		}{{"delivered", 0}, {"undelivered", 30003}, {"failed", 30008}} {
			pw, sid := r.reset(phone)
			secrets = append(secrets, pw)
			sids = append(sids, sid)
			r.report(sid, "sent", 0) // not final: nothing to redact yet
			time.Sleep(100 * time.Millisecond)
			if n := len(r.redactions(sid)); n != 0 {
				t.Fatalf("%s: redacted before its final status", sid)
			}
			r.report(sid, final.status, final.code)
			r.waitRedacted(sid)
			t.Logf("reply %s: redacted after %q", sid, final.status)
		}
		// Reports that come twice or late redact nothing more.
		r.report(sids[0], "delivered", 0)
		r.report(sids[1], "delivered", 0)
		r.report(sids[2], "failed", 30008)

		// Twilio answers 500 to the first redaction: it is retried.
		pw, sid := r.reset(phone)
		secrets = append(secrets, pw)
		sids = append(sids, sid)
		r.fake.FailNext(1, http.StatusInternalServerError, 0)
		r.report(sid, "delivered", 0)
		r.waitRedacted(sid)
		h := &harness{t: t, lab: lab}
		h.expectBind(dn, pw, "must-change") // the last password is in force

		// A verification code from the outbox is redacted after its report.
		const code = "481516"
		body := "Your ReplyReset verification code is " + code
		now := time.Now()
		id, err := r.store.EnqueueMessage(t.Context(), enroll.OutboundMessage{Kind: enroll.KindSMS, To: phone,
			Sealed: r.sealer.Seal([]byte(body), "outbox"), Language: "en", Purpose: "code", Username: username,
			Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		r.outbox.Notify()
		var codeSID string
		testkit.Eventually(t, "the code to be sent", func() bool {
			codeSID = testkit.Message(t, r.store, id).ProviderID
			return codeSID != ""
		})
		r.report(codeSID, "delivered", 0)
		r.waitRedacted(codeSID)
		sids = append(sids, codeSID)

		time.Sleep(300 * time.Millisecond) // room for a duplicate to show
		for i, sid := range sids {
			want := "[200]"
			if i == 3 {
				want = "[500 200]"
			}
			if got := fmt.Sprint(r.redactions(sid)); got != want {
				t.Errorf("redaction requests for %s answered %s, want %s", sid, got, want)
			}
		}
		evs, err := r.store.Audit(t.Context(), enroll.AuditFilter{Action: "redact"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(sids) {
			t.Fatalf("%d redact audit events, want %d: %+v", len(evs), len(sids), evs)
		}
		for _, ev := range evs {
			if ev.Outcome != "ok" || !strings.Contains(ev.Detail, "SM") {
				t.Errorf("redact audit: %+v", ev)
			}
		}
		var jobs int
		msgs, err := r.store.Messages(t.Context(), enroll.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Kind == enroll.KindRedact {
				jobs++
				if m.Status != enroll.StatusSent || m.To != "" || len(m.Sealed) != 0 {
					t.Errorf("redaction job %+v", m)
				}
			}
		}
		if jobs != len(sids) {
			t.Errorf("%d redaction jobs, want %d", jobs, len(sids))
		}
		all, err := r.store.Audit(t.Context(), enroll.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range all {
			for _, s := range append(secrets, code) {
				if strings.Contains(fmt.Sprintf("%+v", ev), s) {
					t.Errorf("audit event %d holds a secret", ev.Seq)
				}
			}
		}
		r.assertNowhere(append(secrets, code, body)...)
	})
}

// TestResetPasswordNeverInTheAnswerE2E: a signed RESET is answered with an
// empty TwiML reply; the password set in the directory (it binds,
// must-change) reaches the phone only as an outbound message the outbox
// creates at the fake Twilio through twilio-go, with the status callback.
// The same MessageSid posted again (a replay of a captured request) gets an
// answer without any secret and sends nothing.
func TestResetPasswordNeverInTheAnswerE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newSMSRig(t, lab, gateway.BudgetConfig{})
		const phone = "+12015550305"
		_, dn, old := r.user(phone, ldaplab.UserSpec{})
		form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano())}, "AccountSid": {testkit.AccountSID},
			"From": {phone}, "To": {testkit.From}, "Body": {"RESET"}}
		raw, texts := r.post(form)
		if len(texts) != 0 || strings.Contains(raw, "<Message") {
			t.Fatalf("RESET answer: %s; want an empty <Response>", raw)
		}
		var sent twiliotest.Resource
		testkit.Eventually(t, "the password message at Twilio", func() bool {
			res := r.fake.Resources()
			if len(res) == 0 {
				return false
			}
			sent = res[0]
			return true
		})
		pw := passwordFrom(t, sent.Body)
		r.waitSent(sent.SID)
		h := &harness{t: t, lab: lab}
		h.expectBind(dn, pw, "must-change") // the password in force is the one texted
		h.expectBind(dn, old, "invalid")
		if strings.Contains(raw, pw) {
			t.Fatalf("the answer holds the password set in the directory: %s", raw)
		}
		if sent.To != phone || sent.StatusCallback != testkit.StatusURL {
			t.Fatalf("password message to %s with StatusCallback %q, want to %s with %q", sent.To, sent.StatusCallback, phone, testkit.StatusURL)
		}
		var create []twiliotest.Request
		for _, req := range r.fake.Requests() {
			if strings.HasSuffix(req.Path, "/Messages.json") {
				create = append(create, req)
			}
		}
		if len(create) != 1 || create[0].Form.Get("StatusCallback") != testkit.StatusURL || create[0].Form.Get("To") != phone {
			t.Fatalf("Twilio create-message requests: %+v", create)
		}
		msgs, err := r.store.Messages(t.Context(), enroll.OutboxFilter{To: phone})
		if err != nil || len(msgs) != 1 || msgs[0].Purpose != "password" || msgs[0].ProviderID != sent.SID {
			t.Fatalf("outbox: %+v, %v", msgs, err)
		}

		// The replay: nothing secret, nothing sent, nothing queued.
		raw2, texts2 := r.post(form)
		if len(texts2) != 0 || strings.Contains(raw2, pw) {
			t.Fatalf("replay answer: %s", raw2)
		}
		time.Sleep(200 * time.Millisecond) // room for a send to show
		if n := len(r.fake.Resources()); n != 1 {
			t.Fatalf("%d messages at Twilio after the replay, want 1", n)
		}
		if msgs, _ := r.store.Messages(t.Context(), enroll.OutboxFilter{To: phone}); len(msgs) != 1 {
			t.Fatalf("outbox after the replay: %+v", msgs)
		}
		h.expectBind(dn, pw, "must-change")

		// Delivered: the password's body is redacted at Twilio.
		r.report(sent.SID, "delivered", 0)
		r.waitRedacted(sent.SID)
		r.assertNowhere(pw)
	})
}

// TestResetOverBudgetChangesNothingE2E: a RESET whose reply the budgets
// refuse gets no reply and leaves the password alone, so that nobody is
// left with a password no one was told.
func TestResetOverBudgetChangesNothingE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newSMSRig(t, lab, gateway.BudgetConfig{PerNumberDay: 1})
		const phone = "+12015550302"
		username, dn, _ := r.user(phone, ldaplab.UserSpec{})
		pw, _ := r.reset(phone)
		raw, texts := r.text(phone, "RESET")
		if len(texts) != 0 {
			t.Fatalf("second RESET over budget got a reply: %s", raw)
		}
		h := &harness{t: t, lab: lab}
		h.expectBind(dn, pw, "must-change") // not replaced
		evs, err := r.store.Audit(t.Context(), enroll.AuditFilter{Username: username})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Action+":"+ev.Outcome)
		}
		if strings.Join(got, " ") != "reset:ok sms_budget:per_number_day" {
			t.Fatalf("audit %v", got)
		}
	})
}

// TestNoSMSForATypedUsername: texting usernames, enrolled or not, and an
// admin activating a user whose directory entry has a mobile number send
// nothing to anyone but the sender of the text: only enrolled phones ever
// receive an SMS.
func TestNoSMSForATypedUsername(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	r := newSMSRig(t, lab, gateway.BudgetConfig{})
	const enrolledPhone, directoryMobile, stranger = "+12015550303", "+12015550304", "+12015550399"
	enrolled, enrolledDN, enrolledPW := r.user(enrolledPhone, ldaplab.UserSpec{})
	other, otherDN, otherPW := r.user("", ldaplab.UserSpec{Mobile: directoryMobile, Mail: "other@example.test"})
	generic := r.catalog.Text("en", "sms.generic", nil)
	for _, body := range []string{"RESET " + enrolled, "RESET " + other, other, "UNLOCK " + enrolled,
		enrolled + " " + enrolledPhone, "STATUS " + other} {
		raw, texts := r.text(stranger, body)
		if len(texts) != 1 || texts[0] != generic || strings.Contains(raw, " to=") {
			t.Errorf("%q: %s; want the generic reply, to the sender only", body, raw)
		}
	}
	mails := &enrolltest.Mailer{}
	svc := enroll.NewService(enroll.ServiceDeps{Store: r.store, Directory: r.dir, Mailer: mails,
		Mails: mustMails(t), Messages: r.catalog, Sealer: r.sealer, Outbox: outbox.NewQueue(r.store, r.sealer, r.outbox.Notify)},
		enroll.ServiceSettings{Config: enroll.DefaultConfig(), PublicURL: testkit.PublicURL, DefaultLanguage: "en", DefaultRegion: "US"})
	if _, err := svc.Activate(t.Context(), other, "admin"); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // room for the outbox to send anything it had
	if n := len(mails.Sent()); n != 1 {
		t.Errorf("%d activation mails, want 1", n)
	}
	msgs, err := r.store.Messages(t.Context(), enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 || len(r.fake.Requests()) != 0 {
		t.Fatalf("messages were sent: outbox %+v, Twilio got %d requests", msgs, len(r.fake.Requests()))
	}
	h := &harness{t: t, lab: lab}
	h.expectBind(enrolledDN, enrolledPW, "ok")
	h.expectBind(otherDN, otherPW, "ok")
}

func mustMails(t *testing.T) *templates.Mails {
	t.Helper()
	m, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
