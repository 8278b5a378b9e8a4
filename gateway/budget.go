package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// Cost and abuse controls: sms.allowed_countries and sms.budgets.
//
// Every SMS and call that leaves is charged, before it leaves, to up to
// three counters: its number (per_number_day), its country
// (per_country_day) and the total (per_day). A "day" is any 24 hours (a
// sliding window, like the store's rate limits), not a calendar day: there
// is no midnight at which an attacker gets a fresh budget, and no time zone
// to agree on. The charge is atomic over the three counters, so a refused
// send uses up none of them, and it is taken back when the provider refuses
// the send. Both the outbox (codes, notices, alerts) and the webhook's TwiML
// replies (which Twilio sends and bills like any other SMS) are charged.
//
// A refused send is audited (action "sms_budget", outcome the budget, or
// action "sms_country" for a number outside sms.allowed_countries) and
// counted by SMSMetrics. The first refusal by a budget within 24 hours
// mails the admins, once per budget (per_country_day once per country).

// budgetWindow is the "day" of the budgets.
const budgetWindow = 24 * time.Hour

// Refusal reasons, as audit outcomes and SMSMetrics reasons.
const (
	RefusedCountry    = outbox.RefusedCountry
	RefusedPerNumber  = "per_number_day"
	RefusedPerCountry = "per_country_day"
	RefusedPerDay     = "per_day"
)

// Budget counter keys in the store; the number and country are appended.
const (
	budgetKeyNumber  = "sms-budget:number:"
	budgetKeyCountry = "sms-budget:country:"
	budgetKeyDay     = "sms-budget:day"
	budgetKeyAlert   = "sms-budget-alert:" // + the budget's config key
)

// BudgetStore is what the budgets need from the store (enroll.Store).
type BudgetStore interface {
	SpendBudget(ctx context.Context, now time.Time, window time.Duration, limits []enroll.BudgetLimit) (int, error)
	RefundBudget(ctx context.Context, keys []string, at time.Time) error
	BudgetHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
	Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

// BudgetNotifier mails the admins about a reached budget (AdminAlerts);
// it returns how many were told.
type BudgetNotifier interface {
	NotifyBudget(ctx context.Context, n notify.BudgetNotice) (int, error)
}

// SMSMetrics is the hook for the Prometheus metrics of issue 8: it is told
// of every send charged and every send refused. Implementations must be
// quick and safe for concurrent use.
type SMSMetrics interface {
	// SMSSent: one SMS or call (kind "sms" | "call") left for country
	// ("" when unknown) with purpose ("code", "reset", "help", ...).
	SMSSent(kind, purpose, country string)
	// SMSRefused: one was not sent; reason is one of the Refused* values.
	SMSRefused(kind, purpose, reason string)
}

// SendBudget admits or refuses the webhook's replies; *SMSBudget is the
// implementation the webhook and the outbox (outbox.Budget) are given.
type SendBudget interface {
	// Admit charges one send to to. The ticket says whether it was refused;
	// an error means the store failed and nothing was charged.
	Admit(ctx context.Context, s outbox.Send) (outbox.Ticket, error)
	// Refund takes back an admitted send that did not leave.
	Refund(ctx context.Context, t outbox.Ticket)
}

// SMSBudgetOptions configure SMSBudget.
type SMSBudgetOptions struct {
	Budgets          BudgetConfig
	AllowedCountries []string
	Alerts           BudgetNotifier // nil: no mail
	Metrics          SMSMetrics     // nil: none
	Log              *slog.Logger
	Now              func() time.Time
}

// SMSBudget enforces sms.allowed_countries and sms.budgets.
type SMSBudget struct {
	store   BudgetStore
	opt     SMSBudgetOptions
	allowed map[string]bool
	log     *slog.Logger
	mails   sync.WaitGroup // budget alerts being mailed
}

var (
	_ SendBudget    = (*SMSBudget)(nil)
	_ outbox.Budget = (*SMSBudget)(nil)
)

// NewSMSBudget wires the controls; zero limits are no limits and an empty
// AllowedCountries allows every country.
func NewSMSBudget(store BudgetStore, opt SMSBudgetOptions) *SMSBudget {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	b := &SMSBudget{store: store, opt: opt, log: opt.Log}
	if len(opt.AllowedCountries) > 0 {
		b.allowed = map[string]bool{}
		for _, c := range opt.AllowedCountries {
			b.allowed[c] = true
		}
	}
	return b
}

// Admit checks the country, then charges the budgets. A refusal is
// audited, counted and, the first time in 24 hours for its budget, mailed
// to the admins (in the background: Close waits for it).
func (b *SMSBudget) Admit(ctx context.Context, s outbox.Send) (outbox.Ticket, error) {
	now := b.opt.Now()
	country := enroll.PhoneCountry(s.To)
	if b.allowed != nil && !b.allowed[country] {
		t := outbox.Ticket{Refused: RefusedCountry, Budget: "sms.allowed_countries", At: now}
		b.refused(ctx, s, t, country, 0)
		return t, nil
	}
	type counter struct {
		limit          enroll.BudgetLimit
		reason, budget string
	}
	var cs []counter
	bc := b.opt.Budgets
	if bc.PerNumberDay > 0 {
		cs = append(cs, counter{enroll.BudgetLimit{Key: budgetKeyNumber + s.To, Limit: bc.PerNumberDay},
			RefusedPerNumber, "sms.budgets.per_number_day"})
	}
	if n := bc.PerCountryDay[country]; n > 0 {
		cs = append(cs, counter{enroll.BudgetLimit{Key: budgetKeyCountry + country, Limit: n},
			RefusedPerCountry, "sms.budgets.per_country_day." + country})
	}
	if bc.PerDay > 0 {
		cs = append(cs, counter{enroll.BudgetLimit{Key: budgetKeyDay, Limit: bc.PerDay},
			RefusedPerDay, "sms.budgets.per_day"})
	}
	t := outbox.Ticket{At: now}
	if len(cs) > 0 {
		limits := make([]enroll.BudgetLimit, len(cs))
		for i, c := range cs {
			limits[i] = c.limit
		}
		i, err := b.store.SpendBudget(ctx, now, budgetWindow, limits)
		if err != nil {
			return outbox.Ticket{}, err
		}
		if i >= 0 {
			t.Refused, t.Budget = cs[i].reason, cs[i].budget
			b.refused(ctx, s, t, country, cs[i].limit.Limit)
			return t, nil
		}
		for _, l := range limits {
			t.Keys = append(t.Keys, l.Key)
		}
	}
	if b.opt.Metrics != nil {
		b.opt.Metrics.SMSSent(s.Kind, s.Purpose, country)
	}
	return t, nil
}

// Refund takes back an admitted send that did not leave.
func (b *SMSBudget) Refund(ctx context.Context, t outbox.Ticket) {
	if t.Refused != "" || len(t.Keys) == 0 {
		return
	}
	if err := b.store.RefundBudget(context.WithoutCancel(ctx), t.Keys, t.At); err != nil {
		b.log.WarnContext(ctx, "sms budget: a send that did not leave stays counted", "err", err)
	}
}

// refused audits, counts and alerts one refused send.
func (b *SMSBudget) refused(ctx context.Context, s outbox.Send, t outbox.Ticket, country string, limit int) {
	ctx = context.WithoutCancel(ctx)
	if b.opt.Metrics != nil {
		b.opt.Metrics.SMSRefused(s.Kind, s.Purpose, t.Refused)
	}
	action, detail := "sms_budget", fmt.Sprintf("%s %s not sent: %s (%d in 24 hours) reached", s.Kind, s.Purpose, t.Budget, limit)
	if t.Refused == RefusedCountry {
		action, detail = "sms_country", fmt.Sprintf("%s %s not sent: country %q is not in sms.allowed_countries", s.Kind, s.Purpose, country)
	}
	b.log.WarnContext(ctx, "sms not sent", "reason", t.Refused, "budget", t.Budget, "kind", s.Kind, "purpose", s.Purpose)
	b.audit(ctx, enroll.Event{Time: t.At, Actor: "system", Action: action, Username: s.Username, Phone: s.To,
		Outcome: t.Refused, Detail: detail})
	if t.Refused == RefusedCountry {
		return
	}
	first, err := b.store.Allow(ctx, budgetKeyAlert+t.Budget, t.At, budgetWindow, 1)
	if err != nil {
		b.log.ErrorContext(ctx, "sms budget: cannot record the admin alert", "budget", t.Budget, "err", err)
		return
	}
	if !first || b.opt.Alerts == nil {
		return
	}
	n := notify.BudgetNotice{Budget: t.Budget, Limit: limit, At: t.At}
	b.mails.Go(func() {
		mctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		ev := enroll.Event{Time: b.opt.Now(), Actor: "system", Action: "sms_budget_alert", Outcome: "ok", Detail: t.Budget}
		sent, err := b.opt.Alerts.NotifyBudget(mctx, n)
		if err != nil {
			ev.Outcome, ev.Detail = notify.AlertOutcome(err), t.Budget+": "+err.Error()
			b.log.ErrorContext(mctx, "sms budget: admins could not be emailed", "budget", t.Budget, "err", err)
		} else {
			ev.Detail += "; " + strconv.Itoa(sent) + " admins emailed"
		}
		b.audit(mctx, ev)
	})
}

func (b *SMSBudget) audit(ctx context.Context, ev enroll.Event) {
	if _, err := b.store.AppendAudit(ctx, ev); err != nil {
		b.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "outcome", ev.Outcome, "err", err)
	}
}

// Close waits for the alert mails being sent.
func (b *SMSBudget) Close() { b.mails.Wait() }

// SMSUsage is what the admin dashboard shows of the budgets.
type SMSUsage struct {
	// Sent counts the SMS and calls sent in the last 24 hours, when
	// sms.budgets.per_day is set (the counter it keeps); PerDay is that
	// limit, 0 when there is none (and nothing is counted).
	Sent, PerDay int
	// Reached lists the budgets (configuration keys) that refused a send
	// in the last 24 hours.
	Reached []string
}

// Usage reads the budgets as they stand at now.
func (b *SMSBudget) Usage(ctx context.Context, now time.Time) (SMSUsage, error) {
	u := SMSUsage{PerDay: b.opt.Budgets.PerDay, Reached: []string{}}
	if u.PerDay > 0 {
		n, err := b.store.BudgetHits(ctx, budgetKeyDay, now, budgetWindow)
		if err != nil {
			return SMSUsage{}, err
		}
		u.Sent = n
	}
	budgets := []string{"sms.budgets.per_day", "sms.budgets.per_number_day"}
	for c := range b.opt.Budgets.PerCountryDay {
		budgets = append(budgets, "sms.budgets.per_country_day."+c)
	}
	slices.Sort(budgets)
	for _, name := range budgets {
		n, err := b.store.BudgetHits(ctx, budgetKeyAlert+name, now, budgetWindow)
		if err != nil {
			return SMSUsage{}, err
		}
		if n > 0 {
			u.Reached = append(u.Reached, name)
		}
	}
	return u, nil
}

var _ BudgetNotifier = (*notify.AdminAlerts)(nil)
