// Package layouttest fills a store with a record of every kind of the
// layout (enroll/store/layout) through the store's own API, and checks
// them back through the API of the store they were copied to: the
// fixture of the export and migration tests.
package layouttest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/layout"
)

// The fixture's secrets, in clear: Fill seals or hashes them with the
// source's key, Check opens them with the target's.
const (
	TOTPSecret = "JBSWY3DPEHPK3PXP"
	Code       = "424242"
	SMSBody    = "Your ReplyReset code is 424242"
	MailBody   = "Subject: activate\r\n\r\nopen the link"
	Token      = "activation-token-of-cnguyen"
	APISecret  = "rr_fixture-secret"
	SessionKey = "5f2b7c1e9a0d4b3c8e6f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3"
)

// Kinds are the kinds Fill writes a record of, that a copy must carry
// (the live leases/ aside, which it writes too and a copy must not).
var Kinds = []string{"meta", "enrollments", "phones", "audit", "messages", "optout", "ratelimit", "guard",
	"sessions", "activations", "activation_users", "ended_links", "outbox", "outbox_due", "outbox_provider",
	"outbox_redact", "mail_queue", "mail_due", "lockouts", "monitor", "sms_checks", "sms_checks_due",
	"reminders", "api_tokens", "api_token_hashes", "api_token_names"}

// Fixture is what Fill wrote.
type Fixture struct {
	Now         time.Time
	Enrollments []enroll.Enrollment
	Events      []enroll.Event
	Activation  enroll.Activation // cnguyen's, pending with a code
	Ended       enroll.EndedLink  // dlee's, used
	Message     enroll.OutboundMessage
	RedactionID uint64
	Mail        enroll.QueuedMail
	Session     enroll.AdminSession
	SMSCheck    enroll.SMSPasswordCheck
	APIToken    enroll.APIToken
	APIHash     string
	// ExpiredSID was marked with a TTL that ends before Check runs: a
	// copy made after that leaves it out (one "messages" record).
	ExpiredSID string
}

// The fixture's keys.
const (
	phone      = "+12015550171"
	sid        = "SM0123456789abcdef0123456789abcdef"
	rateKey    = "sms:+12015550171"
	guardKey   = "code:cnguyen"
	optOut     = "+12015550199"
	monitor    = "lockout-cursor"
	lockUser   = "adupont"
	remindUser = "bmartin"
)

// Fill writes the fixture into s at now (a time a little in the past:
// one mark ends one second after now), its secrets sealed by sealer.
func Fill(t testing.TB, s enroll.Store, sealer *enroll.Sealer, now time.Time) *Fixture {
	t.Helper()
	ctx := t.Context()
	f := &Fixture{Now: now, ExpiredSID: "SMexpired0123456789abcdef01234567"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SealKey(ctx, sealer.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	f.Enrollments = []enroll.Enrollment{
		{Username: "adupont", Phone: phone, Language: "fr", State: enroll.StateActive, Method: "app", CreatedAt: now, UpdatedAt: now,
			VerifiedAt: now, Mail: "adupont@example.com", TOTPSealed: sealer.Seal([]byte(TOTPSecret), "totp:adupont"), LastTOTPStep: 42},
		{Username: "bmartin", Phone: "+12015550172", Language: "en", State: enroll.StateFrozen, Method: "sms", CreatedAt: now, UpdatedAt: now, VerifiedAt: now},
	}
	for _, e := range f.Enrollments {
		must(s.PutEnrollment(ctx, e))
	}
	for i, action := range []string{"activate", "enroll", "reset"} {
		ev := enroll.Event{Time: now.Add(time.Duration(i) * time.Second), Actor: "cli:test", Action: action, Username: "adupont", Outcome: "ok"}
		seq, err := s.AppendAudit(ctx, ev)
		must(err)
		ev.Seq = seq
		f.Events = append(f.Events, ev)
	}
	_, err := s.MarkMessage(ctx, sid, now, time.Hour)
	must(err)
	_, err = s.MarkMessage(ctx, f.ExpiredSID, now, time.Second)
	must(err)
	must(s.SetOptOut(ctx, optOut, true, now))
	_, err = s.Allow(ctx, rateKey, now, time.Hour, 5)
	must(err)
	_, _, err = s.Attempt(ctx, guardKey, now, 15*time.Minute, 1, time.Hour) // blocked for an hour
	must(err)
	f.Session = enroll.AdminSession{Username: "helpdesk", Display: "Help Desk", Language: "en", Source: "127.0.0.1",
		CreatedAt: now, ExpiresAt: now.Add(8 * time.Hour), CheckedAt: now}
	must(s.PutSession(ctx, SessionKey, f.Session))

	hash := sealer.Hash("token", Token)
	f.Activation = enroll.Activation{TokenHash: hash, Username: "cnguyen", Mail: "cnguyen@example.com", Language: "en",
		CreatedBy: "cli:test", CreatedAt: now, ExpiresAt: now.Add(72 * time.Hour), Phone: "+12015550173",
		CodeHash: sealer.Hash("code", Code), CodeSealed: sealer.Seal([]byte(Code), "code:"+hash), CodeMethod: "sms",
		CodeExpires: now.Add(10 * time.Minute), CodeSentAt: now, TOTPSealed: sealer.Seal([]byte(TOTPSecret), "totp:cnguyen")}
	must(s.PutActivation(ctx, f.Activation))
	used := enroll.Activation{TokenHash: sealer.Hash("token", "token-of-dlee"), Username: "dlee", Mail: "dlee@example.com", Language: "en",
		CreatedBy: "cli:test", CreatedAt: now, ExpiresAt: now.Add(72 * time.Hour)}
	must(s.PutActivation(ctx, used))
	dlee := enroll.Enrollment{Username: "dlee", Phone: "+12015550174", Language: "en", State: enroll.StateActive, Method: "sms",
		CreatedAt: now, UpdatedAt: now, VerifiedAt: now}
	must(s.CompleteActivation(ctx, used.TokenHash, dlee))
	f.Enrollments = append(f.Enrollments, dlee)
	ended, err := s.EndedLink(ctx, used.TokenHash)
	must(err)
	f.Ended = ended

	m := enroll.OutboundMessage{Kind: enroll.KindSMS, To: phone, Sealed: sealer.Seal([]byte(SMSBody), "outbox"), Language: "fr",
		Purpose: "code", Username: "adupont", Priority: enroll.PriorityHigh, Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now}
	m.ID, err = s.EnqueueMessage(ctx, m)
	must(err)
	must(s.UpdateMessage(ctx, m.ID, func(mm *enroll.OutboundMessage) error { mm.ProviderID = sid; return nil }))
	f.Message = m
	f.Message.ProviderID = sid
	f.RedactionID, _, err = s.EnqueueRedaction(ctx, "SMfedcba9876543210fedcba9876543210", "code", "adupont", now)
	must(err)

	f.Mail = enroll.QueuedMail{Kind: "activation", To: "cnguyen@example.com", Username: "cnguyen",
		Sealed: sealer.Seal([]byte(MailBody), "mail"), State: enroll.MailQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now}
	f.Mail.ID, err = s.EnqueueMail(ctx, f.Mail)
	must(err)

	_, err = s.RecordLockout(ctx, lockUser, now.Add(-time.Hour), now)
	must(err)
	must(s.SetMonitorCursor(ctx, monitor, []byte("usnchanged=4242")))
	f.SMSCheck = enroll.SMSPasswordCheck{Username: "adupont", DN: "CN=adupont,OU=Staff,DC=example,DC=com", ResetAt: now, Due: now.Add(time.Hour)}
	must(s.ScheduleSMSPasswordCheck(ctx, f.SMSCheck))
	_, err = s.RecordReminder(ctx, remindUser, now.Add(5*24*time.Hour), 3, now)
	must(err)

	f.APIToken = enroll.APIToken{ID: "tok-1", Name: "grafana", Owner: "helpdesk", Scopes: []string{"read"}, CreatedAt: now, CreatedBy: "cli:test"}
	f.APIHash = sealer.Hash("api-token", APISecret)
	must(s.PutAPIToken(ctx, f.APIToken, f.APIHash))
	_, err = s.AcquireLease(ctx, "outbox", "node-1", now, time.Minute) // live: never copied
	must(err)
	return f
}

// Check reads the fixture back from s, at Now, through its API: every
// record as Fill wrote it, every secret opening with sealer (the target's
// key), the pending code matching under it. It writes only at the end:
// one audit event and one outbox message, whose IDs must follow the
// copied counters.
func (f *Fixture) Check(t testing.TB, s enroll.Store, sealer *enroll.Sealer) {
	t.Helper()
	ctx := t.Context()
	now := f.Now
	errorf := func(format string, a ...any) { t.Helper(); t.Errorf(format, a...) }
	open := func(what string, sealed []byte, purpose, want string) {
		t.Helper()
		plain, err := sealer.Open(sealed, purpose)
		if err != nil || string(plain) != want {
			errorf("%s: opens to %q, %v; want %q", what, plain, err, want)
		}
	}
	for _, want := range f.Enrollments {
		got, err := s.Enrollment(ctx, want.Username)
		if err != nil {
			errorf("Enrollment(%s): %v", want.Username, err)
			continue
		}
		if want.TOTPSealed != nil {
			open("enrollment "+want.Username+" TOTP secret", got.TOTPSealed, "totp:"+want.Username, TOTPSecret)
		}
		got.TOTPSealed, want.TOTPSealed = nil, nil
		if !equalJSON(got, want) {
			errorf("Enrollment(%s) = %+v, want %+v", want.Username, got, want)
		}
		if byPhone, err := s.EnrollmentByPhone(ctx, want.Phone); err != nil || byPhone.Username != want.Username {
			errorf("EnrollmentByPhone(%s) = %s, %v; want %s", want.Phone, byPhone.Username, err, want.Username)
		}
	}
	events, err := s.Audit(ctx, enroll.AuditFilter{})
	if err == nil && len(events) > len(f.Events) {
		events = events[:len(f.Events)] // events of the copy's own (a migration) follow
	}
	if err != nil || !equalJSON(events, f.Events) {
		errorf("Audit = %+v, %v; want %+v", events, err, f.Events)
	}
	if first, err := s.MarkMessage(ctx, sid, now, time.Hour); err != nil || first {
		errorf("MarkMessage(%s) = first %v, %v; want the copied mark", sid, first, err)
	}
	if out, err := s.OptedOut(ctx, optOut); err != nil || !out {
		errorf("OptedOut(%s) = %v, %v; want true", optOut, out, err)
	}
	if n, err := s.BudgetHits(ctx, rateKey, now, time.Hour); err != nil || n != 1 {
		errorf("BudgetHits(%s) = %d, %v; want the copied hit", rateKey, n, err)
	}
	if until, blocked, err := s.Blocked(ctx, guardKey, now); err != nil || !blocked || !until.Equal(now.Add(time.Hour)) {
		errorf("Blocked(%s) = %v until %v, %v; want the copied block until %v", guardKey, blocked, until, err, now.Add(time.Hour))
	}
	if sess, err := s.Session(ctx, SessionKey, now); err != nil || !equalJSON(sess, f.Session) {
		errorf("Session = %+v, %v; want %+v", sess, err, f.Session)
	}

	act, err := s.ActivationByUser(ctx, f.Activation.Username)
	if err != nil {
		errorf("ActivationByUser(%s): %v", f.Activation.Username, err)
	} else {
		open("the activation's TOTP secret", act.TOTPSealed, "totp:"+act.Username, TOTPSecret)
		open("the activation's code", act.CodeSealed, "code:"+act.TokenHash, Code)
		if !enroll.Equal(act.CodeHash, sealer.Hash("code", Code)) {
			errorf("the activation's code hash does not match the code under the target's key")
		}
		want := f.Activation
		want.TOTPSealed, want.CodeSealed, want.CodeHash, act.TOTPSealed, act.CodeSealed, act.CodeHash = nil, nil, "", nil, nil, ""
		if !equalJSON(act, want) {
			errorf("ActivationByUser = %+v, want %+v", act, want)
		}
		if byToken, err := s.ActivationByToken(ctx, f.Activation.TokenHash); err != nil || byToken.Username != want.Username {
			errorf("ActivationByToken = %s, %v; want %s (the token hash is copied as it is)", byToken.Username, err, want.Username)
		}
	}
	if l, err := s.EndedLink(ctx, f.Ended.TokenHash); err != nil || !equalJSON(l, f.Ended) {
		errorf("EndedLink = %+v, %v; want %+v", l, err, f.Ended)
	}

	if m, err := s.MessageByProviderID(ctx, sid); err != nil {
		errorf("MessageByProviderID(%s): %v", sid, err)
	} else {
		open("the outbox message's body", m.Sealed, "outbox", SMSBody)
		want := f.Message
		want.Sealed, m.Sealed = nil, nil
		want.UpdatedAt = m.UpdatedAt // UpdateMessage may set it
		if !equalJSON(m, want) {
			errorf("MessageByProviderID = %+v, want %+v", m, want)
		}
	}
	due, err := s.DueMessages(ctx, now.Add(time.Second), 10)
	if err != nil || len(due) != 2 || due[0].ID != f.RedactionID && due[1].ID != f.RedactionID {
		errorf("DueMessages = %d messages, %v; want the message and the redaction", len(due), err)
	}
	if id, created, err := s.EnqueueRedaction(ctx, "SMfedcba9876543210fedcba9876543210", "code", "adupont", now); err != nil || created || id != f.RedactionID {
		errorf("EnqueueRedaction again = %d, created %v, %v; want the copied %d", id, created, err, f.RedactionID)
	}
	mails, err := s.DueMail(ctx, now.Add(time.Second), 10)
	if err != nil || len(mails) != 1 || mails[0].ID != f.Mail.ID {
		errorf("DueMail = %+v, %v; want mail %d", mails, err, f.Mail.ID)
	} else {
		open("the queued mail's body", mails[0].Sealed, "mail", MailBody)
	}

	if first, err := s.RecordLockout(ctx, lockUser, now.Add(-time.Hour), now); err != nil || first {
		errorf("RecordLockout again = first %v, %v; want the copied one", first, err)
	}
	if c, err := s.MonitorCursor(ctx, monitor); err != nil || !bytes.Equal(c, []byte("usnchanged=4242")) {
		errorf("MonitorCursor = %q, %v", c, err)
	}
	if c, err := s.SMSPasswordCheck(ctx, f.SMSCheck.Username); err != nil || !equalJSON(c, f.SMSCheck) {
		errorf("SMSPasswordCheck = %+v, %v; want %+v", c, err, f.SMSCheck)
	}
	if cs, err := s.DueSMSPasswordChecks(ctx, f.SMSCheck.Due.Add(time.Second), 10); err != nil || len(cs) != 1 {
		errorf("DueSMSPasswordChecks = %+v, %v; want one", cs, err)
	}
	if first, err := s.RecordReminder(ctx, remindUser, now.Add(5*24*time.Hour), 3, now); err != nil || first {
		errorf("RecordReminder again = first %v, %v; want the copied one", first, err)
	}
	if tok, id, err := s.APITokenByHash(ctx, f.APIHash); err != nil || !equalJSON(tok, f.APIToken) {
		errorf("APITokenByHash = %+v %s, %v; want %+v", tok, id, err, f.APIToken)
	}

	// The counters came along: new IDs follow the copied ones.
	seq, err := s.AppendAudit(ctx, enroll.Event{Time: now, Actor: "cli:test", Action: "check", Outcome: "ok"})
	if last := f.Events[len(f.Events)-1].Seq; err != nil || seq <= last {
		errorf("AppendAudit after the copy = seq %d, %v; want one after %d", seq, err, last)
	}
	m := f.Message
	m.ID, m.ProviderID = 0, ""
	if id, err := s.EnqueueMessage(ctx, m); err != nil || id <= f.RedactionID {
		errorf("EnqueueMessage after the copy = ID %d, %v; want one after %d", id, err, f.RedactionID)
	}
}

// Stream is recs as a layout stream, its header counting them, and the
// counts.
func Stream(t testing.TB, recs []layout.Record) ([]byte, layout.Counts) {
	t.Helper()
	counts := layout.Counts{}
	for _, r := range recs {
		counts.Add(r.Key)
	}
	var buf bytes.Buffer
	w, err := layout.NewWriter(&buf, layout.Header{Source: "test", Counts: counts})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if w.Bytes() != int64(buf.Len()) {
		t.Errorf("Writer.Bytes = %d, wrote %d", w.Bytes(), buf.Len())
	}
	return buf.Bytes(), counts
}

// WantCounts checks the counts of a stream or a copy of the fixture:
// one record or more of every kind, none live.
func WantCounts(t testing.TB, what string, c layout.Counts) {
	t.Helper()
	for _, k := range Kinds {
		if c[k] == 0 {
			t.Errorf("%s: no %s record (counts: %s)", what, k, c)
		}
	}
	for k := range c {
		if layout.Live(k + "/") {
			t.Errorf("%s: %d %s records, which are never copied", what, c[k], k)
		}
	}
}

// equalJSON compares two records as their JSON (times compare by instant
// and zone offset both ways, as the stores keep them).
func equalJSON(a, b any) bool {
	return reflect.DeepEqual(jsonOf(a), jsonOf(b))
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	return string(b)
}
