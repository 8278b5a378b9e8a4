package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
)

// The conversation's mails: the notice to the user after an SMS reset,
// the admins' alert after a NOT ME (both sent by gateway/notify).

// ResetNotifier sends reset notices; Settings.ResetMail.
type ResetNotifier interface {
	NotifyReset(ctx context.Context, n notify.ResetNotice) error
}

var _ ResetNotifier = (*notify.UserNotices)(nil)

// NotMeNotifier alerts the admins of a NOT ME. The webhook calls it, when
// Settings.NotMe is set, after the enrollment is frozen; it returns how
// many admins were told.
type NotMeNotifier interface {
	NotifyNotMe(ctx context.Context, n notify.NotMeNotice) (int, error)
}

var _ NotMeNotifier = (*notify.AdminAlerts)(nil)

// resetNoticeTimeout bounds one notice; it is sent after the reply left.
const resetNoticeTimeout = time.Minute

// noticeReset mails the user about the reset just done, in the background
// so the SMS reply does not wait for SMTP, and audits what became of it.
func (c *conversation) noticeReset(ctx context.Context, u directory.User) {
	if c.w.set.ResetMail == nil {
		return
	}
	actor, phone, now := "sms:"+c.phone, c.phone, c.now
	if u.Mail == "" {
		c.audit(ctx, "reset_notice", u.Username, "no_mail", "")
		return
	}
	n := notify.ResetNotice{Username: u.Username, DisplayName: u.DisplayName, Mail: u.Mail, Phone: phone, Language: c.lang, At: now}
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

// notMeLookupTimeout bounds the directory lookup made for the admin
// mail, so the reply still leaves well within Twilio's wait.
const notMeLookupTimeout = 3 * time.Second

// notMeAccount looks the enrolled account up for the admin mail and the
// audit trail, when admins are to be alerted. It only reads: a NOT ME
// never unlocks the account, so a locked account stays locked.
func (c *conversation) notMeAccount(ctx context.Context) (u directory.User, detail string) {
	u = directory.User{Username: c.enr.Username}
	if c.w.set.NotMe == nil {
		return u, ""
	}
	lctx, cancel := context.WithTimeout(ctx, notMeLookupTimeout)
	defer cancel()
	found, err := c.w.dir.FindUser(lctx, c.enr.Username)
	if err != nil {
		c.w.log.WarnContext(ctx, "NOT ME: the directory lookup for the admin mail failed", "err", err)
		return u, "account lock state unknown: " + err.Error()
	}
	return found, "account locked: " + strconv.FormatBool(found.Locked)
}

// alertNotMe emails the admins about the NOT ME just handled, when
// Settings.NotMe is set, and audits what became of it.
func (c *conversation) alertNotMe(ctx context.Context, u directory.User) {
	notifier := c.w.set.NotMe
	if notifier == nil {
		return
	}
	username := c.enr.Username
	n, err := notifier.NotifyNotMe(ctx, notify.NotMeNotice{Username: username, DisplayName: u.DisplayName, Phone: c.phone, At: c.now})
	if err != nil {
		c.w.log.ErrorContext(ctx, "NOT ME: admins could not be emailed", "err", err)
		c.audit(ctx, "not_me_alert", username, notify.AlertOutcome(err), err.Error())
		return
	}
	c.audit(ctx, "not_me_alert", username, "ok", fmt.Sprintf("%d admins emailed", n))
}
