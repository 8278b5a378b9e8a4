package gateway_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
)

// hungMailServer accepts TCP connections on 127.0.0.1 and never says a
// word: the mail server that made NOT ME take 12 s.
func hungMailServer(t *testing.T) (host string, port int) {
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

// testMailer is a real SMTP client for host:port without TLS; timeout
// bounds one session.
func testMailer(t *testing.T, host string, port int, timeout time.Duration) *mailer.Mailer {
	t.Helper()
	cfg := mailer.DefaultConfig()
	cfg.Host, cfg.Port, cfg.From, cfg.TLS = host, port, "ReplyReset <replyreset@example.test>", mailer.TLSNone
	m, err := mailer.New(cfg, mailer.WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runMailQueue runs q until the returned stop is called (or the test ends).
func runMailQueue(t *testing.T, q *gateway.MailQueue) (stop func()) {
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

// mailEvents are the outcomes of the "mail" audit events, in order.
func mailEvents(t *testing.T, store enroll.Store) []enroll.Event {
	t.Helper()
	evs, err := store.Audit(t.Context(), enroll.AuditFilter{Action: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func outcomes(evs []enroll.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Outcome)
	}
	return out
}

func queuedMails(t *testing.T, store *bolt.Store) []enroll.QueuedMail {
	t.Helper()
	ms, err := store.QueuedMails(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestMailQueueSurvivesHungServerAndRestart: a mail queued while the mail
// server hangs is tried, audited as a retry with its error class, kept
// (sealed) across a restart, and delivered once a working server answers;
// its secret never reaches the data file, the audit or the log in clear.
func TestMailQueueSurvivesHungServerAndRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "replyreset.db")
	store, err := bolt.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { store.Close() }()
	sealer := testSealer(t)
	var logs lockedBuffer
	const secret = "tok3n-SECRET-in-the-link"
	mail := notify.Mail{To: "jdoe@example.test", Subject: "Register your phone", Kind: "activation", Username: "jdoe",
		Text: "Open https://reset.example.test/enroll/" + secret, HTML: `<a href="https://reset.example.test/enroll/` + secret + `">open</a>`}

	host, port := hungMailServer(t)
	q := gateway.NewMailQueue(gateway.MailQueueConfig{Store: store, Sealer: sealer,
		Transport: testMailer(t, host, port, 200*time.Millisecond), Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Poll: 20 * time.Millisecond})
	start := time.Now()
	if err := q.Send(t.Context(), mail); err != nil {
		t.Fatalf("Send: %v", err)
	}
	t.Logf("MailQueue.Send with a hung mail server: %v", time.Since(start))
	stop := runMailQueue(t, q)
	eventually(t, "a retry after the hung server", func() bool { return len(mailEvents(t, store)) >= 3 })
	stop()
	evs := mailEvents(t, store)
	if got := outcomes(evs); got[0] != enroll.MailQueued || got[1] != enroll.MailRetry {
		t.Fatalf("mail audit = %q, want queued, retry, ...", got)
	}
	if d := evs[1].Detail; !strings.Contains(d, "activation mail 1 to jdoe@example.test; attempt 1 failed (dial timeout)") || evs[1].Username != "jdoe" {
		t.Errorf("retry audit = %+v, want the attempt, the error class dial timeout and the user", evs[1])
	}
	ms := queuedMails(t, store)
	if len(ms) != 1 || ms[0].State != enroll.MailRetry || ms[0].Attempts < 1 || len(ms[0].Sealed) == 0 ||
		!strings.Contains(ms[0].LastError, "no answer from the mail server in time") {
		t.Fatalf("queued mail after the hung server = %+v", ms)
	}

	// Restart: the data file is closed and opened again; the mail is
	// still there, waiting.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if store, err = bolt.Open(dbPath); err != nil {
		t.Fatal(err)
	}
	ms = queuedMails(t, store)
	if len(ms) != 1 || !ms[0].Pending() || len(ms[0].Sealed) == 0 {
		t.Fatalf("queued mail after a restart = %+v, want still pending", ms)
	}
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "Register your phone") {
		t.Fatal("the data file holds the queued mail in clear")
	}

	// A working server answers now.
	srv := smtptest.New(t, smtptest.Options{})
	q = gateway.NewMailQueue(gateway.MailQueueConfig{Store: store, Sealer: sealer,
		Transport: testMailer(t, srv.Host, srv.Port, 10*time.Second), Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Poll: 20 * time.Millisecond})
	runMailQueue(t, q)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := srv.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Subject != mail.Subject || !strings.Contains(got[0].Text, secret) || !slices.Equal(got[0].To, []string{mail.To}) {
		t.Fatalf("delivered = %+v", got[0])
	}
	eventually(t, "the sent audit", func() bool {
		o := outcomes(mailEvents(t, store))
		return o[len(o)-1] == enroll.MailSent
	})
	ms = queuedMails(t, store)
	if len(ms) != 1 || ms[0].State != enroll.MailSent || ms[0].Sealed != nil || ms[0].LastError != "" {
		t.Fatalf("queued mail once sent = %+v, want sent, the body dropped", ms)
	}
	for _, ev := range mailEvents(t, store) {
		if strings.Contains(ev.Detail, secret) || strings.Contains(ev.Detail, mail.Subject) {
			t.Errorf("audit %+v holds the mail's content", ev)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log holds the secret:\n%s", logs.String())
	}
}

// TestMailQueueGivesUp: after MaxAttempts the mail fails for good, audited,
// its body dropped; a mail the server refuses for good (5xx) fails at once.
func TestMailQueueGivesUp(t *testing.T) {
	store := openStore(t)
	srv := smtptest.New(t, smtptest.Options{})
	srv.RejectNext(100, 451)
	q := gateway.NewMailQueue(gateway.MailQueueConfig{Store: store, Sealer: testSealer(t),
		Transport: testMailer(t, srv.Host, srv.Port, 10*time.Second), MaxAttempts: 3,
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, Poll: 5 * time.Millisecond})
	if err := q.Send(t.Context(), notify.Mail{To: "admin@example.test", Subject: "s", Text: "t", Kind: "not_me"}); err != nil {
		t.Fatal(err)
	}
	runMailQueue(t, q)
	eventually(t, "the mail to fail", func() bool { return len(mailEvents(t, store)) == 4 })
	if got, want := outcomes(mailEvents(t, store)), []string{"queued", "retry", "retry", "failed"}; !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
	if evs := mailEvents(t, store); !strings.Contains(evs[3].Detail, "attempt 3 failed (send 451); given up") {
		t.Errorf("failed audit = %q", evs[3].Detail)
	}
	if ms := queuedMails(t, store); ms[0].Sealed != nil || ms[0].Attempts != 3 {
		t.Errorf("failed mail = %+v, want 3 attempts and no body", ms[0])
	}

	srv.RejectNext(1, 550)
	if err := q.Send(t.Context(), notify.Mail{To: "gone@example.test", Subject: "s", Text: "t", Kind: "enrolled"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refused mail to fail", func() bool { return len(mailEvents(t, store)) == 6 })
	if ms := queuedMails(t, store); ms[0].State != enroll.MailFailed || ms[0].Attempts != 1 {
		t.Errorf("a mail refused with 550 = %+v, want failed after one attempt", ms[0])
	}
}
