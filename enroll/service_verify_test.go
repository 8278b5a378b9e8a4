package enroll_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
)

func TestSendCodeQueuesSMS(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	p := h.sendCode(token, "(201) 555-0123")
	want := enroll.Page{
		Username: "jdoe", DisplayName: "John Doe", Language: "en", Step: enroll.StepVerify,
		Phone: phoneJdoe, PrefillPhone: phoneJdoe, Methods: []string{"sms", "voice", "app"},
		ResendAt: t0.Add(60 * time.Second), CodeExpires: t0.Add(40 * time.Minute), AttemptsLeft: 5,
		ExpiresAt: t0.Add(168 * time.Hour),
	}
	if !pageEqual(p, want) {
		t.Errorf("page %+v\nwant %+v", p, want)
	}
	ms := h.messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages queued, want 1", len(ms))
	}
	m := ms[0]
	if m.Kind != enroll.KindSMS || m.To != phoneJdoe || m.Purpose != "code" || m.Priority != enroll.PriorityHigh ||
		m.Status != enroll.StatusQueued || m.Language != "en" || m.Username != "jdoe" || !m.NextAttempt.Equal(t0) {
		t.Errorf("queued %+v", m)
	}
	code := h.lastCode()
	if got, want := h.body(m), h.catalog.Text("en", "sms.code", map[string]string{"code": code, "minutes": "40"}); got != want {
		t.Errorf("SMS body %q, want %q", got, want)
	}
	if h.notified.Load() != 1 {
		t.Errorf("outbox notified %d times, want 1", h.notified.Load())
	}
	a := h.activationOf("jdoe")
	if a.CodeHash != h.sealer.Hash("code", code) || a.CodeMethod != "sms" || !a.CodeSentAt.Equal(t0) {
		t.Errorf("activation %+v: code not recorded as sent by SMS at t0", a)
	}
}

func TestResendTiming(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()

	resendAt := t0.Add(60 * time.Second)
	checkRefused := func(what string, err error) {
		t.Helper()
		if re := asErr[*enroll.ResendError](t, what, err); !re.At.Equal(resendAt) {
			t.Errorf("%s: resend at %v, want %v", what, re.At, resendAt)
		}
	}
	// The same number and method again at once is the same request (a
	// double tap): the same page, nothing sent again.
	if p, err := h.svc.SendCode(h.ctx, token, "201 555 0123", "sms"); err != nil || !p.ResendAt.Equal(resendAt) || p.Phone != phoneJdoe {
		t.Errorf("SendCode again at once = %+v, %v; want the same page", p, err)
	}
	_, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "voice")
	checkRefused("SendCode by voice at once", err)
	_, err = h.svc.Resend(h.ctx, token, "sms")
	checkRefused("Resend at once", err)
	_, err = h.svc.Resend(h.ctx, token, "voice")
	checkRefused("a call at once", err)
	_, err = h.svc.SendCode(h.ctx, token, phoneOther, "sms")
	checkRefused("another number at once", err)
	h.clock.Advance(59 * time.Second)
	_, err = h.svc.Resend(h.ctx, token, "sms")
	checkRefused("Resend after 59s", err)
	if n := len(h.messages()); n != 1 {
		t.Fatalf("%d messages after refused sends, want 1", n)
	}

	h.clock.Advance(time.Second)
	p, err := h.svc.Resend(h.ctx, token, "sms")
	if err != nil {
		t.Fatalf("Resend after 60s: %v", err)
	}
	if got := h.lastCode(); got != code {
		t.Errorf("Resend sent %s, want the same code %s", got, code)
	}
	if !p.ResendAt.Equal(t0.Add(120*time.Second)) || !p.CodeExpires.Equal(t0.Add(40*time.Minute)) {
		t.Errorf("after resend: ResendAt %v CodeExpires %v; want t0+2m and the first expiry", p.ResendAt, p.CodeExpires)
	}
	// The resent SMS says how long the code has left, not the full TTL.
	ms := h.messages()
	if got, want := h.body(ms[1]), h.catalog.Text("en", "sms.code", map[string]string{"code": code, "minutes": "39"}); got != want {
		t.Errorf("resent SMS %q, want %q", got, want)
	}

	// The same number typed again keeps the code (and its wrong tries).
	if _, err := h.svc.VerifyCode(h.ctx, token, wrongCode(code)); err == nil {
		t.Fatal("wrong code accepted")
	}
	h.clock.Advance(time.Minute)
	p, err = h.svc.SendCode(h.ctx, token, "201-555-0123", "sms")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.lastCode(); got != code {
		t.Errorf("same number again got %s, want the same code %s", got, code)
	}
	if p.AttemptsLeft != 4 {
		t.Errorf("re-entering the number reset the tries: %d left, want 4", p.AttemptsLeft)
	}

	// Another number gets a new code; the old one no longer verifies.
	h.clock.Advance(time.Minute)
	p, err = h.svc.SendCode(h.ctx, token, phoneOther, "sms")
	if err != nil {
		t.Fatal(err)
	}
	newCode := h.lastCode()
	ms = h.messages()
	if ms[len(ms)-1].To != phoneOther || p.Phone != phoneOther || p.AttemptsLeft != 5 ||
		!p.CodeExpires.Equal(h.clock.Now().Add(40*time.Minute)) {
		t.Errorf("new number: page %+v, last message to %s", p, ms[len(ms)-1].To)
	}
	if a := h.activationOf("jdoe"); a.CodeHash != h.sealer.Hash("code", newCode) {
		t.Error("the stored code is not the one sent to the new number")
	}
	if newCode != code {
		if _, err := h.svc.VerifyCode(h.ctx, token, code); !errors.Is(err, enroll.ErrCodeWrong) {
			t.Errorf("the first number's code on the second number: %v, want ErrCodeWrong", err)
		}
	}
}

func TestCodeExpiry(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()
	h.clock.Advance(40 * time.Minute)
	if _, err := h.svc.VerifyCode(h.ctx, token, code); err != enroll.ErrCodeExpired {
		t.Fatalf("VerifyCode after 40 min = %v, want ErrCodeExpired", err)
	}
	// Expired: a resend makes a new code, valid for the full TTL again.
	p, err := h.svc.Resend(h.ctx, token, "sms")
	if err != nil {
		t.Fatal(err)
	}
	if !p.CodeExpires.Equal(h.clock.Now().Add(40 * time.Minute)) {
		t.Errorf("new code expires %v, want now+40m", p.CodeExpires)
	}
	if _, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); err != nil {
		t.Fatalf("new code: %v", err)
	}
}

func TestNoCodeYet(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	if _, err := h.svc.VerifyCode(h.ctx, token, "123456"); err != enroll.ErrNoCode {
		t.Errorf("VerifyCode before any send = %v, want ErrNoCode", err)
	}
	if _, err := h.svc.Resend(h.ctx, token, "sms"); err != enroll.ErrNoCode {
		t.Errorf("Resend before any send = %v, want ErrNoCode", err)
	}
	if _, err := h.svc.VerifyApp(h.ctx, token, "123456"); err != enroll.ErrNoCode {
		t.Errorf("VerifyApp before StartApp = %v, want ErrNoCode", err)
	}
}

func TestWrongCodesLockOutThenRecover(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()
	bad := wrongCode(code)
	for left := 4; left >= 1; left-- {
		_, err := h.svc.VerifyCode(h.ctx, token, bad)
		if we := asErr[*enroll.WrongCodeError](t, "wrong code", err); we.AttemptsLeft != left {
			t.Errorf("%d tries left, want %d", we.AttemptsLeft, left)
		}
		wantErr(t, "wrong code", err, enroll.ErrCodeWrong)
		if p, _ := h.svc.Open(h.ctx, token); p.AttemptsLeft != left {
			t.Errorf("page shows %d tries left, want %d", p.AttemptsLeft, left)
		}
	}
	until := t0.Add(10 * time.Minute)
	checkLocked := func(what string, err error) {
		t.Helper()
		if le := asErr[*enroll.LockedError](t, what, err); !le.Until.Equal(until) {
			t.Errorf("%s: locked until %v, want %v", what, le.Until, until)
		}
	}
	_, err := h.svc.VerifyCode(h.ctx, token, bad)
	checkLocked("5th wrong code", err)
	_, err = h.svc.VerifyCode(h.ctx, token, code)
	checkLocked("the right code while locked", err)
	h.clock.Advance(2 * time.Minute)
	_, err = h.svc.SendCode(h.ctx, token, phoneJdoe, "sms")
	checkLocked("SendCode while locked", err)
	_, err = h.svc.Resend(h.ctx, token, "voice")
	checkLocked("a call while locked", err)
	_, err = h.svc.SendCode(h.ctx, token, phoneOther, "sms")
	checkLocked("another number while locked", err)
	if p, _ := h.svc.Open(h.ctx, token); !p.LockedUntil.Equal(until) {
		t.Errorf("page LockedUntil %v, want %v", p.LockedUntil, until)
	}
	if n := len(h.messages()); n != 1 {
		t.Errorf("%d messages, want only the first code", n)
	}
	if evs := h.audit("enroll_locked"); len(evs) != 1 || evs[0].Username != "jdoe" {
		t.Errorf("audit %+v, want one enroll_locked for jdoe", evs)
	}

	// After 10 minutes the dead code stays dead; a new one works.
	h.clock.Advance(8*time.Minute - time.Second)
	_, err = h.svc.Resend(h.ctx, token, "sms")
	checkLocked("1s before the end of the lockout", err)
	h.clock.Advance(time.Second)
	if _, err := h.svc.VerifyCode(h.ctx, token, code); err != enroll.ErrNoCode {
		t.Errorf("the killed code after the lockout = %v, want ErrNoCode", err)
	}
	p, err := h.svc.Resend(h.ctx, token, "sms")
	if err != nil {
		t.Fatalf("Resend after the lockout: %v", err)
	}
	if p.AttemptsLeft != 5 || !p.LockedUntil.IsZero() {
		t.Errorf("after the lockout: %+v, want 5 tries and no lock", p)
	}
	if p, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); err != nil || p.Step != enroll.StepDone {
		t.Fatalf("new code after the lockout: %+v, %v", p, err)
	}
}

func TestCodeInputForms(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()
	// Four junk inputs count as wrong tries; the fifth try is the real code.
	for _, junk := range []string{"", "12345", code + "0", "12345a"} {
		if _, err := h.svc.VerifyCode(h.ctx, token, junk); !errors.Is(err, enroll.ErrCodeWrong) {
			t.Errorf("VerifyCode(%q) = %v, want ErrCodeWrong", junk, err)
		}
	}
	if p, err := h.svc.VerifyCode(h.ctx, token, " "+code[:3]+" "+code[3:]+" "); err != nil || p.Step != enroll.StepDone {
		t.Errorf("code typed with spaces: %+v, %v", p, err)
	}
}

func TestPhoneTakenByAnotherUser(t *testing.T) {
	h := newHarness(t)
	err := h.store.PutEnrollment(h.ctx, enroll.Enrollment{Username: "asmith", Phone: phoneJdoe, Language: "en",
		State: enroll.StateActive, Method: "sms", CreatedAt: t0, UpdatedAt: t0, VerifiedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	token := h.activate("jdoe")
	for _, method := range []string{"sms", "voice"} {
		if _, err := h.svc.SendCode(h.ctx, token, "+1 201 555 0123", method); err != enroll.ErrPhoneTaken {
			t.Errorf("SendCode(%s) to asmith's number = %v, want ErrPhoneTaken", method, err)
		}
	}
	if _, err := h.svc.StartApp(h.ctx, token, phoneJdoe); err != enroll.ErrPhoneTaken {
		t.Errorf("StartApp with asmith's number = %v, want ErrPhoneTaken", err)
	}
	if ms := h.messages(); len(ms) != 0 {
		t.Errorf("%d messages queued to a number that cannot be enrolled", len(ms))
	}
	if p, _ := h.svc.Open(h.ctx, token); p.Step != enroll.StepPhone {
		t.Errorf("page after refusal: step %s, want phone", p.Step)
	}

	// A number taken after the code was sent: the resend is refused too,
	// and the right code cannot complete.
	h.sendCode(token, phoneOther)
	err = h.store.PutEnrollment(h.ctx, enroll.Enrollment{Username: "asmith", Phone: phoneOther, Language: "en",
		State: enroll.StateActive, Method: "sms", CreatedAt: t0, UpdatedAt: t0, VerifiedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Resend(h.ctx, token, "sms"); err != enroll.ErrPhoneTaken {
		t.Errorf("Resend to a number taken meanwhile = %v, want ErrPhoneTaken", err)
	}
	if _, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); err != enroll.ErrPhoneTaken {
		t.Errorf("VerifyCode for a number taken meanwhile = %v, want ErrPhoneTaken", err)
	}
	if n := len(h.messages()); n != 1 {
		t.Errorf("%d messages, want only the first code", n)
	}
}

func TestReEnrollSameNumber(t *testing.T) {
	h := newHarness(t)
	created := t0.Add(-30 * 24 * time.Hour)
	err := h.store.PutEnrollment(h.ctx, enroll.Enrollment{Username: "jdoe", Phone: phoneJdoe, Language: "en",
		State: enroll.StateActive, Method: "sms", CreatedAt: created, UpdatedAt: created, VerifiedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe) // jdoe's own number is not "taken"
	h.clock.Advance(time.Minute)
	if _, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); err != nil {
		t.Fatal(err)
	}
	e, err := h.store.Enrollment(h.ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	if !e.CreatedAt.Equal(created) || !e.UpdatedAt.Equal(now) || !e.VerifiedAt.Equal(now) {
		t.Errorf("re-enrollment times created %v updated %v verified %v; want the first CreatedAt kept",
			e.CreatedAt, e.UpdatedAt, e.VerifiedAt)
	}
}

func TestCountryNotAllowed(t *testing.T) {
	h := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.AllowedCountries = []string{"fr"} })
	token := h.activate("jdoe")
	if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "sms"); err != enroll.ErrCountryNotAllowed {
		t.Errorf("US number = %v, want ErrCountryNotAllowed", err)
	}
	if _, err := h.svc.StartApp(h.ctx, token, phoneJdoe); err != enroll.ErrCountryNotAllowed {
		t.Errorf("StartApp with a US number = %v, want ErrCountryNotAllowed", err)
	}
	if _, err := h.svc.SendCode(h.ctx, token, "+1 613 555 0181", "sms"); err != enroll.ErrCountryNotAllowed {
		t.Errorf("Canadian number = %v, want ErrCountryNotAllowed", err)
	}
	if n := len(h.messages()); n != 0 {
		t.Fatalf("%d messages queued to refused countries", n)
	}
	if p, err := h.svc.SendCode(h.ctx, token, "+33 6 12 34 56 78", "sms"); err != nil || p.Phone != phoneFR {
		t.Errorf("French number: %+v, %v", p, err)
	}
}

func TestBadPhone(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	for _, raw := range []string{"", "call me", "+1 999", "555-CALL-NOW"} {
		_, err := h.svc.SendCode(h.ctx, token, raw, "sms")
		asErr[*enroll.PhoneError](t, "SendCode("+raw+")", err)
		wantErr(t, "SendCode("+raw+")", err, enroll.ErrInvalid)
	}
	if n := len(h.messages()); n != 0 {
		t.Errorf("%d messages queued for bad numbers", n)
	}
}

func TestMethodOff(t *testing.T) {
	h := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.Methods = []string{"sms"} })
	token := h.activate("jdoe")
	if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "voice"); err != enroll.ErrMethodOff {
		t.Errorf("SendCode(voice) = %v, want ErrMethodOff", err)
	}
	if _, err := h.svc.StartApp(h.ctx, token, phoneJdoe); err != enroll.ErrMethodOff {
		t.Errorf("StartApp = %v, want ErrMethodOff", err)
	}
	if _, err := h.svc.VerifyApp(h.ctx, token, "123456"); err != enroll.ErrMethodOff {
		t.Errorf("VerifyApp = %v, want ErrMethodOff", err)
	}
	if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "fax"); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("SendCode(fax) = %v, want ErrInvalid", err)
	}
	h.sendCode(token, phoneJdoe)
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Resend(h.ctx, token, "voice"); err != enroll.ErrMethodOff {
		t.Errorf("Resend(voice) = %v, want ErrMethodOff", err)
	}
	if n := len(h.messages()); n != 1 {
		t.Errorf("%d messages, want the one SMS", n)
	}

	h = newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.Methods = []string{"app"} })
	token = h.activate("jdoe")
	if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "sms"); err != enroll.ErrMethodOff {
		t.Errorf("SendCode(sms) with only the app = %v, want ErrMethodOff", err)
	}
}

func TestVoiceCallReadsDigits(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "voice"); err != nil {
		t.Fatal(err)
	}
	ms := h.messages()
	if len(ms) != 1 || ms[0].Kind != enroll.KindCall || ms[0].To != phoneJdoe || ms[0].Language != "en" ||
		ms[0].Priority != enroll.PriorityHigh || ms[0].Purpose != "code" {
		t.Fatalf("queued %+v, want one call to %s", ms, phoneJdoe)
	}
	code := h.lastCode()
	digits := strings.Join(strings.Split(code, ""), ", ")
	want := "Your ReplyReset verification code is " + digits + ". Again: " + digits + "."
	if got := h.body(ms[0]); got != want {
		t.Errorf("call text %q, want %q", got, want)
	}
	if got := h.body(ms[0]); strings.Contains(got, code) {
		t.Errorf("call text %q has the code as one number: it would be read as a number, not digit by digit", got)
	}

	// A second call (or an SMS) sends the same code; the method recorded
	// is the last one used.
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Resend(h.ctx, token, "voice"); err != nil {
		t.Fatal(err)
	}
	if h.lastCode() != code {
		t.Error("the second call read another code")
	}
	if _, err := h.svc.VerifyCode(h.ctx, token, code); err != nil {
		t.Fatal(err)
	}
	if e, _ := h.store.Enrollment(h.ctx, "jdoe"); e.Method != "voice" {
		t.Errorf("method %q, want voice", e.Method)
	}

	// French: the call is read in French.
	h2 := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.DefaultLanguage = "fr" })
	token = h2.activate("jdoe")
	if _, err := h2.svc.SendCode(h2.ctx, token, phoneJdoe, "voice"); err != nil {
		t.Fatal(err)
	}
	ms = h2.messages()
	code = h2.lastCode()
	want = h2.catalog.Text("fr", "voice.code", map[string]string{"digits": strings.Join(strings.Split(code, ""), ", ")})
	if got := h2.body(ms[0]); got != want || ms[0].Language != "fr" {
		t.Errorf("French call %q (%s), want %q", got, ms[0].Language, want)
	}
}

func TestCompletionBySMS(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	h.clock.Advance(3 * time.Minute)
	now := h.clock.Now()
	p, err := h.svc.VerifyCode(h.ctx, token, h.lastCode())
	if err != nil {
		t.Fatal(err)
	}
	if p.Step != enroll.StepDone || p.Phone != phoneJdoe || p.Username != "jdoe" || p.DisplayName != "John Doe" {
		t.Errorf("page %+v, want StepDone for jdoe with the phone", p)
	}
	e, err := h.store.Enrollment(h.ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	want := enroll.Enrollment{Username: "jdoe", Phone: phoneJdoe, Language: "en", State: enroll.StateActive,
		Method: "sms", CreatedAt: now, UpdatedAt: now, VerifiedAt: now, Mail: "jdoe@example.com"}
	if e.Username != want.Username || e.Phone != want.Phone || e.Language != want.Language || e.State != want.State ||
		e.Method != want.Method || !e.CreatedAt.Equal(now) || !e.UpdatedAt.Equal(now) || !e.VerifiedAt.Equal(now) ||
		e.Mail != want.Mail || e.TOTPSealed != nil || e.LastTOTPStep != 0 {
		t.Errorf("enrollment %+v\nwant %+v", e, want)
	}
	if owner, err := h.store.EnrollmentByPhone(h.ctx, phoneJdoe); err != nil || owner.Username != "jdoe" {
		t.Errorf("phone index: %+v, %v", owner, err)
	}

	var enrolled []enroll.OutboundMessage
	for _, m := range h.messages() {
		if m.Purpose == "enrolled" {
			enrolled = append(enrolled, m)
		}
	}
	if len(enrolled) != 1 {
		t.Fatalf("%d enrolled messages, want exactly 1", len(enrolled))
	}
	m := enrolled[0]
	if m.Kind != enroll.KindSMS || m.To != phoneJdoe || m.Priority != enroll.PriorityHigh || m.Username != "jdoe" {
		t.Errorf("confirmation %+v", m)
	}
	if got, want := h.body(m), h.catalog.Text("en", "sms.enrolled", nil); got != want {
		t.Errorf("confirmation text %q, want %q", got, want)
	}
	if !strings.Contains(h.body(m), "Text RESET to this number") {
		t.Errorf("confirmation %q does not tell how to reset", h.body(m))
	}

	sent := h.mailer.Sent()
	if len(sent) != 2 || sent[1].To != "jdoe@example.com" || sent[1].Subject != "enrolled|en" {
		t.Errorf("mails %+v, want the activation then the enrolled mail", sent)
	}
	if calls := h.renderer.Calls(); calls[1].Data["phone"] != phoneJdoe || calls[1].Data["method"] != "sms" {
		t.Errorf("enrolled mail data %+v, want the phone (the template masks it) and the method", calls[1].Data)
	}
	evs := h.audit("enroll")
	if len(evs) != 1 || evs[0].Username != "jdoe" || evs[0].Outcome != "ok" || evs[0].Phone != phoneJdoe ||
		!strings.Contains(evs[0].Detail, "sms") {
		t.Errorf("audit %+v, want one enroll event with method sms", evs)
	}

	// The link is used up.
	// The link is used up: reopening it says the user is enrolled.
	var used *enroll.LinkUsedError
	if _, err := h.svc.Open(h.ctx, token); !errors.As(err, &used) || used.Language != "en" {
		t.Errorf("Open after completion = %v, want a LinkUsedError in en", err)
	}
	if _, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); !errors.Is(err, enroll.ErrTokenUsed) || !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("VerifyCode again = %v, want ErrTokenUsed (an ErrTokenUnknown)", err)
	}
	// Deactivated since: the link is just unknown.
	if _, err := h.svc.Deactivate(h.ctx, "jdoe", "admin:root"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Open(h.ctx, token); err != enroll.ErrTokenUnknown {
		t.Errorf("Open after deactivation = %v, want ErrTokenUnknown", err)
	}
}

func TestCompletionMailFailureKeepsEnrollment(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.mailer.Fail = func(m notify.Mail) error {
		if strings.HasPrefix(m.Subject, "enrolled") {
			return errors.New("smtp: 451 try again later")
		}
		return nil
	}
	h.sendCode(token, phoneJdoe)
	if _, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); err != nil {
		t.Fatalf("a failed email undid the enrollment: %v", err)
	}
	if e, err := h.store.Enrollment(h.ctx, "jdoe"); err != nil || e.State != enroll.StateActive {
		t.Errorf("enrollment %+v, %v", e, err)
	}
	evs := h.audit("enroll_notice")
	if len(evs) != 1 || evs[0].Outcome != "error" || !strings.Contains(evs[0].Detail, "email") {
		t.Errorf("audit %+v, want the failed email recorded", evs)
	}
	if !strings.Contains(h.logs.String(), "enrolled email not sent") {
		t.Error("the failed email is not logged")
	}
}

func TestCompletionWithMailOff(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	// Mail turned off between activation and enrollment (a restart).
	h.svc = enroll.NewService(enroll.ServiceDeps{
		Store: h.store, Directory: h.users, Messages: h.catalog, Sealer: h.sealer, Outbox: h.queue, Now: h.clock.Now,
	}, h.settings)
	h.sendCode(token, phoneJdoe)
	if p, err := h.svc.VerifyCode(h.ctx, token, h.lastCode()); err != nil || p.Step != enroll.StepDone {
		t.Fatalf("VerifyCode with mail off: %+v, %v", p, err)
	}
	if n := len(h.mailer.Sent()); n != 1 {
		t.Errorf("%d mails, want only the activation", n)
	}
}

// TestConcurrentWrongCodes: 20 wrong codes at once count exactly
// max_attempts tries, never more, because each try is counted inside the
// store's write transaction.
func TestConcurrentWrongCodes(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	bad := wrongCode(h.lastCode())

	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = h.svc.VerifyCode(h.ctx, token, bad) })
	}
	wg.Wait()
	var wrong, locked int
	seen := map[int]bool{}
	for _, err := range errs {
		var we *enroll.WrongCodeError
		var le *enroll.LockedError
		switch {
		case errors.As(err, &we):
			wrong++
			if seen[we.AttemptsLeft] {
				t.Errorf("two tries were told %d tries left: a try was counted twice or not at all", we.AttemptsLeft)
			}
			seen[we.AttemptsLeft] = true
		case errors.As(err, &le):
			locked++
		default:
			t.Errorf("unexpected answer %v", err)
		}
	}
	if wrong != 4 || locked != n-4 {
		t.Errorf("%d wrong-code answers and %d lockouts; want 4 and %d", wrong, locked, n-4)
	}
	a := h.activationOf("jdoe")
	if a.CodeHash != "" || !a.LockedUntil.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("after 20 wrong tries: code hash %q, locked until %v; want the code dead and a 10 min lock",
			a.CodeHash, a.LockedUntil)
	}
	if evs := h.audit("enroll_locked"); len(evs) != 1 {
		t.Errorf("%d lockout events, want 1", len(evs))
	}
}

// TestConcurrentRightCodes: the right code sent many times at once
// enrolls once and sends one confirmation.
func TestConcurrentRightCodes(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = h.svc.VerifyCode(h.ctx, token, code) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, enroll.ErrTokenUsed): // the others: "you're enrolled"
		default:
			t.Errorf("unexpected answer %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d successful completions, want 1", ok)
	}
	confirmations := 0
	for _, m := range h.messages() {
		if m.Purpose == "enrolled" {
			confirmations++
		}
	}
	if confirmations != 1 || len(h.audit("enroll")) != 1 {
		t.Errorf("%d confirmations and %d enroll events, want 1 each", confirmations, len(h.audit("enroll")))
	}
}
