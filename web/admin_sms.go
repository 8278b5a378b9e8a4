package web

import (
	"context"
	"time"

	"github.com/replyreset/replyreset/gateway"
)

// SMSUsageSource reads the SMS budgets for the dashboard (gateway.SMSBudget).
type SMSUsageSource interface {
	Usage(ctx context.Context, now time.Time) (gateway.SMSUsage, error)
}

// smsView is the dashboard's SMS section: sends in the last 24 hours
// against sms.budgets.per_day, and the budgets that refused a send.
type smsView struct {
	Sent, PerDay int
	Reached      []string
}

// smsUsage reads the budgets; nil when there is no source or it fails,
// and the dashboard then shows the rest without it.
func (s *adminSite) smsUsage(ctx context.Context) *smsView {
	if s.usage == nil {
		return nil
	}
	u, err := s.usage.Usage(ctx, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "admin dashboard: cannot read the SMS budgets", "err", err)
		return nil
	}
	return &smsView{Sent: u.Sent, PerDay: u.PerDay, Reached: u.Reached}
}
