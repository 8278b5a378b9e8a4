package reset

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
)

// doneTTL is how long a finished reset's mark is kept: beyond the life of
// its state.
const doneTTL = 2 * (codeTTL + verifiedTTL)

// POST /reset/unlock: unlock the account, its password unchanged. The
// reset is used up (MarkMessage, atomic): a second post of it (a double
// tap, Back and post again) gets the same page and does nothing. The
// enrolled phone is told, with NOT ME as the way out.
func (s *Site) postUnlock(c echo.Context) error {
	st, err := s.open(c)
	if err != nil || !st.Verified {
		return s.ended(c)
	}
	u, e, answered, err := s.allowed(c, st)
	if answered {
		return err
	}
	ctx := c.Request().Context()
	first, err := s.d.Store.MarkMessage(ctx, "reset-web:done:"+st.ID, s.now(), doneTTL)
	if err != nil {
		return s.failed(c, "use the reset up", err)
	}
	done := view{Done: &templates.Msg{Key: "reset.done.unlocked", Args: map[string]string{"username": u.Username}}}
	if !first {
		s.forget(c)
		return s.render(c, http.StatusOK, templates.PageResetDone, done)
	}
	detail := "unlock: was not locked"
	if u.Locked {
		if err := s.d.Directory.Unlock(ctx, u); err != nil {
			s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: "error", Detail: "unlock: " + err.Error()})
			return s.failed(c, "unlock", err)
		}
		detail = "unlock"
	}
	s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: "ok", Detail: detail})
	s.tell(c, e, "sms.reset_web.unlocked")
	s.forget(c)
	return s.render(c, http.StatusOK, templates.PageResetDone, done)
}

// tell texts the enrolled phone what was done from the browser, with NOT
// ME as the way to say it was not the owner. A notice that cannot be
// queued is logged: what was done stands.
func (s *Site) tell(c echo.Context, e enroll.Enrollment, key string) {
	body := s.d.Messages.Text(e.Language, key, map[string]string{"username": e.Username, "time": s.clock(s.now())})
	if err := s.queue(c.Request().Context(), enroll.KindSMS, e, "reset_web_notice", body); err != nil {
		s.d.Log.ErrorContext(c.Request().Context(), "reset: notice not queued", "username", e.Username, "err", err)
	}
}

// mailTimeout bounds the mail notice; it is queued, not sent, here.
const mailTimeout = 10 * time.Second

// mail tells the account's mail address that its password was changed
// from a browser, with NOT ME as the way out. Mail off or no address:
// nothing; a failure is logged and audited, the change stands.
func (s *Site) mail(c echo.Context, u directory.User, e enroll.Enrollment) {
	to := u.Mail
	if to == "" {
		to = e.Mail
	}
	if s.d.Mailer == nil || s.d.Mails == nil || to == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), mailTimeout)
	defer cancel()
	display := u.DisplayName
	if display == "" {
		display = u.Username
	}
	subject, text, html, err := s.d.Mails.RenderMail(e.Language, templates.MailWebReset, map[string]string{
		"display_name": display, "username": u.Username, "phone": e.Phone,
		"time": templates.FormatDateTime(e.Language, s.now().In(s.d.Location))})
	if err == nil {
		err = s.d.Mailer.Send(ctx, notify.Mail{To: to, Subject: subject, Text: text, HTML: html,
			Kind: templates.MailWebReset, Username: u.Username})
	}
	if err != nil {
		s.d.Log.ErrorContext(ctx, "reset: mail notice not queued", "username", u.Username, "err", err)
		s.audit(c, enroll.Event{Username: u.Username, Outcome: "mail_error", Detail: err.Error()})
	}
}
