package mailer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
)

var testMail = notify.Mail{To: "jdoe@example.com", Subject: "Hello", Text: "Hello\n", HTML: "<p>Hello</p>"}

// Port 465 means TLS from the first byte; the test server cannot have port
// 465, so the test turns the mode on by hand.
func TestImplicitTLS(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{ImplicitTLS: true, Username: "u", Password: "p4ssw0rd"})
	cfg := Config{Host: srv.Host, Port: 465, From: "it@example.com", TLS: TLSMandatory, Username: "u", Password: "p4ssw0rd"}
	m, err := New(cfg, WithRootCAs(srv.CertPool()))
	if err != nil {
		t.Fatal(err)
	}
	if !m.implicitTLS {
		t.Fatal("port 465 does not select implicit TLS")
	}
	m.addr = srv.Addr
	if err := m.Send(context.Background(), testMail); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages", n)
	}

	// Without trust in the test CA the handshake fails, as a TLS error.
	m2, _ := New(cfg)
	m2.addr = srv.Addr
	var me *Error
	if err := m2.Check(context.Background()); !errors.As(err, &me) || me.Step != StepTLS {
		t.Fatalf("Check with an untrusted certificate = %v, want a tls error", err)
	}
}

// The password never goes in clear to a host that is not this machine,
// even when the server offers AUTH without TLS.
func TestNoPasswordInClearToRemoteHost(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Username: "u", Password: "p4ssw0rd", AllowInsecureAuth: true})
	cfg := Config{Host: "mail.example.com", Port: 587, From: "it@example.com", TLS: TLSOpportunistic,
		Username: "u", Password: "p4ssw0rd"}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.addr = srv.Addr // the name stays mail.example.com; only 127.0.0.1 is dialled
	err = m.Send(context.Background(), testMail)
	var me *Error
	if !errors.As(err, &me) || me.Step != StepAuth || !strings.Contains(err.Error(), "without TLS") {
		t.Fatalf("Send = %v, want an auth error refusing to send the password without TLS", err)
	}
}

func TestRedact(t *testing.T) {
	m := &Mailer{cfg: Config{Username: "u", Password: "hunter2!"}}
	for _, in := range []string{
		"535 bad password hunter2!",
		"535 bad credentials AHUAaHVudGVyMiE=", // PLAIN blob
		"535 bad password aHVudGVyMiE=",        // LOGIN
	} {
		if out := m.redact(in); strings.Contains(out, "hunter2!") || out == in {
			t.Errorf("redact(%q) = %q", in, out)
		}
	}
}
