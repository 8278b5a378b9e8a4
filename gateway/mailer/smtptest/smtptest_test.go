package smtptest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
)

const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?b?w6l0w6k=?=\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n" +
	"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nw6l0w6kK\r\n" +
	"--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C3=A9t=\r\n=C3=A9</p>\r\n" +
	"--XX--\r\n"

func wait(t *testing.T, srv *smtptest.Server, n int) []smtptest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := srv.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// STARTTLS with the exposed pool, AUTH PLAIN, and both transfer encodings
// decoded by the server's parser.
func TestSTARTTLSAuthParse(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: "u", Password: "p"})
	c, err := smtp.DialStartTLS(srv.Addr, &tls.Config{RootCAs: srv.CertPool(), ServerName: srv.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "u", "p")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com", "c@example.com"}, strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	got := wait(t, srv, 1)[0]
	if got.Err != nil {
		t.Fatal(got.Err)
	}
	if got.From != "a@example.com" || len(got.To) != 2 || got.Subject != "été" || got.Text != "été\n" || got.HTML != "<p>été</p>" {
		t.Errorf("recorded %+v", got)
	}
}

func TestAuthRequiredAndRefused(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: "u", Password: "p"})
	c, err := smtp.DialStartTLS(srv.Addr, &tls.Config{RootCAs: srv.CertPool(), ServerName: srv.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *smtp.SMTPError
	if err := c.Mail("a@example.com", nil); !errors.As(err, &se) || se.Code != 502 {
		t.Errorf("MAIL before AUTH = %v, want 502", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "u", "wrong")); !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("AUTH with a wrong password = %v, want 535", err)
	}
}

// plainSend sends raw without TLS or AUTH.
func plainSend(addr string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(raw))
}

func TestRejectNext(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	srv.RejectNext(1, 452)
	send := func() error { return plainSend(srv.Addr) }
	var se *smtp.SMTPError
	if err := send(); !errors.As(err, &se) || se.Code != 452 {
		t.Errorf("first send = %v, want 452", err)
	}
	if err := send(); err != nil {
		t.Errorf("second send = %v", err)
	}
	if n := len(wait(t, srv, 1)); n != 1 {
		t.Errorf("%d messages recorded", n)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v", err)
	}
}

// Close releases a stalled session and may be called twice.
func TestStallAndClose(t *testing.T) {
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.StallNext(1)
	done := make(chan error, 1)
	go func() {
		done <- plainSend(srv.Addr)
	}()
	select {
	case err := <-done:
		t.Fatalf("send finished while the server stalls: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("the stalled send succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
}
