package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
)

const (
	testUser     = "svc-replyreset"
	testPassword = "S3cret-pa55word!"
	testFrom     = "IT Service Desk <it@example.com>"
	// Longer than a quoted-printable line, with '=' and '?', so soft line
	// breaks and escapes must be undone exactly.
	testLink = "https://reset.example.com/enroll/Zq3xV9kP_2mRt-8LwYc4HnB6sJd1FgA0eUoI7yTbQvXr5NpMzWhKlC?lang=fr&src=mail"
)

// config returns settings for srv: only 127.0.0.1 is ever contacted.
func config(srv *smtptest.Server, tlsMode string, auth bool) mailer.Config {
	cfg := mailer.DefaultConfig()
	cfg.Host, cfg.Port, cfg.From, cfg.TLS = srv.Host, srv.Port, testFrom, tlsMode
	if auth {
		cfg.Username, cfg.Password = testUser, testPassword
	}
	return cfg
}

func newMailer(t *testing.T, cfg mailer.Config, opts ...mailer.Option) *mailer.Mailer {
	t.Helper()
	m, err := mailer.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func frenchMail() notify.Mail {
	return notify.Mail{
		To:      "Zoé Lefèvre <zlefevre@example.com>",
		Subject: "Activez la réinitialisation de votre mot de passe par SMS — étape 1",
		Text:    "Bonjour Zoé,\n\nOuvrez ce lien pour vous inscrire :\n" + testLink + "\n\nLe service informatique\n",
		HTML:    `<!doctype html><html lang="fr"><body><p>Bonjour Zoé,</p><p><a href="` + testLink + `">S’inscrire</a></p></body></html>`,
	}
}

func waitOne(t *testing.T, srv *smtptest.Server) smtptest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := srv.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Err != nil {
		t.Fatalf("server could not parse the message: %v\n%s", msgs[0].Err, msgs[0].Raw)
	}
	return msgs[0]
}

// asError checks that err is a *mailer.Error of step and returns it.
func asError(t *testing.T, err error, step mailer.Step) *mailer.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got nil", step)
	}
	var me *mailer.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *mailer.Error", err, err)
	}
	if me.Step != step {
		t.Fatalf("step = %q, want %q (error: %v)", me.Step, step, err)
	}
	if !strings.HasPrefix(err.Error(), "mailer: "+string(step)+": ") {
		t.Errorf("error %q does not start with its step", err)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("error contains the password: %q", err)
	}
	t.Logf("error: %v", err)
	return me
}

func TestSendSTARTTLSAuth(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: testUser, Password: testPassword})
	m := newMailer(t, config(srv, mailer.TLSMandatory, true), mailer.WithRootCAs(srv.CertPool()))
	want := frenchMail()
	if err := m.Send(context.Background(), want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := waitOne(t, srv)

	if got.From != "it@example.com" {
		t.Errorf("envelope from = %q", got.From)
	}
	if len(got.To) != 1 || got.To[0] != "zlefevre@example.com" {
		t.Errorf("envelope to = %q", got.To)
	}
	from, err := got.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "IT Service Desk" || from[0].Address != "it@example.com" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := got.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Zoé Lefèvre" || to[0].Address != "zlefevre@example.com" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if got.Subject != want.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, want.Subject)
	}
	for i, b := range got.Raw {
		if b >= 0x80 {
			t.Fatalf("raw message has a non-ASCII byte at %d: the subject or a body is not encoded", i)
		}
	}
	if raw := got.Header.Get("Subject"); !strings.Contains(raw, "=?UTF-8?") {
		t.Errorf("raw Subject %q is not RFC 2047 encoded", raw)
	}
	if got.Text != want.Text {
		t.Errorf("text part = %q, want %q", got.Text, want.Text)
	}
	if got.HTML != want.HTML {
		t.Errorf("HTML part = %q, want %q", got.HTML, want.HTML)
	}
	if !strings.Contains(got.Text, testLink) || !strings.Contains(got.HTML, `href="`+testLink+`"`) {
		t.Errorf("the link is not intact in both parts")
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
		t.Errorf("Content-Type = %q", ct)
	}
	if d, err := got.Header.Date(); err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
		t.Errorf("Date = %v (%v)", d, err)
	}
	if id := got.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	if v := got.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", v)
	}
}

// Two sends get two distinct Message-IDs.
func TestSendMessageIDsDiffer(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, config(srv, mailer.TLSNone, false))
	for range 2 {
		if err := m.Send(context.Background(), frenchMail()); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].Header.Get("Message-Id") == msgs[1].Header.Get("Message-Id") {
		t.Fatalf("Message-IDs not distinct: %d messages", len(msgs))
	}
}

func TestSendTextOnly(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, config(srv, mailer.TLSNone, false))
	mail := frenchMail()
	mail.HTML = ""
	if err := m.Send(context.Background(), mail); err != nil {
		t.Fatal(err)
	}
	got := waitOne(t, srv)
	if got.Text != mail.Text || got.HTML != "" {
		t.Errorf("text = %q, html = %q", got.Text, got.HTML)
	}
}

// tls: none to a relay on this machine, with AUTH: PLAIN may go without TLS
// to localhost only.
func TestSendNoTLSLocalhost(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Username: testUser, Password: testPassword, AllowInsecureAuth: true})
	cfg := config(srv, mailer.TLSNone, true)
	cfg.Host = "localhost"
	m := newMailer(t, cfg)
	if err := m.Send(context.Background(), frenchMail()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	waitOne(t, srv)
}

func TestSendAuthLOGIN(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: testUser, Password: testPassword,
		AuthMechanisms: []string{"LOGIN"}})
	m := newMailer(t, config(srv, mailer.TLSMandatory, true), mailer.WithRootCAs(srv.CertPool()))
	if err := m.Send(context.Background(), frenchMail()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	waitOne(t, srv)
}

func TestOpportunisticTLS(t *testing.T) {
	t.Run("offered", func(t *testing.T) {
		srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: testUser, Password: testPassword})
		m := newMailer(t, config(srv, mailer.TLSOpportunistic, true), mailer.WithRootCAs(srv.CertPool()))
		if err := m.Send(context.Background(), frenchMail()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		waitOne(t, srv)
	})
	t.Run("not offered", func(t *testing.T) {
		srv := smtptest.New(t, smtptest.Options{})
		m := newMailer(t, config(srv, mailer.TLSOpportunistic, false))
		if err := m.Send(context.Background(), frenchMail()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		waitOne(t, srv)
	})
	t.Run("untrusted certificate is no downgrade", func(t *testing.T) {
		srv := smtptest.New(t, smtptest.Options{STARTTLS: true})
		m := newMailer(t, config(srv, mailer.TLSOpportunistic, false)) // system roots only
		err := m.Send(context.Background(), frenchMail())
		asError(t, err, mailer.StepTLS)
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %q does not say the certificate is the problem", err)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%d messages went through", n)
		}
	})
}

func TestMandatoryTLSWithoutSTARTTLS(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Username: testUser, Password: testPassword, AllowInsecureAuth: true})
	m := newMailer(t, config(srv, mailer.TLSMandatory, true))
	err := m.Send(context.Background(), frenchMail())
	asError(t, err, mailer.StepTLS)
	if !strings.Contains(err.Error(), "does not offer STARTTLS") || !strings.Contains(err.Error(), "mandatory") {
		t.Errorf("error %q does not explain itself", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages went through", n)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: testUser, Password: "the-right-one"})
	m := newMailer(t, config(srv, mailer.TLSMandatory, true), mailer.WithRootCAs(srv.CertPool()))
	err := m.Send(context.Background(), frenchMail())
	me := asError(t, err, mailer.StepAuth)
	if me.Code != 535 {
		t.Errorf("Code = %d, want 535", me.Code)
	}
	if !strings.Contains(err.Error(), testUser) {
		t.Errorf("error %q does not name the account", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages went through", n)
	}
}

func TestAuthNotOffered(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true})
	m := newMailer(t, config(srv, mailer.TLSMandatory, true), mailer.WithRootCAs(srv.CertPool()))
	err := m.Send(context.Background(), frenchMail())
	asError(t, err, mailer.StepAuth)
	if !strings.Contains(err.Error(), "no SMTP AUTH") {
		t.Errorf("error %q does not explain itself", err)
	}
}

func TestServerRejects(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, config(srv, mailer.TLSNone, false))
	for _, code := range []int{554, 451} {
		srv.RejectNext(1, code)
		err := m.Send(context.Background(), frenchMail())
		me := asError(t, err, mailer.StepSend)
		if me.Code != code {
			t.Errorf("Code = %d, want %d (%v)", me.Code, code, err)
		}
		if strings.Contains(err.Error(), "Bonjour") || strings.Contains(err.Error(), testLink) {
			t.Errorf("error %q holds the body", err)
		}
	}
	if err := m.Send(context.Background(), frenchMail()); err != nil {
		t.Fatalf("Send after the rejections: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
}

func TestContextDeadline(t *testing.T) {
	t.Run("server stalls after DATA", func(t *testing.T) {
		srv := smtptest.New(t, smtptest.Options{})
		srv.StallNext(1)
		m := newMailer(t, config(srv, mailer.TLSNone, false))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := m.Send(ctx, frenchMail())
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Send took %s with a 300ms deadline", took)
		}
		asError(t, err, mailer.StepSend)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v is not context.DeadlineExceeded", err)
		}
	})
	t.Run("server never greets, default timeout", func(t *testing.T) {
		addr := smtptest.Silent(t)
		cfg := mailer.DefaultConfig()
		host, port := splitAddr(t, addr)
		cfg.Host, cfg.Port, cfg.From, cfg.TLS = host, port, testFrom, mailer.TLSNone
		m := newMailer(t, cfg, mailer.WithTimeout(200*time.Millisecond))
		start := time.Now()
		err := m.Check(context.Background())
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Check took %s with a 200ms timeout", took)
		}
		asError(t, err, mailer.StepDial)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer") {
			t.Errorf("error %q does not say the server did not answer", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv := smtptest.New(t, smtptest.Options{})
		srv.StallNext(1)
		m := newMailer(t, config(srv, mailer.TLSNone, false))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		err := m.Send(ctx, frenchMail())
		asError(t, err, mailer.StepSend)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v is not context.Canceled", err)
		}
	})
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	return host, p
}

func TestCheck(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: testUser, Password: testPassword})
	t.Run("ok", func(t *testing.T) {
		m := newMailer(t, config(srv, mailer.TLSMandatory, true), mailer.WithRootCAs(srv.CertPool()))
		if err := m.Check(context.Background()); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("Check sent %d messages", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := config(srv, mailer.TLSMandatory, true)
		cfg.Password = "not-" + testPassword
		m := newMailer(t, cfg, mailer.WithRootCAs(srv.CertPool()))
		err := m.Check(context.Background())
		asError(t, err, mailer.StepAuth)
		if strings.Contains(err.Error(), cfg.Password) {
			t.Errorf("error %q holds the password", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		m := newMailer(t, config(srv, mailer.TLSMandatory, true))
		asError(t, m.Check(context.Background()), mailer.StepTLS)
	})
	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		host, port := splitAddr(t, l.Addr().String())
		_ = l.Close()
		cfg := config(srv, mailer.TLSMandatory, true)
		cfg.Host, cfg.Port = host, port
		m := newMailer(t, cfg)
		err = m.Check(context.Background())
		asError(t, err, mailer.StepDial)
		if !strings.Contains(err.Error(), l.Addr().String()) {
			t.Errorf("error %q does not name the address", err)
		}
	})
}

func TestComposeErrors(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, config(srv, mailer.TLSNone, false))
	for name, mutate := range map[string]func(*notify.Mail){
		"bad recipient":  func(m *notify.Mail) { m.To = "not an address" },
		"two recipients": func(m *notify.Mail) { m.To = "a@example.com, b@example.com" },
		"empty subject":  func(m *notify.Mail) { m.Subject = " \n" },
		"empty text":     func(m *notify.Mail) { m.Text = "" },
	} {
		t.Run(name, func(t *testing.T) {
			msg := frenchMail()
			mutate(&msg)
			asError(t, m.Send(context.Background(), msg), mailer.StepCompose)
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages went through", n)
	}
}

// A newline in the subject (a display name from the directory, say) must
// not start a header of its own.
func TestSubjectHeaderInjection(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	m := newMailer(t, config(srv, mailer.TLSNone, false))
	msg := frenchMail()
	msg.Subject = "Welcome Jane\r\nBcc: attacker@example.net\r\n\r\nowned"
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := waitOne(t, srv)
	if _, ok := got.Header["Bcc"]; ok || len(got.To) != 1 {
		t.Fatalf("header injected: Bcc=%q, recipients %q", got.Header.Get("Bcc"), got.To)
	}
	if got.Subject != "Welcome Jane Bcc: attacker@example.net owned" {
		t.Errorf("Subject = %q", got.Subject)
	}
}

func TestSendConcurrent(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: testUser, Password: testPassword})
	m := newMailer(t, config(srv, mailer.TLSMandatory, true), mailer.WithRootCAs(srv.CertPool()))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			msg := frenchMail()
			msg.To = fmt.Sprintf("user%d@example.com", i)
			errs <- m.Send(context.Background(), msg)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := srv.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	if _, err := mailer.New(mailer.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "mail is off") {
		t.Errorf("New(mail off) = %v", err)
	}
	cfg := mailer.DefaultConfig()
	cfg.Host, cfg.From, cfg.TLS = "127.0.0.1", testFrom, "sometimes"
	if _, err := mailer.New(cfg); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("New(bad tls) = %v", err)
	}
}
