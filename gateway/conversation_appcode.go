package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// reset.require_app_code: a RESET carries the enrolled authenticator's code.

// appCodeWindow and appCodeTries: after this many coded RESETs from one
// number within the window, further ones are refused until it passes.
const (
	appCodeWindow = 10 * time.Minute
	appCodeTries  = 5
)

// errStepUsed: the code's time step was accepted before (a replay).
var errStepUsed = errors.New("authenticator code already used")

// checkAppCode enforces reset.require_app_code: the RESET must carry the
// current code of the enrolled authenticator app, and each code works once.
// It returns the reply to send when the reset must not go on.
func (c *conversation) checkAppCode(ctx context.Context) (string, bool, error) {
	e := c.enr
	if len(e.TOTPSealed) == 0 || c.w.set.Secrets == nil {
		c.audit(ctx, "reset", e.Username, "no_app", "")
		return c.text("sms.reset.no_app", nil), false, nil
	}
	if c.cmd.Code == "" {
		c.audit(ctx, "reset", e.Username, "need_code", "")
		return c.text("sms.reset.need_code", nil), false, nil
	}
	ok, err := c.w.store.Allow(ctx, "appcode:"+c.phone, c.now, appCodeWindow, appCodeTries)
	if err != nil {
		return "", false, fmt.Errorf("rate limit: %w", err)
	}
	if !ok {
		c.audit(ctx, "reset", e.Username, "rate_limited", "authenticator code tries")
		return c.text("sms.reset.rate_limited", map[string]string{"minutes": "10"}), false, nil
	}
	secret, err := c.w.set.Secrets.Open(e.TOTPSealed, "totp:"+e.Username)
	if err != nil {
		c.audit(ctx, "reset", e.Username, "error", "authenticator secret cannot be opened")
		return c.text("sms.reset.failed", nil), false, nil
	}
	step, valid := enroll.VerifyTOTP(string(secret), c.cmd.Code, c.now, e.LastTOTPStep)
	if valid {
		// Record the step atomically, so the same code in a second message
		// racing this one is refused.
		err = c.w.store.UpdateEnrollment(ctx, e.Username, func(cur *enroll.Enrollment) error {
			if cur.LastTOTPStep >= step {
				return errStepUsed
			}
			cur.LastTOTPStep = step
			return nil
		})
		if errors.Is(err, errStepUsed) {
			valid = false
		} else if err != nil {
			return "", false, fmt.Errorf("record authenticator step: %w", err)
		}
	}
	if !valid {
		c.audit(ctx, "reset", e.Username, "bad_code", "")
		return c.text("sms.reset.bad_code", nil), false, nil
	}
	return "", true, nil
}
