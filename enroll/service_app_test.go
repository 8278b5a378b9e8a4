package enroll_test

import (
	"bytes"
	"errors"
	"image/png"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// oathtool returns the TOTP code of secret (base32) at the given time from
// OATH Toolkit's oathtool, an implementation independent of ours.
func oathtool(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatalf("oathtool is needed to check TOTP codes against an independent implementation "+
			"(Debian: apt-get install oathtool): %v", err)
	}
	out, err := exec.Command(path, "--totp", "-b", "--now", at.UTC().Format("2006-01-02 15:04:05 UTC"), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	code := strings.TrimSpace(string(out))
	if len(code) != 6 {
		t.Fatalf("oathtool printed %q, want a 6-digit code", out)
	}
	return code
}

// TestVerifyTOTPRFC6238 checks VerifyTOTP against RFC 6238's SHA-1 test
// vectors (truncated to 6 digits) and oathtool.
func TestVerifyTOTPRFC6238(t *testing.T) {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
	for _, tc := range []struct {
		unix int64
		code string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		at := time.Unix(tc.unix, 0)
		if got := oathtool(t, secret, at); got != tc.code {
			t.Fatalf("oathtool at %d = %s, RFC 6238 says %s", tc.unix, got, tc.code)
		}
		step, ok := enroll.VerifyTOTP(secret, tc.code, at, 0)
		if !ok || step != tc.unix/30 {
			t.Errorf("VerifyTOTP(RFC vector at %d) = %d, %v; want step %d", tc.unix, step, ok, tc.unix/30)
		}
		if _, ok := enroll.VerifyTOTP(secret, tc.code, at, tc.unix/30); ok {
			t.Errorf("VerifyTOTP accepted step %d a second time", tc.unix/30)
		}
	}
}

func TestVerifyTOTPWindow(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := t0.Add(10 * time.Second)
	cur := now.Unix() / 30
	for _, tc := range []struct {
		offset time.Duration
		ok     bool
	}{
		{-90 * time.Second, false}, {-60 * time.Second, false}, {-30 * time.Second, true},
		{0, true}, {30 * time.Second, true}, {60 * time.Second, false},
	} {
		code := oathtool(t, secret, now.Add(tc.offset))
		step, ok := enroll.VerifyTOTP(secret, code, now, 0)
		if ok != tc.ok {
			t.Errorf("code from %v away: accepted %v, want %v", tc.offset, ok, tc.ok)
		}
		if ok && step != cur+int64(tc.offset/(30*time.Second)) {
			t.Errorf("code from %v away matched step %d, want %d", tc.offset, step, cur+int64(tc.offset/(30*time.Second)))
		}
	}
	// lastStep: a step at or before it is refused even inside the window.
	prev := oathtool(t, secret, now.Add(-30*time.Second))
	if _, ok := enroll.VerifyTOTP(secret, prev, now, cur-1); ok {
		t.Error("a code of an already used step was accepted")
	}
	if _, ok := enroll.VerifyTOTP(secret, oathtool(t, secret, now), now, cur-1); !ok {
		t.Error("the current code was refused after the previous step was used")
	}
	for _, junk := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := enroll.VerifyTOTP(secret, junk, now, 0); ok {
			t.Errorf("VerifyTOTP(%q) accepted", junk)
		}
	}
}

func TestAppSetupAndEnroll(t *testing.T) {
	h := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.Issuer = "Example Corp" })
	token := h.activate("jdoe")
	setup, err := h.svc.StartApp(h.ctx, token, "(201) 555-0123")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(setup.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Example Corp:jdoe" ||
		q.Get("secret") != setup.Secret || q.Get("issuer") != "Example Corp" || q.Get("algorithm") != "SHA1" ||
		q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("URI %s: want otpauth://totp/Example Corp:jdoe with SHA1, 6 digits, 30 s", setup.URI)
	}
	if len(setup.Secret) != 32 { // 20 bytes in base32 without padding
		t.Errorf("secret %d base32 characters, want 32 (20 bytes)", len(setup.Secret))
	}
	img, err := png.Decode(bytes.NewReader(setup.QRPNG))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Errorf("QR code %dx%d, want 256x256", b.Dx(), b.Dy())
	}
	if n := len(h.messages()); n != 0 {
		t.Errorf("StartApp queued %d messages", n)
	}
	p, err := h.svc.Open(h.ctx, token)
	if err != nil || p.Step != enroll.StepVerify || p.Phone != phoneJdoe {
		t.Errorf("page after StartApp: %+v, %v", p, err)
	}

	// Reloading the page shows the same secret: the app may have scanned it.
	h.clock.Advance(45 * time.Second)
	again, err := h.svc.StartApp(h.ctx, token, phoneJdoe)
	if err != nil || again.Secret != setup.Secret || again.URI != setup.URI {
		t.Fatalf("StartApp again: %+v, %v; want the same secret", again, err)
	}

	now := h.clock.Now()
	p, err = h.svc.VerifyApp(h.ctx, token, oathtool(t, setup.Secret, now))
	if err != nil {
		t.Fatalf("VerifyApp with oathtool's code: %v", err)
	}
	if p.Step != enroll.StepDone {
		t.Errorf("page %+v, want StepDone", p)
	}
	e, err := h.store.Enrollment(h.ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if e.Method != "app" || e.Phone != phoneJdoe || e.State != enroll.StateActive || e.LastTOTPStep != now.Unix()/30 {
		t.Errorf("enrollment %+v: want method app, the phone, LastTOTPStep %d", e, now.Unix()/30)
	}
	secret, err := h.sealer.Open(e.TOTPSealed, "totp:jdoe")
	if err != nil || string(secret) != setup.Secret {
		t.Errorf("enrollment's sealed secret opens to %q, %v; want the app's secret", secret, err)
	}
	// The gateway checks later codes against the enrollment with the same rule.
	if _, ok := enroll.VerifyTOTP(string(secret), oathtool(t, setup.Secret, now), now, e.LastTOTPStep); ok {
		t.Error("the enrolling code is accepted again after enrollment")
	}
	enrolled := 0
	for _, m := range h.messages() {
		if m.Purpose == "enrolled" && m.To == phoneJdoe && h.body(m) == h.catalog.Text("en", "sms.enrolled", nil) {
			enrolled++
		}
	}
	if enrolled != 1 {
		t.Errorf("%d confirmation SMS, want 1", enrolled)
	}
	if evs := h.audit("enroll"); len(evs) != 1 || !strings.Contains(evs[0].Detail, "app") {
		t.Errorf("audit %+v, want one enroll event with method app", evs)
	}
	if _, err := h.svc.VerifyApp(h.ctx, token, oathtool(t, setup.Secret, now.Add(30*time.Second))); !errors.Is(err, enroll.ErrTokenUsed) {
		t.Errorf("VerifyApp after completion = %v, want ErrTokenUsed", err)
	}
}

// TestAppStepUsedOnce: a code accepted once is refused the second time,
// even when the first acceptance could not complete (the number was taken
// meanwhile); the next step's code then works.
func TestAppStepUsedOnce(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	setup, err := h.svc.StartApp(h.ctx, token, phoneJdoe)
	if err != nil {
		t.Fatal(err)
	}
	taken := enroll.Enrollment{Username: "asmith", Phone: phoneJdoe, Language: "en", State: enroll.StateActive,
		Method: "sms", CreatedAt: t0, UpdatedAt: t0, VerifiedAt: t0}
	if err := h.store.PutEnrollment(h.ctx, taken); err != nil {
		t.Fatal(err)
	}
	code := oathtool(t, setup.Secret, h.clock.Now())
	if _, err := h.svc.VerifyApp(h.ctx, token, code); err != enroll.ErrPhoneTaken {
		t.Fatalf("VerifyApp with the number taken = %v, want ErrPhoneTaken", err)
	}
	if err := h.store.DeleteEnrollment(h.ctx, "asmith"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Second) // same step
	_, err = h.svc.VerifyApp(h.ctx, token, code)
	wantErr(t, "the same step twice", err, enroll.ErrCodeWrong)
	h.clock.Advance(20 * time.Second) // next step
	if _, err := h.svc.VerifyApp(h.ctx, token, oathtool(t, setup.Secret, h.clock.Now())); err != nil {
		t.Fatalf("next step's code: %v", err)
	}
}

func TestAppOldCodeRefused(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	setup, err := h.svc.StartApp(h.ctx, token, phoneJdoe)
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	_, err = h.svc.VerifyApp(h.ctx, token, oathtool(t, setup.Secret, now.Add(-60*time.Second)))
	if we := asErr[*enroll.WrongCodeError](t, "code from 2 steps ago", err); we.AttemptsLeft != 4 {
		t.Errorf("%d tries left, want 4", we.AttemptsLeft)
	}
	if _, err := h.svc.VerifyApp(h.ctx, token, oathtool(t, setup.Secret, now.Add(-30*time.Second))); err != nil {
		t.Errorf("code from 1 step ago (skew 1): %v", err)
	}
}

func TestAppWrongCodesLockOut(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	setup, err := h.svc.StartApp(h.ctx, token, phoneJdoe)
	if err != nil {
		t.Fatal(err)
	}
	right := oathtool(t, setup.Secret, h.clock.Now())
	bad := wrongCode(right)
	for range 4 {
		if _, err := h.svc.VerifyApp(h.ctx, token, bad); !errors.Is(err, enroll.ErrCodeWrong) {
			t.Fatalf("wrong app code = %v, want ErrCodeWrong", err)
		}
	}
	_, err = h.svc.VerifyApp(h.ctx, token, bad)
	asErr[*enroll.LockedError](t, "5th wrong app code", err)
	_, err = h.svc.VerifyApp(h.ctx, token, right)
	asErr[*enroll.LockedError](t, "right app code while locked", err)
	h.clock.Advance(10 * time.Minute)
	if _, err := h.svc.VerifyApp(h.ctx, token, oathtool(t, setup.Secret, h.clock.Now())); err != nil {
		t.Fatalf("app code after the lockout: %v", err)
	}
}

// TestAppNumberChangeKillsSMSCode: a code sent to one number must not
// verify another number entered for the app.
func TestAppNumberChangeKillsSMSCode(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()
	if _, err := h.svc.StartApp(h.ctx, token, phoneOther); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.VerifyCode(h.ctx, token, code); err != enroll.ErrNoCode {
		t.Errorf("old number's code after switching numbers = %v, want ErrNoCode", err)
	}
	if _, err := h.store.Enrollment(h.ctx, "jdoe"); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("jdoe enrolled with an unverified number: %v", err)
	}
}
