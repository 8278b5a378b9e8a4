package notify

import (
	"context"
	"strconv"
	"time"

	"github.com/replyreset/replyreset/templates"
)

// BudgetNotice tells the admins a budget was reached.
type BudgetNotice struct {
	Budget string // its configuration key: "sms.budgets.per_country_day.FR"
	Limit  int
	At     time.Time
}

// NotifyBudget mails every admin the "sms_budget" alert.
func (a *AdminAlerts) NotifyBudget(ctx context.Context, n BudgetNotice) (int, error) {
	sent, _, err := a.deliver(ctx, templates.MailSMSBudget, map[string]string{
		"budget": n.Budget,
		"limit":  strconv.Itoa(n.Limit),
		"time":   templates.FormatDateTime(a.lang, n.At.In(a.loc)),
	}, nil)
	return len(sent), err
}
