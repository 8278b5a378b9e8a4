package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// ResetNotice tells a user by email that their password was reset by SMS,
// so that a reset they did not ask for does not go unnoticed.
type ResetNotice struct {
	Username    string
	DisplayName string
	Mail        string
	Phone       string // E.164; the mail shows only its last two digits
	Language    string
	At          time.Time
}

// ResetNotifier sends reset notices; Settings.ResetMail.
type ResetNotifier interface {
	NotifyReset(ctx context.Context, n ResetNotice) error
}

// UserNotices mails users about changes to their account.
type UserNotices struct {
	mailer enroll.Mailer
	mails  enroll.MailRenderer
	loc    *time.Location
}

var _ ResetNotifier = (*UserNotices)(nil)

// NewUserNotices returns the user mail notices; a nil mailer means mail is
// off (NotifyReset then returns ErrMailOff). loc is the time zone of the
// dates in the mails (nil: the server's).
func NewUserNotices(mailer enroll.Mailer, mails enroll.MailRenderer, loc *time.Location) *UserNotices {
	if loc == nil {
		loc = time.Local
	}
	return &UserNotices{mailer: mailer, mails: mails, loc: loc}
}

// NotifyReset mails the "password_reset" notice.
func (u *UserNotices) NotifyReset(ctx context.Context, n ResetNotice) error {
	if u.mailer == nil {
		return ErrMailOff
	}
	display := n.DisplayName
	if display == "" {
		display = n.Username
	}
	subject, text, html, err := u.mails.RenderMail(n.Language, templates.MailPasswordReset, map[string]string{
		"display_name": display,
		"username":     n.Username,
		"phone":        n.Phone, // RenderMail masks it
		"time":         templates.FormatDateTime(n.Language, n.At.In(u.loc)),
	})
	if err != nil {
		return fmt.Errorf("render reset notice: %w", err)
	}
	return u.mailer.Send(ctx, enroll.Mail{To: n.Mail, Subject: subject, Text: text, HTML: html,
		Kind: templates.MailPasswordReset, Username: n.Username})
}

// resetNoticeTimeout bounds one notice; it is sent after the reply left.
const resetNoticeTimeout = time.Minute

// noticeReset mails the user about the reset just done, in the background
// so the SMS reply does not wait for SMTP, and audits what became of it.
func (c *conversation) noticeReset(u directory.User) {
	if c.w.set.ResetMail == nil {
		return
	}
	actor, phone, now := "sms:"+c.phone, c.phone, c.now
	if u.Mail == "" {
		c.audit("reset_notice", u.Username, "no_mail", "")
		return
	}
	n := ResetNotice{Username: u.Username, DisplayName: u.DisplayName, Mail: u.Mail, Phone: phone, Language: c.lang, At: now}
	w := c.w
	w.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), resetNoticeTimeout)
		defer cancel()
		ev := enroll.Event{Time: w.now(), Actor: actor, Action: "reset_notice", Username: u.Username, Phone: phone, Outcome: "ok"}
		if err := w.set.ResetMail.NotifyReset(ctx, n); err != nil {
			ev.Outcome, ev.Detail = "error", err.Error()
			w.log.Error("reset notice mail not sent", "username", u.Username, "err", err)
		}
		if _, err := w.store.AppendAudit(ctx, ev); err != nil {
			w.log.Error("audit write failed", "action", ev.Action, "err", err)
		}
	})
}

// Close waits for the notices still being sent.
func (w *Webhook) Close() { w.background.Wait() }
