package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// The schedule of self-expiring SMS passwords (password.sms_password_ttl):
// a RESET that texts a must-change password records a check, which the
// expiry worker (gateway/expiry) carries out when it is due.

// smsPasswordScheduler is the part of the webhook's store that records a
// check after a reset (enroll.SMSPasswordStore).
type smsPasswordScheduler interface {
	ScheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) error
}

// smsExpiryAction is the audit action of the schedule, and of the worker.
const smsExpiryAction = "sms_password_expired"

// scheduleTimeout bounds recording a check: it runs after the directory
// work, which may have used up the reply's budget.
const scheduleTimeout = 5 * time.Second

// scheduleExpiry records the check of the password just texted to u, when
// Settings.Password asks for one (a must-change password and a TTL).
func (c *conversation) scheduleExpiry(ctx context.Context, u directory.User) {
	ttl := c.w.set.SMSPasswordTTL
	if ttl <= 0 || !c.w.set.Password.MustChange {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scheduleTimeout)
	defer cancel()
	err := errors.New("the store keeps no SMS password schedule")
	if s, ok := c.w.store.(smsPasswordScheduler); ok {
		err = s.ScheduleSMSPasswordCheck(sctx, enroll.SMSPasswordCheck{Username: u.Username, DN: u.DN,
			ResetAt: c.now, Due: c.now.Add(ttl)})
	}
	if err != nil {
		c.w.log.ErrorContext(sctx, "the texted password will not expire: its check could not be recorded",
			"username", u.Username, "err", err)
		c.audit(ctx, smsExpiryAction, u.Username, "error", "not scheduled: "+err.Error())
	}
}
