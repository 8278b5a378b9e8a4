package gateway_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// lateMailer hands mail to the queue set once the harness opened its store.
type lateMailer struct {
	q atomic.Pointer[outbox.MailQueue]
}

func (l *lateMailer) Send(ctx context.Context, m notify.Mail) error { return l.q.Load().Send(ctx, m) }

// TestNotMeWithHungMailServer is finding 14.5: with a mail server that
// accepts TCP and never answers, NOT ME took 12 s, returned an empty
// reply and lost its audit event. Now the reply comes at once, the events
// are stored, the admins' mail waits in the queue (retries audited with
// their error class) and leaves once a working server answers.
func TestNotMeWithHungMailServer(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	dcfg := lab.DirectoryConfig()
	dcfg.AdminGroup = lab.AdminGroupDN
	dir, err := directory.New(dcfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	admins, err := dir.AdminContacts(t.Context())
	if err != nil || len(admins) != 1 || admins[0].Mail == "" {
		t.Fatalf("AdminContacts = %+v, %v; want the lab's helpdesk admin, with a mail", admins, err)
	}
	// admin.alert_mail: one more address, and the admin's own in capitals
	// (told once).
	late := &lateMailer{}
	alerts := notify.NewAdminAlerts(dir, late, mails, notify.AdminAlertOptions{Language: "en",
		AlertMail: []string{"security@example.test", strings.ToUpper(admins[0].Mail)}})
	h := newHarness(t, lab, func(_ *directory.Config, s *gateway.Settings) { s.NotMe = alerts })

	host, port := testkit.HungMailServer(t)
	tune := func(c outbox.MailQueueConfig) outbox.MailQueueConfig {
		c.Store, c.Sealer = h.store, testkit.Sealer(t)
		c.BackoffBase, c.BackoffMax, c.Poll = 20*time.Millisecond, 50*time.Millisecond, 20*time.Millisecond
		return c
	}
	q := outbox.NewMailQueue(tune(outbox.MailQueueConfig{Transport: testkit.Mailer(t, host, port, 500*time.Millisecond)}))
	late.q.Store(q)
	stop := testkit.RunMailQueue(t, q)

	const phone = "+12015550131"
	username, _, _ := h.user(phone, "en")
	start := time.Now()
	r, _ := h.sms(phone, "NOT ME")
	took := time.Since(start)
	t.Logf("NOT ME reply with a hung mail server: %v", took.Round(time.Millisecond))
	if got := oneText(t, r); got != h.text("sms.notme.ok", nil) {
		t.Fatalf("NOT ME reply = %q", got)
	}
	evs := h.audit(username)
	i := slices.IndexFunc(evs, func(ev enroll.Event) bool { return ev.Action == "not_me" && ev.Outcome == "frozen" })
	j := slices.IndexFunc(evs, func(ev enroll.Event) bool { return ev.Action == "not_me_alert" && ev.Outcome == "ok" })
	if i < 0 || j < 0 {
		t.Fatalf("audit after NOT ME = %+v, want not_me frozen and not_me_alert ok", evs)
	}
	testkit.Eventually(t, "a retry audited with its error class", func() bool {
		return slices.ContainsFunc(testkit.MailEvents(t, h.store), func(ev enroll.Event) bool {
			return ev.Outcome == enroll.MailRetry && strings.Contains(ev.Detail, "(dial timeout)")
		})
	})
	stop()
	if ev := testkit.MailEvents(t, h.store)[0]; ev.Outcome != enroll.MailQueued || ev.Username != username ||
		!strings.Contains(ev.Detail, "not_me mail 1 to ") {
		t.Errorf("first mail event = %+v, want the not_me mail queued", ev)
	}

	srv := smtptest.New(t, smtptest.Options{})
	q = outbox.NewMailQueue(tune(outbox.MailQueueConfig{Transport: testkit.Mailer(t, srv.Host, srv.Port, 10*time.Second)}))
	late.q.Store(q)
	testkit.RunMailQueue(t, q)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := srv.Wait(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var to []string
	for _, m := range got {
		if !strings.Contains(m.Text, username) {
			t.Errorf("the alert to %v does not name %s:\n%s", m.To, username, m.Text)
		}
		to = append(to, strings.ToLower(m.To[0]))
	}
	slices.Sort(to)
	if want := []string{strings.ToLower(admins[0].Mail), "security@example.test"}; !slices.Equal(to, want) {
		t.Errorf("alerts went to %q, want %q (each once)", to, want)
	}
	testkit.Eventually(t, "both sent audits", func() bool {
		n := 0
		for _, ev := range testkit.MailEvents(t, h.store) {
			if ev.Outcome == enroll.MailSent {
				n++
			}
		}
		return n == 2
	})
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d mails delivered, want 2", n)
	}
}
