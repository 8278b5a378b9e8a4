package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// budgetAlerts records the budget alerts the admins would be mailed.
type budgetAlerts struct {
	mu      sync.Mutex
	notices []notify.BudgetNotice
}

func (a *budgetAlerts) NotifyBudget(_ context.Context, n notify.BudgetNotice) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notices = append(a.notices, n)
	return 2, nil
}

func (a *budgetAlerts) sent() []notify.BudgetNotice {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]notify.BudgetNotice(nil), a.notices...)
}

// budgetRig is a rig whose outbox charges an SMSBudget.
func budgetRig(t *testing.T, cfg gateway.BudgetConfig, allowed ...string) (*testkit.OutboxRig, *gateway.SMSBudget, *budgetAlerts) {
	t.Helper()
	r := testkit.NewOutboxRig(t)
	alerts := &budgetAlerts{}
	b := gateway.NewSMSBudget(r.Store, gateway.SMSBudgetOptions{Budgets: cfg, AllowedCountries: allowed, Alerts: alerts})
	t.Cleanup(b.Close)
	return r, b, alerts
}

func events(r *testkit.OutboxRig, action string) []enroll.Event {
	r.T.Helper()
	evs, err := r.Store.Audit(context.Background(), enroll.AuditFilter{Action: action})
	if err != nil {
		r.T.Fatal(err)
	}
	return evs
}

// sendAll queues one SMS per number, runs the outbox until each is settled
// and returns their final statuses in order.
func sendAll(r *testkit.OutboxRig, b *gateway.SMSBudget, numbers ...string) []string {
	r.T.Helper()
	ids := make([]uint64, len(numbers))
	for i, n := range numbers {
		ids[i] = r.Enqueue(enroll.KindSMS, n, fmt.Sprintf("Your code is 1000%02d", i), enroll.PriorityHigh)
	}
	ob, stop := r.Start(outbox.Options{Budget: b})
	ob.Notify()
	out := make([]string, len(ids))
	for i, id := range ids {
		testkit.Eventually(r.T, fmt.Sprintf("message %d settled", id), func() bool { return !r.Message(id).Pending() })
		out[i] = r.Message(id).Status
	}
	stop()
	return out
}

func TestSMSBudgetStopsSendsAtTheLimitExactly(t *testing.T) {
	const sent, over = enroll.StatusSent, enroll.StatusOverBudget
	for _, c := range []struct {
		name    string
		cfg     gateway.BudgetConfig
		numbers []string
		want    []string
		budget  string
		outcome string
	}{
		{"per number", gateway.BudgetConfig{PerNumberDay: 2},
			[]string{"+15550002001", "+15550002001", "+15550002002", "+15550002001"},
			[]string{sent, sent, sent, over}, "sms.budgets.per_number_day", gateway.RefusedPerNumber},
		{"per country", gateway.BudgetConfig{PerCountryDay: map[string]int{"FR": 2}},
			[]string{"+33612345001", "+15550002003", "+33612345002", "+33612345003", "+15550002004"},
			[]string{sent, sent, sent, over, sent}, "sms.budgets.per_country_day.FR", gateway.RefusedPerCountry},
		{"per day", gateway.BudgetConfig{PerDay: 3},
			[]string{"+15550002005", "+33612345004", "+15550002006", "+15550002007"},
			[]string{sent, sent, sent, over}, "sms.budgets.per_day", gateway.RefusedPerDay},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, b, alerts := budgetRig(t, c.cfg)
			got := sendAll(r, b, c.numbers...)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("statuses %v, want %v", got, c.want)
			}
			if n, want := len(r.Fake.Resources()), len(c.want)-1; n != want {
				t.Errorf("the provider got %d messages, want %d", n, want)
			}
			last := r.Message(uint64(slices.Index(c.want, over) + 1)) // IDs start at 1
			if !strings.Contains(last.LastError, c.budget) {
				t.Errorf("refused message says %q, want it to name %s", last.LastError, c.budget)
			}
			evs := events(r, "sms_budget")
			if len(evs) != 1 || evs[0].Outcome != c.outcome {
				t.Fatalf("sms_budget audit = %+v", evs)
			}
			if evs[0].Phone != c.numbers[slices.Index(c.want, over)] || !strings.Contains(evs[0].Detail, c.budget) {
				t.Errorf("audit names %q / %q", evs[0].Phone, evs[0].Detail)
			}
			b.Close()
			if n := alerts.sent(); len(n) != 1 || n[0].Budget != c.budget {
				t.Errorf("alerts = %+v, want one for %s", n, c.budget)
			}
		})
	}
}

func TestSMSBudgetAlertsOncePerBudgetPerDay(t *testing.T) {
	r, b, alerts := budgetRig(t, gateway.BudgetConfig{PerNumberDay: 1, PerCountryDay: map[string]int{"FR": 1}})
	got := sendAll(r, b, "+15550002101", "+15550002101", "+15550002101", "+15550002102", "+15550002102",
		"+33612345101", "+33612345102", "+33612345103")
	want := "sent over_budget over_budget sent over_budget sent over_budget over_budget"
	if strings.Join(got, " ") != want {
		t.Fatalf("statuses %v, want %s", got, want)
	}
	b.Close()
	var names []string
	for _, n := range alerts.sent() {
		names = append(names, fmt.Sprintf("%s/%d", n.Budget, n.Limit))
	}
	if strings.Join(names, " ") != "sms.budgets.per_number_day/1 sms.budgets.per_country_day.FR/1" {
		t.Fatalf("alerts %v: want one per budget", names)
	}
	if evs := events(r, "sms_budget"); len(evs) != 5 {
		t.Errorf("%d sms_budget events, want one per refused send (5)", len(evs))
	}
	alertEvs := events(r, "sms_budget_alert")
	if len(alertEvs) != 2 || alertEvs[0].Outcome != "ok" || !strings.Contains(alertEvs[0].Detail, "2 admins emailed") {
		t.Errorf("sms_budget_alert audit = %+v", alertEvs)
	}
	u, err := b.Usage(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(u.Reached, " ") != "sms.budgets.per_country_day.FR sms.budgets.per_number_day" {
		t.Errorf("usage = %+v", u)
	}
}

func TestSMSBudgetRefundsSendsThatFailed(t *testing.T) {
	r, b, _ := budgetRig(t, gateway.BudgetConfig{PerNumberDay: 2, PerDay: 10})
	r.Fake.FailNext(3, http.StatusInternalServerError, 0)
	got := sendAll(r, b, "+15550002201", "+15550002201")
	if strings.Join(got, " ") != "sent sent" {
		t.Fatalf("statuses %v: failed attempts used up the budget", got)
	}
	if n := r.Attempts("+15550002201"); n != 5 {
		t.Errorf("%d attempts reached the provider, want 5 (3 failed)", n)
	}
	u, err := b.Usage(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.Sent != 2 || u.PerDay != 10 || len(u.Reached) != 0 {
		t.Errorf("usage = %+v, want 2 of 10 sent", u)
	}
}

func TestSMSAllowedCountriesAtSend(t *testing.T) {
	r, b, alerts := budgetRig(t, gateway.BudgetConfig{}, "US")
	got := sendAll(r, b, "+15550002301", "+33612345301", "+442071838750")
	if strings.Join(got, " ") != "sent over_budget over_budget" {
		t.Fatalf("statuses %v", got)
	}
	if m := r.Message(2); !strings.Contains(m.LastError, "allowed_countries") {
		t.Errorf("refused message says %q", m.LastError)
	}
	evs := events(r, "sms_country")
	if len(evs) != 2 || evs[0].Outcome != gateway.RefusedCountry || !strings.Contains(evs[0].Detail, `"FR"`) {
		t.Errorf("sms_country audit = %+v", evs)
	}
	b.Close()
	if len(alerts.sent()) != 0 {
		t.Errorf("a refused country mailed the admins: %+v", alerts.sent())
	}
	if n := len(r.Fake.Requests()); n != 1 {
		t.Errorf("the provider got %d requests, want 1", n)
	}
}

// helpWebhook serves a webhook (HELP needs no directory) charging b.
func helpWebhook(t *testing.T, r *testkit.OutboxRig, b *gateway.SMSBudget) func(from, body string) (int, []string) {
	t.Helper()
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	wh := gateway.NewWebhook(gateway.Settings{PublicURL: testkit.PublicURL, AuthToken: testkit.AuthToken, SMSBudget: b},
		gateway.WebhookDeps{Store: r.Store, Catalog: catalog})
	srv := httptest.NewServer(wh)
	t.Cleanup(srv.Close)
	seq := 0
	return func(from, body string) (int, []string) {
		t.Helper()
		seq++
		form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano()+int64(seq))},
			"From": {from}, "To": {testkit.From}, "Body": {body}}
		status, texts, _, err := twiliotest.PostSMS(t.Context(), http.DefaultClient, srv.URL+"/sms/twilio",
			testkit.PublicURL+"/sms/twilio", testkit.AuthToken, form)
		if err != nil {
			t.Fatal(err)
		}
		return status, texts
	}
}

// TestSMSBudgetCountsTwiMLReplies: a reply is an SMS too. It is charged
// like an outbox send, and one over budget is left out.
func TestSMSBudgetCountsTwiMLReplies(t *testing.T) {
	r, b, alerts := budgetRig(t, gateway.BudgetConfig{PerNumberDay: 3, PerDay: 5}, "US", "FR")
	text := helpWebhook(t, r, b)
	const phone = "+15550002401"
	for i := range 2 {
		if status, texts := text(phone, "HELP"); status != http.StatusOK || len(texts) != 1 {
			t.Fatalf("HELP %d: %d %v", i+1, status, texts)
		}
	}
	// The third SMS of the day to this number is an outbox message...
	if got := sendAll(r, b, phone); got[0] != enroll.StatusSent {
		t.Fatalf("outbox message: %s", got[0])
	}
	// ... so the fourth, a reply, is over budget: an empty answer.
	status, texts := text(phone, "HELP")
	if status != http.StatusOK || len(texts) != 0 {
		t.Fatalf("reply over budget: %d %v, want 200 and no message", status, texts)
	}
	// Replies to other numbers count towards the day: 3 + 2 = 5.
	for _, other := range []string{"+15550002402", "+33612345401"} {
		if _, texts := text(other, "help"); len(texts) != 1 {
			t.Fatalf("reply to %s: %v", other, texts)
		}
	}
	if _, texts := text("+15550002403", "HELP"); len(texts) != 0 {
		t.Fatalf("sixth SMS of the day was sent: %v", texts)
	}
	// A country outside sms.allowed_countries gets no reply.
	if _, texts := text("+442071838750", "HELP"); len(texts) != 0 {
		t.Fatalf("reply to GB: %v", texts)
	}
	var outcomes []string
	for _, ev := range events(r, "sms_budget") {
		outcomes = append(outcomes, ev.Outcome+":"+ev.Phone)
	}
	if strings.Join(outcomes, " ") != "per_number_day:+15550002401 per_day:+15550002403" {
		t.Errorf("sms_budget audit: %v", outcomes)
	}
	if evs := events(r, "sms_country"); len(evs) != 1 || evs[0].Phone != "+442071838750" {
		t.Errorf("sms_country audit: %+v", evs)
	}
	u, err := b.Usage(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.Sent != 5 || u.PerDay != 5 {
		t.Errorf("usage = %+v, want 5 of 5", u)
	}
	b.Close()
	if n := len(alerts.sent()); n != 2 {
		t.Errorf("%d alerts, want 2 (per number, per day)", n)
	}
}

// TestSMSBudgetUsesARollingDay: a "day" is the last 24 hours.
func TestSMSBudgetUsesARollingDay(t *testing.T) {
	store := testkit.OpenStore(t)
	now := time.Date(2026, 3, 12, 23, 0, 0, 0, time.UTC)
	b := gateway.NewSMSBudget(store, gateway.SMSBudgetOptions{Budgets: gateway.BudgetConfig{PerNumberDay: 1},
		Now: func() time.Time { return now }})
	defer b.Close()
	send := outbox.Send{To: "+15550002501", Kind: enroll.KindSMS, Purpose: "code"}
	admit := func() string {
		t.Helper()
		tk, err := b.Admit(t.Context(), send)
		if err != nil {
			t.Fatal(err)
		}
		return tk.Refused
	}
	if got := admit(); got != "" {
		t.Fatalf("first: %q", got)
	}
	now = now.Add(2 * time.Hour) // past midnight: still within 24 hours
	if got := admit(); got != gateway.RefusedPerNumber {
		t.Fatalf("after midnight: %q, want %s", got, gateway.RefusedPerNumber)
	}
	now = now.Add(22 * time.Hour)
	if got := admit(); got != "" {
		t.Fatalf("24 hours later: %q", got)
	}
}
