package web

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/outbox"
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

// TestDashboardShowsSMSBudget: the dashboard shows the SMS sent in the
// last 24 hours against sms.budgets.per_day, and warns about a budget that
// refused a send.
func TestDashboardShowsSMSBudget(t *testing.T) {
	a := newAdminApp(t)
	budget := gateway.NewSMSBudget(a.store, gateway.SMSBudgetOptions{
		Budgets: gateway.BudgetConfig{PerNumberDay: 2, PerDay: 100}, Now: a.clock.Now})
	defer budget.Close()
	b := a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	if p := b.get("/admin/dashboard"); strings.Contains(p.body, `id="h-sms"`) {
		t.Fatal("an SMS section without a budget to show")
	}

	a.handler = NewEcho(Deps{Pages: a.pages, Enrollment: a.svc, Store: a.store, PublicURL: "http://127.0.0.1",
		Language: "en", Now: a.clock.Now, AdminDirectory: a.dir, AdminService: a.svc,
		Admin: AdminConfig{SessionTTL: time.Hour}, SMSUsage: budget})
	b = a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	p := b.get("/admin/dashboard")
	if got := visibleText(between(p.body, `id="sms-sent">`, "</p>")); got != a.text("admin.dash.sms_sent", map[string]string{"n": "0", "limit": "100"}) {
		t.Fatalf("sent: %q", got)
	}
	if strings.Contains(p.body, `id="sms-budget-warning"`) {
		t.Fatal("a warning before any budget was reached")
	}
	for i := range 3 {
		tk, err := budget.Admit(t.Context(), outbox.Send{To: "+12015550177", Kind: "sms", Purpose: "code"})
		if err != nil || (tk.Refused != "") != (i == 2) {
			t.Fatalf("send %d: %+v, %v", i+1, tk, err)
		}
	}
	p = b.get("/admin/dashboard")
	if got := visibleText(between(p.body, `id="sms-sent">`, "</p>")); !strings.Contains(got, "2 of 100") {
		t.Fatalf("sent: %q, want 2 of 100", got)
	}
	warning := between(p.body, `id="sms-budget-warning"`, "</div>")
	if !strings.Contains(warning, "<code>sms.budgets.per_number_day</code>") || strings.Contains(warning, "per_day<") {
		t.Fatalf("warning: %q", warning)
	}
}

// between is the text of s after the first from, up to the next to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	out, _, _ := strings.Cut(rest, to)
	return out
}
