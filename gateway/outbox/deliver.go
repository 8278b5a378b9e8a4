package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// errUnchanged leaves a record as it is inside UpdateMessage or UpdateMail.
var errUnchanged = errors.New("gateway: message unchanged")

// deliver claims m, sends it and records the result.
func (o *Outbox) deliver(ctx context.Context, m enroll.OutboundMessage) outcome {
	// Once claimed, finish the message even if ctx ends: a send cut short
	// would only be repeated after a restart.
	ctx = context.WithoutCancel(ctx)
	if !m.SendStarted.IsZero() && m.Kind != enroll.KindRedact {
		if oc, settled := o.settleUnknown(ctx, m); settled {
			return oc
		}
	}
	// The budget is asked before the claim, so that nothing that talks to
	// the store comes between the claim's send mark and the send: a
	// worker deposed while it checks the budget has claimed nothing.
	var ticket Ticket
	if m.Kind != enroll.KindRedact {
		t, stop, oc := o.admit(ctx, m)
		if stop {
			return oc
		}
		ticket = t
	}
	now := o.opt.Now()
	lease := o.backoff(m.Attempts + 1)
	var claimed enroll.OutboundMessage
	err := o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		if !c.Pending() || c.NextAttempt.After(now) || !c.SendStarted.Equal(m.SendStarted) {
			return errUnchanged // settled or claimed since DueMessages
		}
		c.UpdatedAt = now
		if reason := o.spent(*c, now); reason != "" {
			c.Status, c.LastError = enroll.StatusExpired, reason
		} else {
			c.Attempts++
			c.NextAttempt = now.Add(lease)
			if c.Kind != enroll.KindRedact {
				c.SendStarted = now
			}
		}
		claimed = *c
		return nil
	})
	if err != nil || claimed.Status == enroll.StatusExpired {
		o.refund(ctx, ticket)
	}
	switch {
	case errors.Is(err, errUnchanged):
		return outcomeDone
	case err != nil:
		o.log.ErrorContext(ctx, "outbox: cannot claim message", "message_id", m.ID, "err", err)
		return outcomeHeld
	case claimed.Status == enroll.StatusExpired:
		o.log.WarnContext(ctx, "outbox: message expired", o.attrs(claimed, "reason", claimed.LastError)...)
		return outcomeDone
	}
	o.retries = append(o.retries, claimed.NextAttempt)
	if claimed.Kind == enroll.KindRedact {
		return o.redact(ctx, claimed)
	}

	body, err := o.opener.Open(claimed.Sealed, SealPurpose)
	if err != nil {
		o.refund(ctx, ticket)
		return o.finish(ctx, claimed, "", &SendError{Final: true,
			Message: "the body cannot be opened (was the key file replaced?)"})
	}
	sctx, cancel := context.WithTimeout(ctx, o.opt.SendTimeout)
	defer cancel()
	var r Receipt
	switch claimed.Kind {
	case enroll.KindSMS:
		r, err = o.sender.SendSMS(sctx, claimed.To, string(body))
	case enroll.KindCall:
		r, err = o.sender.Call(sctx, claimed.To, string(body), claimed.Language)
	default:
		err = &SendError{Final: true, Message: fmt.Sprintf("unknown message kind %q", claimed.Kind)}
	}
	if err == nil && r.ProviderID == "" {
		err = &SendError{Message: "the provider gave no message ID"}
	}
	if err != nil {
		o.refund(ctx, ticket)
		return o.finish(ctx, claimed, string(body), err)
	}
	err = o.store.UpdateMessage(ctx, claimed.ID, func(c *enroll.OutboundMessage) error {
		c.Status, c.ProviderID, c.ErrorCode, c.LastError = enroll.StatusSent, r.ProviderID, 0, ""
		c.SendStarted, c.UpdatedAt = time.Time{}, o.opt.Now()
		return nil
	})
	if err != nil {
		// The message left but the store does not know (the store failed,
		// or this worker was deposed: ErrFenced). The message keeps its
		// send mark, so the worker that next finds it due does not send
		// it again blindly (settleUnknown).
		o.log.ErrorContext(ctx, "outbox: sent, but the result cannot be recorded",
			o.attrs(claimed, "provider_id", r.ProviderID, "err", err)...)
		return outcomeHeld
	}
	claimed.Status = enroll.StatusSent
	o.log.InfoContext(ctx, "outbox: sent", o.attrs(claimed, "provider_id", r.ProviderID)...)
	return outcomeDone
}

// SentFinder is a Sender that can tell whether the provider accepted a
// message (twilio.Sender.FindSent): a send whose outcome was never
// recorded is then settled by asking, rather than by a rule.
type SentFinder interface {
	// FindSent looks for a message of kind to number to with body that
	// the provider accepted at or after since; found is false when it has
	// none. It never puts body in an error.
	FindSent(ctx context.Context, kind, to, body string, since time.Time) (r Receipt, found bool, err error)
}

// resendWhenUnknown are the purposes sent again when a send's outcome is
// unknown and the provider cannot say: those whose loss leaves the user
// stuck. A code sent twice is the same code. A password sent twice is the
// same password to the same phone (one more copy at the carrier, redacted
// like the first), while a password lost is an account whose new password
// nobody knows. Anything else (a lockout alert, a reminder, a notice) is
// better lost, and shown to the admin as unknown, than texted twice: a
// second "your account was locked" reads as a second lockout.
// ("password" is gateway.PasswordPurpose, which this package cannot import.)
var resendWhenUnknown = map[string]bool{"code": true, "password": true}

// settleUnknown decides what becomes of m, whose last claim ran out with
// its send mark still set: the worker that claimed it stopped (killed,
// paused, deposed) after or before handing it to the provider, and before
// recording the outcome. The provider is asked first, when the sender
// can tell (SentFinder): found, m is recorded as sent; not found, it is
// sent. Otherwise resendWhenUnknown decides: sent again, or ended as
// unknown. settled is false when m is to be sent now (by deliver).
func (o *Outbox) settleUnknown(ctx context.Context, m enroll.OutboundMessage) (oc outcome, settled bool) {
	since := m.SendStarted
	if f, ok := o.sender.(SentFinder); ok {
		if body, err := o.opener.Open(m.Sealed, SealPurpose); err == nil {
			fctx, cancel := context.WithTimeout(ctx, o.opt.SendTimeout)
			r, found, err := f.FindSent(fctx, m.Kind, m.To, string(body), since)
			cancel()
			switch {
			case err == nil && found:
				return o.settle(ctx, m, "found", func(c *enroll.OutboundMessage) {
					c.Status, c.ProviderID, c.ErrorCode, c.LastError = enroll.StatusSent, r.ProviderID, 0, ""
					c.SendStarted = time.Time{}
				}), true
			case err == nil:
				o.log.InfoContext(ctx, "outbox: a send whose outcome was not recorded never reached the provider; sending it",
					o.attrs(m, "send_started", since)...)
				return outcomeDone, false
			default:
				o.log.WarnContext(ctx, "outbox: cannot ask the provider whether a message was sent",
					o.attrs(m, "err", Scrub(err.Error(), string(body)))...)
			}
		}
	}
	if resendWhenUnknown[m.Purpose] {
		o.log.WarnContext(ctx, "outbox: the outcome of a send is unknown; sending it again (a lost "+m.Purpose+" is worse than a second one)",
			o.attrs(m, "send_started", since)...)
		o.auditUnknown(ctx, m, "resent")
		return outcomeDone, false
	}
	why := fmt.Sprintf("the outcome of the send begun at %s is unknown (the worker stopped before recording it); not sent again",
		since.UTC().Format(time.RFC3339))
	return o.settle(ctx, m, "unknown", func(c *enroll.OutboundMessage) {
		c.Status, c.LastError = enroll.StatusUnknown, why
	}), true
}

// settle applies set to m, unless m changed since it was read, and logs
// and audits the result as outcome ("found": the provider had it sent;
// "unknown": ended unsent).
func (o *Outbox) settle(ctx context.Context, m enroll.OutboundMessage, outcome string, set func(*enroll.OutboundMessage)) outcome {
	var stored enroll.OutboundMessage
	err := o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		if !c.Pending() || !c.SendStarted.Equal(m.SendStarted) {
			return errUnchanged
		}
		set(c)
		c.UpdatedAt = o.opt.Now()
		stored = *c
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return outcomeDone
	case err != nil:
		o.log.ErrorContext(ctx, "outbox: cannot settle a send whose outcome is unknown", o.attrs(m, "err", err)...)
		return outcomeHeld
	}
	if outcome == "found" {
		o.log.InfoContext(ctx, "outbox: the provider had accepted a send whose outcome was not recorded; not sending it again",
			o.attrs(stored, "provider_id", stored.ProviderID, "send_started", m.SendStarted)...)
	} else {
		o.log.WarnContext(ctx, "outbox: the outcome of a send is unknown; not sending it again",
			o.attrs(stored, "send_started", m.SendStarted)...)
	}
	o.auditUnknown(ctx, stored, outcome)
	return outcomeDone
}

// auditUnknown records what became of a send whose outcome was unknown
// (action "send_unknown"; outcome found, resent or unknown). The detail
// names the message, never its number or body.
func (o *Outbox) auditUnknown(ctx context.Context, m enroll.OutboundMessage, outcome string) {
	if o.opt.Audit == nil {
		return
	}
	detail := fmt.Sprintf("%s %s message %d, send begun at %s, %d attempts", m.Purpose, m.Kind, m.ID,
		m.SendStarted.UTC().Format(time.RFC3339), m.Attempts)
	if m.ProviderID != "" {
		detail += ", provider ID " + m.ProviderID
	}
	ev := enroll.Event{Time: o.opt.Now(), Actor: "system", Action: "send_unknown", Username: m.Username,
		Outcome: outcome, Detail: detail}
	if _, err := o.opt.Audit.AppendAudit(ctx, ev); err != nil {
		o.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "err", err)
	}
}

// finish records a failed send: rejected when final, otherwise retry after
// a backoff, or expired when the attempts or the age are spent.
func (o *Outbox) finish(ctx context.Context, m enroll.OutboundMessage, body string, sendErr error) outcome {
	var se *SendError
	if !errors.As(sendErr, &se) {
		se = &SendError{Message: sendErr.Error()}
	}
	// Nothing that might echo the body reaches the store or the log.
	text := Scrub(sendErr.Error(), body) // a Sender scrubs the forms it made of it (twilio: the spelled digits)
	now := o.opt.Now()
	delay := o.backoff(m.Attempts)
	var stored enroll.OutboundMessage
	err := o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		c.ErrorCode, c.LastError, c.UpdatedAt = se.Code, text, now
		c.SendStarted = time.Time{} // the outcome is known: it failed
		switch {
		case se.Final:
			c.Status = enroll.StatusRejected
		case o.spent(*c, now) != "":
			c.Status = enroll.StatusExpired
			c.LastError = o.spent(*c, now) + "; last error: " + text
		default:
			c.Status, c.NextAttempt = enroll.StatusRetry, now.Add(delay)
		}
		stored = *c
		return nil
	})
	if err != nil {
		o.log.ErrorContext(ctx, "outbox: cannot record a failed send", o.attrs(m, "err", err)...)
		return outcomeHeld
	}
	switch stored.Status {
	case enroll.StatusRejected:
		o.log.WarnContext(ctx, "outbox: message rejected", o.attrs(stored, "error_code", se.Code, "err", text)...)
		return outcomeDone
	case enroll.StatusExpired:
		o.log.WarnContext(ctx, "outbox: message expired", o.attrs(stored, "error_code", se.Code, "err", text)...)
	default:
		o.retries = append(o.retries, stored.NextAttempt)
		o.log.WarnContext(ctx, "outbox: send failed, will retry", o.attrs(stored,
			"error_code", se.Code, "next_attempt", stored.NextAttempt, "err", text)...)
	}
	return outcomeRetry
}

// spent says why m may not be tried again, or "".
func (o *Outbox) spent(m enroll.OutboundMessage, now time.Time) string {
	switch {
	case m.Attempts >= o.opt.MaxAttempts:
		return fmt.Sprintf("not sent after %d attempts", m.Attempts)
	case now.Sub(m.CreatedAt) >= o.opt.MaxAge:
		return fmt.Sprintf("not sent within %s", o.opt.MaxAge)
	}
	return ""
}

// attrs are the log attributes of m: never the number or the body.
func (o *Outbox) attrs(m enroll.OutboundMessage, more ...any) []any {
	return append([]any{"message_id", m.ID, "kind", m.Kind, "purpose", m.Purpose,
		"attempts", m.Attempts, "status", m.Status}, more...)
}
