package web

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// TestAdminMailPage: /admin/mail lists the mail queue (recipient, kind,
// state, attempts, last error, next try) and never a subject or a body.
func TestAdminMailPage(t *testing.T) {
	a := newAdminApp(t)
	b := a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	now := time.Now()
	put := func(m enroll.QueuedMail) uint64 {
		m.CreatedAt, m.UpdatedAt = now, now
		id, err := a.store.EnqueueMail(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	queued := put(enroll.QueuedMail{Kind: "activation", To: "jdoe@example.com", Sealed: []byte("sealed subject and body"),
		State: enroll.MailQueued, NextAttempt: now})
	retry := put(enroll.QueuedMail{Kind: "not_me", To: "admin@example.com", Sealed: []byte("sealed"), State: enroll.MailRetry,
		Attempts: 2, NextAttempt: now.Add(time.Minute), LastError: "mailer: dial: no answer from the mail server in time"})
	sent := put(enroll.QueuedMail{Kind: "enrolled", To: "asmith@example.com", State: enroll.MailSent, Attempts: 1})

	p := b.get("/admin/mail")
	if p.code != http.StatusOK {
		t.Fatalf("/admin/mail: %d %s", p.code, errorText(p.body))
	}
	row := func(id uint64) string {
		m := regexp.MustCompile(`(?s)<tr id="mail-` + strconv.FormatUint(id, 10) + `">(.*?)</tr>`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no row for mail %d:\n%s", id, p.body)
		}
		return visibleText(strings.ReplaceAll(m[1], "</td><td", "</td> | <td"))
	}
	for id, want := range map[uint64][]string{
		queued: {"jdoe@example.com", "activation", "Queued", "| 0 |"},
		retry:  {"admin@example.com", "not_me", "Retrying", "| 2 |", "no answer from the mail server in time"},
		sent:   {"asmith@example.com", "enrolled", "Sent", "| 1 |"},
	} {
		got := row(id)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("mail %d row %q lacks %q", id, got, w)
			}
		}
	}
	if strings.Contains(p.body, "sealed") {
		t.Error("the page shows a sealed body")
	}
	if !strings.Contains(p.body, `href="/admin/mail"`) {
		t.Error("the navigation has no link to the mail page")
	}
}
