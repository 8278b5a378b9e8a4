package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// TestOutboxMail: `outbox -mail` lists the mail queue (recipient, kind,
// state, attempts, next try, last error), never a subject or a body.
func TestOutboxMail(t *testing.T) {
	f := writeConfig(t, offlineConfig())
	store, err := bolt.Open(filepath.Join(mkdir(t, f.DataDir), "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, m := range []enroll.QueuedMail{
		{Kind: "activation", To: "jdoe@example.com", Sealed: []byte("SEALED-BODY"), State: enroll.MailRetry, Attempts: 2,
			NextAttempt: now.Add(time.Minute), LastError: "mailer: dial: no answer from the mail server in time"},
		{Kind: "not_me", To: "admin@example.com", State: enroll.MailSent, Attempts: 1},
	} {
		m.CreatedAt, m.UpdatedAt = now, now
		if _, err := store.EnqueueMail(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	r := mustRun(t, "outbox", "-config", f.Path, "-mail")
	wantContains(t, r, r.stdout, "TO", "KIND", "STATE", "TRIES", "NEXT TRY", "ERROR")
	row1, ok1 := lineWithPrefix(r.stdout, "1 ")
	row2, ok2 := lineWithPrefix(r.stdout, "2 ")
	if !ok1 || !ok2 || !strings.Contains(row1, "jdoe@example.com") || !strings.Contains(row1, "activation") ||
		!strings.Contains(row1, "retry") || !strings.Contains(row1, "no answer from the mail server") ||
		!strings.Contains(row2, "admin@example.com") || !strings.Contains(row2, "sent") {
		t.Errorf("outbox -mail:\n%s", r.stdout)
	}
	r = mustRun(t, "outbox", "-config", f.Path, "-mail", "-format", "json")
	if !strings.Contains(r.stdout, `"kind": "not_me"`) || strings.Contains(r.stdout, "sealed") {
		t.Errorf("outbox -mail -format json:\n%s", r.stdout)
	}
	wantCode(t, runCLI(t, "outbox", "-config", f.Path, "-mail", "-to", "+12015550101"), 2)
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestActivateWithoutServerSendsQueuedMail: a command run without a
// server queues its mail like the server does, then delivers it before it
// exits; the queue records it sent.
func TestActivateWithoutServerSendsQueuedMail(t *testing.T) {
	lab := mustLab(t)
	cfg := writeDemoConfig(t)
	before := len(lab.smtp.Messages())
	r := mustRun(t, "activate", "jdoe", "--config", cfg)
	wantContains(t, r, r.stdout, "jdoe: activation email to jdoe@example.com queued (link valid until ")
	msgs := lab.smtp.Messages()
	if len(msgs) != before+1 || msgs[before].To[0] != "jdoe@example.com" || !strings.Contains(msgs[before].Text, testPublicURL+"/enroll/") {
		t.Fatalf("after activate: %d new mails, want the activation email to jdoe@example.com", len(msgs)-before)
	}
	r = mustRun(t, "outbox", "-mail", "-format", "json", "--config", cfg)
	if !strings.Contains(r.stdout, `"kind": "activation"`) || !strings.Contains(r.stdout, `"state": "sent"`) {
		t.Errorf("outbox -mail after activate:\n%s", r.stdout)
	}
}
