package enroll_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
)

func TestActivateMailsLinkAndOpens(t *testing.T) {
	h := newHarness(t)
	res, err := h.svc.Activate(h.ctx, "JDoe", "admin:root")
	if err != nil {
		t.Fatal(err)
	}
	want := enroll.ActivationResult{Username: "jdoe", Mail: "jdoe@example.com", ExpiresAt: t0.Add(168 * time.Hour)}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	sent := h.mailer.Sent()
	if len(sent) != 1 || sent[0].To != "jdoe@example.com" || sent[0].Subject != "activation|en" ||
		sent[0].Text == "" || sent[0].HTML == "" {
		t.Fatalf("mails %+v, want one activation to jdoe@example.com with text and HTML", sent)
	}
	token := h.lastToken()
	if len(token) != 43 {
		t.Errorf("token %d characters long, want 43 (32 bytes, base64url without padding)", len(token))
	}
	if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != 32 {
		t.Errorf("token is not 32 bytes of base64url: %v", err)
	}
	calls := h.renderer.Calls()
	if len(calls) != 1 || calls[0].Name != "activation" || calls[0].Lang != "en" ||
		calls[0].Data["display_name"] != "John Doe" || calls[0].Data["username"] != "jdoe" || calls[0].Data["expires"] == "" {
		t.Errorf("render calls %+v", calls)
	}

	p, err := h.svc.Open(h.ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	wantPage := enroll.Page{
		Username: "jdoe", DisplayName: "John Doe", Language: "en", Step: enroll.StepPhone,
		PrefillPhone: phoneJdoe, Methods: []string{"sms", "voice", "app"}, ExpiresAt: t0.Add(168 * time.Hour),
	}
	if !pageEqual(p, wantPage) {
		t.Errorf("page %+v, want %+v", p, wantPage)
	}

	a := h.activationOf("jdoe")
	if a.TokenHash != h.sealer.Hash("token", token) || a.Mail != "jdoe@example.com" || a.CreatedBy != "admin:root" ||
		!a.CreatedAt.Equal(t0) || a.Language != "en" {
		t.Errorf("stored activation %+v", a)
	}
	evs := h.audit("activate")
	if len(evs) != 1 || evs[0].Actor != "admin:root" || evs[0].Username != "JDoe" || evs[0].Outcome != "ok" {
		t.Errorf("audit %+v, want one ok activate by admin:root", evs)
	}
	if strings.Contains(h.logs.String(), token) {
		t.Error("the token is in the log")
	}
}

func pageEqual(a, b enroll.Page) bool {
	return slices.Equal(a.Methods, b.Methods) && func() bool {
		a.Methods, b.Methods = nil, nil
		return a.Username == b.Username && a.DisplayName == b.DisplayName && a.Language == b.Language &&
			a.Step == b.Step && a.Phone == b.Phone && a.PrefillPhone == b.PrefillPhone &&
			a.ResendAt.Equal(b.ResendAt) && a.CodeExpires.Equal(b.CodeExpires) &&
			a.AttemptsLeft == b.AttemptsLeft && a.LockedUntil.Equal(b.LockedUntil) && a.ExpiresAt.Equal(b.ExpiresAt)
	}()
}

// wantNothingStored checks that username has no activation and no
// activation mail went out.
func wantNothingStored(t *testing.T, h *harness, username string) {
	t.Helper()
	if a, err := h.store.ActivationByUser(h.ctx, username); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("activation of %s after a failed Activate: %+v, %v", username, a, err)
	}
}

func TestActivateRefusals(t *testing.T) {
	t.Run("unknown user", func(t *testing.T) {
		h := newHarness(t)
		_, err := h.svc.Activate(h.ctx, "ghost", "admin:root")
		wantErr(t, "Activate(ghost)", err, directory.ErrNotFound)
		if !strings.Contains(err.Error(), "not in the directory") {
			t.Errorf("error %q does not say the user is not in the directory", err)
		}
		wantNothingStored(t, h, "ghost")
		if len(h.mailer.Sent()) != 0 {
			t.Error("a mail was sent")
		}
		if evs := h.audit("activate"); len(evs) != 1 || evs[0].Outcome == "ok" {
			t.Errorf("audit %+v, want one refused activate", evs)
		}
	})
	t.Run("no mail", func(t *testing.T) {
		h := newHarness(t)
		_, err := h.svc.Activate(h.ctx, "nomail", "admin:root")
		wantErr(t, "Activate(nomail)", err, enroll.ErrNoMail)
		wantNothingStored(t, h, "nomail")
		if len(h.mailer.Sent()) != 0 {
			t.Error("a mail was sent")
		}
	})
	t.Run("mail off", func(t *testing.T) {
		h := newHarness(t, func(d *enroll.ServiceDeps, _ *enroll.ServiceSettings) { d.Mailer = nil })
		_, err := h.svc.Activate(h.ctx, "jdoe", "admin:root")
		wantErr(t, "Activate with mail off", err, enroll.ErrMailOff)
		wantNothingStored(t, h, "jdoe")
	})
	t.Run("directory down", func(t *testing.T) {
		h := newHarness(t, func(d *enroll.ServiceDeps, _ *enroll.ServiceSettings) { d.Directory = downDirectory{} })
		_, err := h.svc.Activate(h.ctx, "jdoe", "admin:root")
		wantErr(t, "Activate with the directory down", err, directory.ErrUnavailable)
		wantNothingStored(t, h, "jdoe")
	})
}

type downDirectory struct{}

func (downDirectory) FindUser(context.Context, string) (directory.User, error) {
	return directory.User{}, directory.ErrUnavailable
}

func TestActivateMailFailureStoresNothing(t *testing.T) {
	h := newHarness(t)
	smtpDown := errors.New("smtp: 421 service not available")
	h.mailer.Fail = func(notify.Mail) error { return smtpDown }
	_, err := h.svc.Activate(h.ctx, "jdoe", "admin:root")
	wantErr(t, "Activate with SMTP down", err, smtpDown)
	wantNothingStored(t, h, "jdoe")
	// The link in the mail that failed does not work either.
	if _, err := h.svc.Open(h.ctx, h.lastToken()); err != enroll.ErrTokenUnknown {
		t.Errorf("Open(unsent token) = %v, want ErrTokenUnknown", err)
	}
	if evs := h.audit("activate"); len(evs) != 1 || evs[0].Outcome != "error" {
		t.Errorf("audit %+v, want one activate with outcome error", evs)
	}
}

func TestActivateMailFailureKeepsPreviousLink(t *testing.T) {
	h := newHarness(t)
	first := h.activate("jdoe")
	h.mailer.Fail = func(notify.Mail) error { return errors.New("smtp down") }
	if _, err := h.svc.Activate(h.ctx, "jdoe", "admin:root"); err == nil {
		t.Fatal("Activate succeeded with SMTP down")
	}
	unsent := h.lastToken()
	if _, err := h.svc.Open(h.ctx, first); err != nil {
		t.Errorf("the link the user already has stopped working: %v", err)
	}
	if _, err := h.svc.Open(h.ctx, unsent); err != enroll.ErrTokenUnknown {
		t.Errorf("Open(unsent token) = %v, want ErrTokenUnknown", err)
	}
}

func TestReactivationReplacesToken(t *testing.T) {
	h := newHarness(t)
	first := h.activate("jdoe")
	h.sendCode(first, phoneJdoe)
	h.clock.Advance(time.Hour)
	second := h.activate("jdoe")
	if first == second {
		t.Fatal("the same token twice")
	}
	if _, err := h.svc.Open(h.ctx, first); err != enroll.ErrTokenUnknown {
		t.Errorf("Open(old token) = %v, want ErrTokenUnknown", err)
	}
	if _, err := h.svc.VerifyCode(h.ctx, first, h.lastCode()); err != enroll.ErrTokenUnknown {
		t.Errorf("VerifyCode(old token) = %v, want ErrTokenUnknown", err)
	}
	p, err := h.svc.Open(h.ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Step != enroll.StepPhone || !p.ExpiresAt.Equal(t0.Add(time.Hour+168*time.Hour)) {
		t.Errorf("new activation page %+v: want a fresh StepPhone", p)
	}
}

func TestActivateKeepsEnrollmentLanguage(t *testing.T) {
	h := newHarness(t)
	err := h.store.PutEnrollment(h.ctx, enroll.Enrollment{Username: "jdoe", Phone: phoneFR, Language: "fr",
		State: enroll.StateActive, Method: "sms", CreatedAt: t0, UpdatedAt: t0, VerifiedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	token := h.activate("jdoe")
	if calls := h.renderer.Calls(); calls[0].Lang != "fr" {
		t.Errorf("activation mail rendered in %q, want fr (the enrollment's language)", calls[0].Lang)
	}
	p, err := h.svc.Open(h.ctx, token)
	if err != nil || p.Language != "fr" {
		t.Errorf("Open = %+v, %v; want language fr", p, err)
	}
}

func TestOpenUnknownAndExpiredTokens(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	random := make([]byte, 32)
	rand.Read(random)
	for _, bad := range []string{"", "x", token + "A", strings.Repeat("A", 43), base64.RawURLEncoding.EncodeToString(random),
		"../../etc/passwd", token[:42] + "=", strings.ToUpper(token)} {
		if bad == token {
			continue
		}
		if _, err := h.svc.Open(h.ctx, bad); err != enroll.ErrTokenUnknown {
			t.Errorf("Open(%q) = %v, want exactly ErrTokenUnknown", bad, err)
		}
		for name, call := range map[string]func() error{
			"SendCode":    func() error { _, err := h.svc.SendCode(h.ctx, bad, phoneJdoe, "sms"); return err },
			"Resend":      func() error { _, err := h.svc.Resend(h.ctx, bad, "sms"); return err },
			"VerifyCode":  func() error { _, err := h.svc.VerifyCode(h.ctx, bad, "123456"); return err },
			"SetLanguage": func() error { _, err := h.svc.SetLanguage(h.ctx, bad, "fr"); return err },
			"StartApp":    func() error { _, err := h.svc.StartApp(h.ctx, bad, phoneJdoe); return err },
			"VerifyApp":   func() error { _, err := h.svc.VerifyApp(h.ctx, bad, "123456"); return err },
		} {
			if err := call(); err != enroll.ErrTokenUnknown {
				t.Errorf("%s(%q) = %v, want exactly ErrTokenUnknown", name, bad, err)
			}
		}
	}
	if len(h.messages()) != 0 {
		t.Error("a message was queued for an unknown token")
	}

	h.clock.Advance(168*time.Hour - time.Second)
	if _, err := h.svc.Open(h.ctx, token); err != nil {
		t.Fatalf("Open 1s before expiry: %v", err)
	}
	h.clock.Advance(time.Second)
	if _, err := h.svc.Open(h.ctx, token); err != enroll.ErrTokenExpired {
		t.Errorf("Open at expiry = %v, want exactly ErrTokenExpired", err)
	}
	if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, "sms"); err != enroll.ErrTokenExpired {
		t.Errorf("SendCode at expiry = %v, want exactly ErrTokenExpired", err)
	}
	if _, err := h.svc.VerifyCode(h.ctx, token, "123456"); err != enroll.ErrTokenExpired {
		t.Errorf("VerifyCode at expiry = %v, want exactly ErrTokenExpired", err)
	}
	if len(h.messages()) != 0 {
		t.Error("a message was queued for an expired token")
	}
}

// The browser's language is taken until the user chooses one on the page;
// then the choice holds against any browser.
func TestBrowserLanguageYieldsToChoice(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	if p, err := h.svc.Open(h.ctx, token); err != nil || p.LanguageChosen {
		t.Fatalf("fresh activation: chosen = %v, %v; want a default", p.LanguageChosen, err)
	}
	if p, err := h.svc.BrowserLanguage(h.ctx, token, "fr-FR"); err != nil || p.Language != "fr" || p.LanguageChosen {
		t.Fatalf("BrowserLanguage(fr-FR) = %q chosen %v, %v; want fr, not chosen", p.Language, p.LanguageChosen, err)
	}
	if p, err := h.svc.SetLanguage(h.ctx, token, "en"); err != nil || p.Language != "en" || !p.LanguageChosen {
		t.Fatalf("SetLanguage(en) = %q chosen %v, %v; want en, chosen", p.Language, p.LanguageChosen, err)
	}
	if p, err := h.svc.BrowserLanguage(h.ctx, token, "fr"); err != nil || p.Language != "en" {
		t.Fatalf("BrowserLanguage(fr) after a choice = %q, %v; want the choice en", p.Language, err)
	}
}

func TestSetLanguage(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	p, err := h.svc.SetLanguage(h.ctx, token, "fr-CA")
	if err != nil || p.Language != "fr" {
		t.Fatalf("SetLanguage(fr-CA) = %+v, %v; want fr", p, err)
	}
	if _, err := h.svc.SetLanguage(h.ctx, token, "de"); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("SetLanguage(de) = %v, want ErrInvalid", err)
	}
	h.sendCode(token, phoneJdoe)
	ms := h.messages()
	code := h.lastCode()
	want := h.catalog.Text("fr", "sms.code", map[string]string{"code": code, "minutes": "40"})
	if got := h.body(ms[0]); got != want || ms[0].Language != "fr" {
		t.Errorf("code SMS %q (%s), want the French text %q", got, ms[0].Language, want)
	}
	p, err = h.svc.VerifyCode(h.ctx, token, code)
	if err != nil {
		t.Fatal(err)
	}
	e, err := h.store.Enrollment(h.ctx, "jdoe")
	if err != nil || e.Language != "fr" {
		t.Errorf("enrollment %+v, %v; want language fr", e, err)
	}
	ms = h.messages()
	if got, want := h.body(ms[len(ms)-1]), h.catalog.Text("fr", "sms.enrolled", nil); got != want {
		t.Errorf("confirmation %q, want %q", got, want)
	}
}

// TestSecretsStayOutOfDataFileAndLogs reads the bbolt file's bytes in the
// middle of a journey and after it: neither the token, nor a code, nor the
// TOTP secret is in it (nor in the log) in clear.
func TestSecretsStayOutOfDataFileAndLogs(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	code := h.lastCode()
	if _, err := h.svc.VerifyCode(h.ctx, token, wrongCode(code)); err == nil {
		t.Fatal("a wrong code was accepted")
	}
	setup, err := h.svc.StartApp(h.ctx, token, phoneJdoe)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"token":       token,
		"code":        code,
		"TOTP secret": setup.Secret,
		"code SMS":    h.catalog.Text("en", "sms.code", map[string]string{"code": code, "minutes": "40"}),
	}
	check := func(when string, data []byte) {
		t.Helper()
		for what, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s: the %s is in the data file in clear", when, what)
			}
		}
	}

	// Mid-journey: the activation holds the token hash, the code hash, the
	// sealed code and the sealed TOTP secret; the outbox the sealed SMS.
	mid, err := os.ReadFile(h.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"token hash": h.sealer.Hash("token", token), "code hash": h.sealer.Hash("code", code)} {
		if !bytes.Contains(mid, []byte(s)) {
			t.Fatalf("the %s is not in the data file: is this the right file?", what)
		}
	}
	check("mid-journey", mid)

	// The app set-up dropped nothing: the same number keeps its code.
	if _, err := h.svc.VerifyCode(h.ctx, token, code); err != nil {
		t.Fatal(err)
	}
	check("after enrollment", h.dataFile())
	logs := h.logs.String()
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s is in the log", what)
		}
	}
}

// wrongCode returns a 6-digit code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}
