package outbox_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
)

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
	sealer := testkit.Sealer(t)
	var logs testkit.LockedBuffer
	const secret = "tok3n-SECRET-in-the-link"
	mail := notify.Mail{To: "jdoe@example.test", Subject: "Register your phone", Kind: "activation", Username: "jdoe",
		Text: "Open https://reset.example.test/enroll/" + secret, HTML: `<a href="https://reset.example.test/enroll/` + secret + `">open</a>`}

	host, port := testkit.HungMailServer(t)
	q := outbox.NewMailQueue(outbox.MailQueueConfig{Store: store, Sealer: sealer,
		Transport: testkit.Mailer(t, host, port, 200*time.Millisecond), Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Poll: 20 * time.Millisecond})
	start := time.Now()
	if err := q.Send(t.Context(), mail); err != nil {
		t.Fatalf("Send: %v", err)
	}
	t.Logf("MailQueue.Send with a hung mail server: %v", time.Since(start))
	stop := testkit.RunMailQueue(t, q)
	testkit.Eventually(t, "a retry after the hung server", func() bool { return len(testkit.MailEvents(t, store)) >= 3 })
	stop()
	evs := testkit.MailEvents(t, store)
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
	q = outbox.NewMailQueue(outbox.MailQueueConfig{Store: store, Sealer: sealer,
		Transport: testkit.Mailer(t, srv.Host, srv.Port, 10*time.Second), Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Poll: 20 * time.Millisecond})
	testkit.RunMailQueue(t, q)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := srv.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Subject != mail.Subject || !strings.Contains(got[0].Text, secret) || !slices.Equal(got[0].To, []string{mail.To}) {
		t.Fatalf("delivered = %+v", got[0])
	}
	testkit.Eventually(t, "the sent audit", func() bool {
		o := outcomes(testkit.MailEvents(t, store))
		return o[len(o)-1] == enroll.MailSent
	})
	ms = queuedMails(t, store)
	if len(ms) != 1 || ms[0].State != enroll.MailSent || ms[0].Sealed != nil || ms[0].LastError != "" {
		t.Fatalf("queued mail once sent = %+v, want sent, the body dropped", ms)
	}
	for _, ev := range testkit.MailEvents(t, store) {
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
	store := testkit.OpenStore(t)
	srv := smtptest.New(t, smtptest.Options{})
	srv.RejectNext(100, 451)
	q := outbox.NewMailQueue(outbox.MailQueueConfig{Store: store, Sealer: testkit.Sealer(t),
		Transport: testkit.Mailer(t, srv.Host, srv.Port, 10*time.Second), MaxAttempts: 3,
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, Poll: 5 * time.Millisecond})
	if err := q.Send(t.Context(), notify.Mail{To: "admin@example.test", Subject: "s", Text: "t", Kind: "not_me"}); err != nil {
		t.Fatal(err)
	}
	testkit.RunMailQueue(t, q)
	testkit.Eventually(t, "the mail to fail", func() bool { return len(testkit.MailEvents(t, store)) == 4 })
	if got, want := outcomes(testkit.MailEvents(t, store)), []string{"queued", "retry", "retry", "failed"}; !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
	if evs := testkit.MailEvents(t, store); !strings.Contains(evs[3].Detail, "attempt 3 failed (send 451); given up") {
		t.Errorf("failed audit = %q", evs[3].Detail)
	}
	if ms := queuedMails(t, store); ms[0].Sealed != nil || ms[0].Attempts != 3 {
		t.Errorf("failed mail = %+v, want 3 attempts and no body", ms[0])
	}

	srv.RejectNext(1, 550)
	if err := q.Send(t.Context(), notify.Mail{To: "gone@example.test", Subject: "s", Text: "t", Kind: "enrolled"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the refused mail to fail", func() bool { return len(testkit.MailEvents(t, store)) == 6 })
	if ms := queuedMails(t, store); ms[0].State != enroll.MailFailed || ms[0].Attempts != 1 {
		t.Errorf("a mail refused with 550 = %+v, want failed after one attempt", ms[0])
	}
}
