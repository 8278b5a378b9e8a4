package main

// The whole product, end to end, as a company runs it: `replyreset serve`
// with a YAML file whose directory is a real lab server (OpenLDAP slapd,
// Samba AD), whose Twilio is twiliotest's fake REST API (reached through the
// real twilio-go client and the durable outbox) and whose mail relay is
// smtptest. The helpdesk activates users with the CLI (through the control
// socket), the users enroll in a real browser from the emailed link, get
// their codes by SMS or voice call, and one of them texts RESET.
//
// Mail: the mailer trusts the system roots only, so it could not verify the
// smtptest certificate; the config says tls: none, which the mailer allows
// for a relay on loopback. The server still offers STARTTLS; it is not used.

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web/browsertest"
)

// asyncWait bounds each asynchronous step (the outbox worker sends within a
// second or two; mail is sent before the page answers).
const asyncWait = 10 * time.Second

// enrolledSMS is the confirmation text of DESIGN.md, journey 2.
const enrolledSMS = "You're enrolled. Text RESET to this number to reset your password."

// journey is one product under test and everything around it.
type journey struct {
	t         *testing.T
	lab       *ldaplab.Server
	f         configFile
	addr      string // 127.0.0.1:port serve listens on
	publicURL string // http://127.0.0.1:port
	srv       *server
	twilio    *twiliotest.Fake
	smtp      *smtptest.Server
	browser   context.Context
	pages     *templates.Pages

	// secrets are what must never reach the audit trail, the log or the
	// data file: tokens, codes, the texted password.
	secrets []secret
}

type secret struct{ what, value string }

func TestJourney(t *testing.T) {
	t.Parallel()
	for _, lab := range labs {
		t.Run(lab.name, func(t *testing.T) {
			t.Parallel()
			browsertest.ChromiumPath(t) // skip (or fail under CI) before starting anything
			start := time.Now()
			j := newJourney(t, lab.get(t))
			t.Logf("lab, fakes and serve up: %v", time.Since(start).Round(time.Millisecond))
			j.run()
			t.Logf("journey: %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

func newJourney(t *testing.T, s *ldaplab.Server) *journey {
	t.Helper()
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	j := &journey{t: t, lab: s, pages: pages}
	j.twilio = twiliotest.NewFake(testAccountSID, testAuthToken)
	t.Cleanup(j.twilio.Close)
	j.smtp = smtptest.New(t, smtptest.Options{STARTTLS: true})
	j.addr = freePort(t)
	j.publicURL = "http://" + j.addr
	j.f = j.writeConfig()
	j.srv = startServe(t, j.f, j.addr)
	return j
}

// writeConfig writes the product's configuration: the lab directory over
// verified LDAPS, the fake Twilio, the SMTP relay, and public_url = the
// address serve listens on, so that emailed links work in the browser and
// Twilio signatures are computed over it.
func (j *journey) writeConfig() configFile {
	t := j.t
	t.Helper()
	dir := t.TempDir()
	f := configFile{Path: filepath.Join(dir, "config.yaml"), DataDir: filepath.Join(dir, "data")}
	pwFile := filepath.Join(dir, "bind_password")
	writeFile(t, pwFile, j.lab.ServicePassword+"\n")
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\n", q(j.addr))
	fmt.Fprintf(&b, "public_url: %s\n", q(j.publicURL))
	fmt.Fprintf(&b, "data_dir: %s\n", q(f.DataDir))
	fmt.Fprintf(&b, "language: en\n")
	// debug: the strictest check that no secret is ever logged.
	fmt.Fprintf(&b, "log: {level: debug, format: json}\n")
	fmt.Fprintf(&b, "directory:\n")
	fmt.Fprintf(&b, "  dialect: %s\n", j.lab.Dialect)
	fmt.Fprintf(&b, "  urls: [%s]\n", q(j.lab.LDAPSURL))
	fmt.Fprintf(&b, "  ca_file: %s\n", q(j.lab.CAFile))
	fmt.Fprintf(&b, "  bind_dn: %s\n", q(j.lab.ServiceDN))
	fmt.Fprintf(&b, "  bind_password_file: %s\n", q(pwFile))
	fmt.Fprintf(&b, "  base_dn: %s\n", q(j.lab.BaseDN))
	fmt.Fprintf(&b, "  timeout: 5s\n")
	fmt.Fprintf(&b, "password: {must_change: true, unlock: true}\n")
	fmt.Fprintf(&b, "sms:\n")
	fmt.Fprintf(&b, "  provider: twilio\n")
	fmt.Fprintf(&b, "  twilio:\n")
	fmt.Fprintf(&b, "    account_sid: %s\n", testAccountSID)
	fmt.Fprintf(&b, "    auth_token: %s\n", q(testAuthToken))
	fmt.Fprintf(&b, "    from: %s\n", q(testFromNumber))
	fmt.Fprintf(&b, "    api_base_url: %s\n", q(j.twilio.URL))
	fmt.Fprintf(&b, "  default_region: US\n")
	fmt.Fprintf(&b, "enrollment: {methods: [sms, voice, app]}\n")
	fmt.Fprintf(&b, "mail:\n")
	fmt.Fprintf(&b, "  host: %s\n", q(j.smtp.Host))
	fmt.Fprintf(&b, "  port: %d\n", j.smtp.Port)
	fmt.Fprintf(&b, "  from: %s\n", q("IT Service Desk <it@example.test>"))
	fmt.Fprintf(&b, "  tls: none\n") // see the file comment
	writeFile(t, f.Path, b.String())
	return f
}

func (j *journey) secret(what, value string) {
	j.secrets = append(j.secrets, secret{what, value})
}

func (j *journey) run() {
	t := j.t
	s := j.lab

	// Two users: one with a mobile in the directory (SMS), one without
	// (voice call to a number typed in national format).
	smsUser := s.UniqueName("jsms")
	smsMail := smsUser + "@example.test"
	smsDN := s.AddUser(t, ldaplab.UserSpec{Username: smsUser, DisplayName: "Journey " + smsUser,
		Mail: smsMail, Mobile: "+1 201 555 0142"})
	const smsPhone = "+12015550142"
	voiceUser := s.UniqueName("jvoice")
	voiceMail := voiceUser + "@example.test"
	s.AddUser(t, ldaplab.UserSpec{Username: voiceUser, DisplayName: "Journey " + voiceUser, Mail: voiceMail})
	const voicePhoneTyped, voicePhone = "(201) 555-0188", "+12015550188"

	// --- Activation: the CLI goes through serve's control socket.
	step := time.Now()
	link := j.activate(smsUser, smsMail, 1)
	t.Logf("activate → email: %v", time.Since(step).Round(time.Millisecond))

	// --- Enrollment by SMS in the browser.
	step = time.Now()
	j.browser = browsertest.New(t)
	ctx := j.browser
	j.wantStatus("open the emailed link", browsertest.Open(t, ctx, link), 200)
	if got := browsertest.Eval(t, ctx, `document.getElementById("phone").value`); got != smsPhone {
		t.Fatalf("the phone field is pre-filled with %q, want the directory's mobile as %s", got, smsPhone)
	}
	if got := browsertest.Eval(t, ctx, `document.querySelector("input[name=method]:checked").value`); got != "sms" {
		t.Fatalf("method checked by default: %q, want sms", got)
	}
	j.wantStatus("send the code", browsertest.Submit(t, ctx, "#send"), 200)
	j.wantText("#notice", j.pages.Text("en", "notice.sent.sms", nil))
	codeSMS := j.waitResource("the code SMS to "+smsPhone, func(r twiliotest.Resource) bool {
		return r.Kind == "sms" && r.To == smsPhone && strings.Contains(r.Body, "verification code")
	})
	code := regexp.MustCompile(`\b(\d{6})\b`).FindStringSubmatch(codeSMS.Body)
	if code == nil {
		t.Fatalf("no 6-digit code in the SMS %q", codeSMS.Body)
	}
	j.secret("the SMS code", code[1])
	j.checkSentByTwilioGo(codeSMS)
	j.typeCode(code[1])
	j.wantStatus("verify", browsertest.Submit(t, ctx, "#verify"), 200)
	j.wantText("#done", j.pages.Text("en", "done.title", nil))
	browsertest.Screenshot(t, ctx, strings.NewReplacer("/", "_").Replace(t.Name())+"-enrolled.png")
	j.waitResource("the confirmation SMS to "+smsPhone, func(r twiliotest.Resource) bool {
		return r.Kind == "sms" && r.To == smsPhone && r.Body == enrolledSMS
	})
	j.waitMail("the enrolled email to "+smsMail, 2, smsMail, "Your phone is registered for password reset")
	t.Logf("enroll by SMS (browser start, send, verify, SMS and email): %v", time.Since(step).Round(time.Millisecond))

	// --- Delivery report for the code SMS, seen by the helpdesk.
	status, err := j.twilio.StatusCallback(t.Context(), j.publicURL+"/sms/twilio/status", testAuthToken, codeSMS.SID, "delivered", 0)
	if err != nil || status/100 != 2 {
		t.Fatalf("signed status callback for %s: status %d, %v; want 2xx\nlog:\n%s", codeSMS.SID, status, err, j.srv.stderr)
	}
	msgs := j.outbox()
	i := slices.IndexFunc(msgs, func(m outboxRow) bool { return m.ProviderID == codeSMS.SID })
	if i < 0 {
		t.Fatalf("outbox -format json lists no message with provider_id %s: %+v", codeSMS.SID, msgs)
	}
	if m := msgs[i]; m.Status != enroll.StatusDelivered || m.Purpose != "code" || m.To != smsPhone || m.Kind != "sms" {
		t.Errorf("the code message in the outbox = %+v, want kind sms, purpose code, to %s, status delivered", m, smsPhone)
	}

	// --- RESET by SMS: a signed inbound webhook from the enrolled number.
	step = time.Now()
	// The answer is an empty TwiML reply; the password reaches the phone
	// as a message the outbox creates at Twilio, with the status callback.
	if reply := j.inboundSMS(smsPhone, "Reset"); len(reply) != 0 {
		t.Fatalf("the RESET answer holds messages: %q", reply)
	}
	pwSMS := j.waitResource("the new password to "+smsPhone, func(r twiliotest.Resource) bool {
		return r.Kind == "sms" && r.To == smsPhone && strings.HasPrefix(r.Body, "ReplyReset: new password for "+smsUser)
	})
	if pwSMS.StatusCallback != j.publicURL+"/sms/twilio/status" {
		t.Errorf("the password SMS has StatusCallback %q", pwSMS.StatusCallback)
	}
	lines := strings.Split(pwSMS.Body, "\n")
	if len(lines) < 3 {
		t.Fatalf("the password SMS is %q", pwSMS.Body)
	}
	password := lines[1]
	j.secret("the texted password", password)
	j.wantBind(smsDN, password, "must-change")
	j.wantBind(smsDN, ldaplab.DefaultPassword, "invalid")
	notice := j.waitMail("the reset notice to "+smsMail, 3, smsMail, "Your password was reset by text message")
	if strings.Contains(notice.Text+notice.HTML, password) {
		t.Errorf("the reset notice mail holds the password")
	}
	t.Logf("RESET → password binds: %v", time.Since(step).Round(time.Millisecond))

	// --- Enrollment by voice call, in the same browser.
	step = time.Now()
	link = j.activate(voiceUser, voiceMail, 4)
	j.wantStatus("open the second emailed link", browsertest.Open(t, ctx, link), 200)
	if got := browsertest.Eval(t, ctx, `document.getElementById("phone").value`); got != "" {
		t.Errorf("the phone of a user without a mobile is pre-filled with %q", got)
	}
	browsertest.Do(t, ctx, "fill the phone form",
		chromedp.SendKeys(chromedp.ID("phone"), voicePhoneTyped),
		chromedp.Click(chromedp.ID("method-voice")),
	)
	j.wantStatus("ask for a call", browsertest.Submit(t, ctx, "#send"), 200)
	j.wantText("#notice", j.pages.Text("en", "notice.sent.voice", nil))
	call := j.waitResource("the call to "+voicePhone, func(r twiliotest.Resource) bool {
		return r.Kind == "call" && r.To == voicePhone
	})
	j.checkSentByTwilioGo(call)
	spoken := regexp.MustCompile(`\d(?:[ ,]+\d){5}`).FindString(call.Twiml)
	if spoken == "" || !strings.Contains(call.Twiml, "<Say") {
		t.Fatalf("the call's TwiML does not say six digits: %q", call.Twiml)
	}
	voiceCode := strings.NewReplacer(",", "", " ", "").Replace(spoken)
	j.secret("the voice code", voiceCode)
	j.typeCode(voiceCode)
	j.wantStatus("verify the spoken code", browsertest.Submit(t, ctx, "#verify"), 200)
	j.wantText("#done", j.pages.Text("en", "done.title", nil))
	j.waitResource("the confirmation SMS to "+voicePhone, func(r twiliotest.Resource) bool {
		return r.Kind == "sms" && r.To == voicePhone && r.Body == enrolledSMS
	})
	j.waitMail("the enrolled email to "+voiceMail, 5, voiceMail, "Your phone is registered for password reset")
	t.Logf("enroll by voice call: %v", time.Since(step).Round(time.Millisecond))

	// --- Reset from the browser (/reset): the code by SMS through Twilio,
	// then a password of the user's own; the phone and the mail are told.
	step = time.Now()
	browsertest.ClearCookies(t, ctx)
	j.wantStatus("open /reset", browsertest.Open(t, ctx, j.publicURL+"/reset"), 200)
	browsertest.Do(t, ctx, "type the name", chromedp.SendKeys(chromedp.ID("login"), smsUser))
	j.wantStatus("ask for a code", browsertest.Submit(t, ctx, "#start"), 200)
	j.wantText("#sent", j.pages.Text("en", "reset.code.intro", map[string]string{"login": smsUser}))
	webSMS := j.waitResource("the reset page's code to "+smsPhone, func(r twiliotest.Resource) bool {
		return r.Kind == "sms" && r.To == smsPhone && strings.Contains(r.Body, "on the web page")
	})
	webCode := regexp.MustCompile(`\b(\d{6})\b`).FindStringSubmatch(webSMS.Body)
	if webCode == nil {
		t.Fatalf("no 6-digit code in the SMS %q", webSMS.Body)
	}
	j.secret("the reset page's code", webCode[1])
	j.typeCode(webCode[1])
	j.wantStatus("the reset page's code", browsertest.Submit(t, ctx, "#verify"), 200)
	const chosen = "Violet-Harbour-Lantern-42"
	j.secret("the chosen password", chosen)
	browsertest.Do(t, ctx, "choose a password",
		chromedp.SendKeys(chromedp.ID("password"), chosen), chromedp.SendKeys(chromedp.ID("confirm"), chosen))
	j.wantStatus("set the chosen password", browsertest.Submit(t, ctx, "#choose"), 200)
	j.wantText("#done-text", j.pages.Text("en", "reset.done.chosen", map[string]string{"username": smsUser}))
	j.wantBind(smsDN, chosen, "ok")
	j.waitResource("the reset page's notice to "+smsPhone, func(r twiliotest.Resource) bool {
		return r.Kind == "sms" && r.To == smsPhone && strings.Contains(r.Body, "was changed on the web page") && strings.Contains(r.Body, "NOT ME")
	})
	webNotice := j.waitMail("the reset page's notice to "+smsMail, 6, smsMail, "Your password was changed from the reset page")
	if strings.Contains(webNotice.Text+webNotice.HTML, chosen) {
		t.Errorf("the reset page's notice mail holds the password")
	}
	t.Logf("reset from the browser (code by SMS, a chosen password): %v", time.Since(step).Round(time.Millisecond))

	// --- What the helpdesk sees.
	list := listEnrollments(t, j.f)
	want := map[string][2]string{smsUser: {smsPhone, "sms"}, voiceUser: {voicePhone, "voice"}}
	for _, e := range list {
		if w, ok := want[e.Username]; ok && e.Phone == w[0] && e.Method == w[1] && e.State == enroll.StateActive {
			delete(want, e.Username)
		}
	}
	if len(want) != 0 {
		t.Errorf("enrollments = %+v; missing active enrollments %v", list, want)
	}
	r := mustRun(t, "audit", "-config", j.f.Path, "-format", "json")
	var events []enroll.Event
	if err := json.Unmarshal([]byte(r.stdout), &events); err != nil {
		t.Fatalf("audit -format json is not JSON: %v\n%v", err, r)
	}
	for _, w := range []struct{ action, user, actor string }{
		{"activate", smsUser, "cli:"}, {"activate", voiceUser, "cli:"},
		{"enroll", smsUser, "user:"}, {"enroll", voiceUser, "user:"},
		{"reset", smsUser, "sms:" + smsPhone},
		{"reset_web", smsUser, "web:"},
	} {
		if !slices.ContainsFunc(events, func(ev enroll.Event) bool {
			return ev.Action == w.action && ev.Username == w.user && ev.Outcome == "ok" && strings.HasPrefix(ev.Actor, w.actor)
		}) {
			t.Errorf("the audit trail has no %s of %s with outcome ok (actor %s…):\n%s", w.action, w.user, w.actor, r.stdout)
		}
	}
	j.noSecrets("audit -format json", r.stdout)
	j.noSecrets("outbox -format json", mustRun(t, "outbox", "-config", j.f.Path, "-format", "json").stdout)

	// --- Metrics of what just happened.
	resp, err := httpClient.Get("http://" + j.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(raw)
	for _, want := range []string{`replyreset_resets_total{outcome="ok"} 1`, `method="POST",route="/sms/twilio"}`,
		`replyreset_directory_operation_duration_seconds_count{op="set_password",result="ok"} 2`,
		`replyreset_outbox_messages_total{kind="sms",purpose="code",status="delivered"} 1`,
		`replyreset_audit_events_total{action="activate",outcome="ok"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	j.noSecrets("/metrics", metrics)

	// --- Graceful stop; then the log and the data file.
	j.srv.stop(t)
	log := j.srv.stderr.String()
	// Positive controls: the texts searched for secrets are the real ones.
	for _, want := range []string{`"msg":"enroll: enrolled"`, `"msg":"shutting down"`, smsUser} {
		if !strings.Contains(log, want) {
			t.Errorf("the serve log lacks %s:\n%s", want, log)
		}
	}
	j.noSecrets("the serve log", log)
	db, err := os.ReadFile(filepath.Join(j.f.DataDir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(db), smsUser) || !strings.Contains(string(db), voicePhone) {
		t.Errorf("the data file (%d bytes) does not hold the enrollments in it", len(db))
	}
	j.noSecrets("the data file", string(db))
}

// activate runs `replyreset activate` and returns the link of the
// activation email, which must be message number n at the relay.
func (j *journey) activate(username, mail string, n int) string {
	t := j.t
	t.Helper()
	r := mustRun(t, "activate", "-config", j.f.Path, username)
	wantContains(t, r, r.stdout, username+": activation email to "+mail+" queued (link valid until ")
	m := j.waitMail("the activation email to "+mail, n, mail, "Register your phone for password reset")
	linkRe := regexp.MustCompile(regexp.QuoteMeta(j.publicURL) + `/enroll/[A-Za-z0-9_-]+`)
	link := linkRe.FindString(m.Text)
	if link == "" {
		t.Fatalf("the activation email's text part has no %s/enroll/<token> link:\n%s", j.publicURL, m.Text)
	}
	if got := linkRe.FindAllString(m.HTML, -1); len(got) == 0 || slices.ContainsFunc(got, func(l string) bool { return l != link }) {
		t.Fatalf("the HTML part's links %q are not the text part's %s", got, link)
	}
	j.secret("the activation token of "+username, strings.TrimPrefix(link, j.publicURL+"/enroll/"))
	return link
}

// waitMail waits for the n-th message at the relay and checks that it went
// to `to` with subject.
func (j *journey) waitMail(what string, n int, to, subject string) smtptest.Message {
	t := j.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), asyncWait)
	defer cancel()
	msgs, err := j.smtp.Wait(ctx, n)
	if err != nil {
		t.Fatalf("%s: %v\nlog:\n%s", what, err, j.srv.stderr)
	}
	if len(msgs) != n {
		t.Fatalf("%s: the relay got %d messages, want %d", what, len(msgs), n)
	}
	m := msgs[n-1]
	if !slices.Equal(m.To, []string{to}) || m.Subject != subject || m.Err != nil {
		t.Fatalf("%s: got To %q, subject %q (parse error %v), want %s, %q", what, m.To, m.Subject, m.Err, to, subject)
	}
	if m.Text == "" || m.HTML == "" {
		t.Errorf("%s: want a text and an HTML part, got %d and %d bytes", what, len(m.Text), len(m.HTML))
	}
	return m
}

// waitResource polls the fake Twilio for a message or call.
func (j *journey) waitResource(what string, match func(twiliotest.Resource) bool) twiliotest.Resource {
	t := j.t
	t.Helper()
	deadline := time.Now().Add(asyncWait)
	for {
		for _, r := range j.twilio.Resources() {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not at Twilio within %v; Twilio has %+v\noutbox:\n%s\nlog:\n%s", what, asyncWait,
				j.twilio.Resources(), mustRun(t, "outbox", "-config", j.f.Path).stdout, j.srv.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSentByTwilioGo checks the REST request that created res: an
// authorised POST to the account's Messages.json or Calls.json, from the
// configured number, asking for status callbacks at public_url.
func (j *journey) checkSentByTwilioGo(res twiliotest.Resource) {
	t := j.t
	t.Helper()
	path := "/2010-04-01/Accounts/" + testAccountSID + map[string]string{"sms": "/Messages.json", "call": "/Calls.json"}[res.Kind]
	for _, r := range j.twilio.Requests() {
		if r.Path != path || r.Form.Get("To") != res.To || (r.Form.Get("Body") != res.Body && r.Form.Get("Twiml") != res.Twiml) {
			continue
		}
		if r.Method != http.MethodPost || !r.Authorized || r.Status != http.StatusCreated {
			t.Errorf("the request for %s: %s authorised=%v answered %d", res.SID, r.Method, r.Authorized, r.Status)
		}
		if got := r.Form.Get("From"); got != testFromNumber {
			t.Errorf("the %s to %s is from %q, want %s", res.Kind, res.To, got, testFromNumber)
		}
		if got, want := r.Form.Get("StatusCallback"), j.publicURL+"/sms/twilio/status"; got != want {
			t.Errorf("the %s to %s asks for status callbacks at %q, want %s", res.Kind, res.To, got, want)
		}
		return
	}
	t.Fatalf("no POST %s created %s", path, res.SID)
}

func (j *journey) typeCode(code string) {
	j.t.Helper()
	browsertest.Eval(j.t, j.browser, `(document.getElementById("code").value = "", "cleared")`)
	browsertest.Do(j.t, j.browser, "type the code", chromedp.SendKeys(chromedp.ID("code"), code))
}

func (j *journey) wantStatus(what string, got, want int64) {
	j.t.Helper()
	if got != want {
		j.t.Fatalf("%s: status %d, want %d\nlog:\n%s", what, got, want, j.srv.stderr)
	}
}

func (j *journey) wantText(sel, want string) {
	j.t.Helper()
	if got := browsertest.Text(j.t, j.browser, sel); got != want {
		j.t.Fatalf("%s = %q, want %q", sel, got, want)
	}
}

// outboxRow is one row of `outbox -format json`.
type outboxRow struct {
	enroll.OutboundMessage
	Body string `json:"body"`
}

func (j *journey) outbox() []outboxRow {
	t := j.t
	t.Helper()
	r := mustRun(t, "outbox", "-config", j.f.Path, "-format", "json")
	var rows []outboxRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("outbox -format json is not JSON: %v\n%v", err, r)
	}
	for _, m := range rows {
		if m.Body != "" || len(m.Sealed) != 0 {
			t.Errorf("outbox -format json shows a body with provider twilio: %+v", m)
		}
	}
	return rows
}

// inboundSMS posts a text from `from` to /sms/twilio as Twilio does, signed
// over public_url, and returns the messages of the TwiML reply.
func (j *journey) inboundSMS(from, body string) []string {
	t := j.t
	t.Helper()
	form := url.Values{
		"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano())},
		"AccountSid": {testAccountSID}, "From": {from}, "To": {testFromNumber},
		"Body": {body}, "NumSegments": {"1"}, "ApiVersion": {"2010-04-01"},
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+j.addr+"/sms/twilio", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twiliotest.Sign(testAuthToken, j.publicURL+"/sms/twilio", form))
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST /sms/twilio: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /sms/twilio %q from %s: status %d: %s\nlog:\n%s", body, from, resp.StatusCode, raw, j.srv.stderr)
	}
	var doc struct {
		Messages []string `xml:"Message"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the reply to %q is not TwiML (%v): %s", body, err, raw)
	}
	return doc.Messages
}

// wantBind binds as dn at the lab and wants "ok", "must-change", "locked"
// or "invalid".
func (j *journey) wantBind(dn, password, want string) {
	j.t.Helper()
	err := j.lab.BindErr(dn, password)
	got := "ok"
	if be, ok := err.(*ldaplab.BindError); ok {
		if got = be.Outcome(); got == "other" {
			got = "invalid"
		}
	} else if err != nil {
		j.t.Fatalf("bind as %s: %v", dn, err)
	}
	if got != want {
		j.t.Fatalf("bind as %s: %s (%v), want %s", dn, got, err, want)
	}
}

// noSecrets fails if text holds a token, code or password of the journey,
// the Twilio auth token or the directory service password. Codes count
// only as whole numbers (not inside a longer run of digits such as a
// timestamp's nanoseconds).
func (j *journey) noSecrets(where, text string) {
	j.t.Helper()
	all := append([]secret{{"the Twilio auth token", testAuthToken}, {"the bind password", j.lab.ServicePassword}}, j.secrets...)
	for _, s := range all {
		found := strings.Contains(text, s.value)
		if regexp.MustCompile(`^\d+$`).MatchString(s.value) {
			found = regexp.MustCompile(`(^|\D)` + s.value + `(\D|$)`).MatchString(text)
		}
		if found {
			j.t.Errorf("%s holds %s in clear", where, s.what)
		}
	}
}
