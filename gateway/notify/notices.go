package notify

import (
	"context"
	"fmt"
	"time"

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

// UserNotices mails users about changes to their account.
type UserNotices struct {
	mailer Mailer
	mails  MailRenderer
	loc    *time.Location
}

// NewUserNotices returns the user mail notices; a nil mailer means mail is
// off (NotifyReset then returns ErrMailOff). loc is the time zone of the
// dates in the mails (nil: the server's).
func NewUserNotices(mailer Mailer, mails MailRenderer, loc *time.Location) *UserNotices {
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
	return u.mailer.Send(ctx, Mail{To: n.Mail, Subject: subject, Text: text, HTML: html,
		Kind: templates.MailPasswordReset, Username: n.Username})
}
