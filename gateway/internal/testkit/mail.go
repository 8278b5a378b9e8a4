package testkit

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// HungMailServer accepts TCP connections on 127.0.0.1 and never says a
// word: the mail server that made NOT ME take 12 s.
func HungMailServer(t *testing.T) (host string, port int) {
	t.Helper()
	h, p, err := net.SplitHostPort(smtptest.Silent(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// Mailer is a real SMTP client for host:port without TLS; timeout
// bounds one session.
func Mailer(t *testing.T, host string, port int, timeout time.Duration) *mailer.Mailer {
	t.Helper()
	cfg := mailer.DefaultConfig()
	cfg.Host, cfg.Port, cfg.From, cfg.TLS = host, port, "ReplyReset <replyreset@example.test>", mailer.TLSNone
	m, err := mailer.New(cfg, mailer.WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// RunMailQueue runs q until the returned stop is called (or the test ends).
func RunMailQueue(t *testing.T, q *outbox.MailQueue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("MailQueue.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// MailEvents are the "mail" audit events, in order.
func MailEvents(t *testing.T, store enroll.Store) []enroll.Event {
	t.Helper()
	evs, err := store.Audit(t.Context(), enroll.AuditFilter{Action: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
