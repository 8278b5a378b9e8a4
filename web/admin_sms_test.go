package web

import (
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/gateway"
)

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
		tk, err := budget.Admit(t.Context(), gateway.Send{To: "+12015550177", Kind: "sms", Purpose: "code"})
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
