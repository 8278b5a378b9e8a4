package web

// The console's views of the two outbound queues: the mail queue
// (/admin/mail) and the SMS budgets on the dashboard.

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/templates"
)

// MailQueueSource lists the mail queue for the console (enroll.Store).
type MailQueueSource interface {
	QueuedMails(ctx context.Context, limit int) ([]enroll.QueuedMail, error)
}

// mailPageLimit is how many of the newest mails the page lists.
const mailPageLimit = 200

// mailView is the mail page: the newest mails of the queue, never their
// subjects or bodies. Off: mail is not configured.
type mailView struct {
	Off  bool
	Rows []mailRow
}

type mailRow struct {
	ID                               uint64
	To, Kind, State, LastError, Next string
	Attempts                         int
}

// GET /admin/mail: what became of every mail (activation links, notices,
// admin alerts).
func (s *adminSite) mail(c echo.Context) error {
	v := adminView{Section: "mail", Mail: &mailView{Off: s.mailq == nil}}
	if s.mailq == nil {
		return s.render(c, http.StatusOK, templates.AdminMail, v)
	}
	ctx, cancel := withSource(c)
	defer cancel()
	mails, err := s.mailq.QueuedMails(ctx, mailPageLimit)
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	lang := s.language(c)
	for _, m := range mails {
		r := mailRow{ID: m.ID, To: m.To, Kind: m.Kind, State: m.State, LastError: m.LastError, Attempts: m.Attempts}
		if m.Pending() {
			r.Next = templates.FormatDateTime(lang, m.NextAttempt.Local())
		}
		v.Mail.Rows = append(v.Mail.Rows, r)
	}
	return s.render(c, http.StatusOK, templates.AdminMail, v)
}

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
