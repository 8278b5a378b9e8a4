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
	now := o.opt.Now()
	lease := o.backoff(m.Attempts + 1)
	var claimed enroll.OutboundMessage
	err := o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		if !c.Pending() || c.NextAttempt.After(now) {
			return errUnchanged // settled or claimed since DueMessages
		}
		c.UpdatedAt = now
		if reason := o.spent(*c, now); reason != "" {
			c.Status, c.LastError = enroll.StatusExpired, reason
		} else {
			c.Attempts++
			c.NextAttempt = now.Add(lease)
		}
		claimed = *c
		return nil
	})
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
		return o.finish(ctx, claimed, "", &SendError{Final: true,
			Message: "the body cannot be opened (was the key file replaced?)"})
	}
	ticket, stop, oc := o.admit(ctx, claimed)
	if stop {
		return oc
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
		c.UpdatedAt = o.opt.Now()
		return nil
	})
	if err != nil {
		// The message left but the store does not know: it will be sent
		// again once its claim runs out.
		o.log.ErrorContext(ctx, "outbox: sent, but the result cannot be recorded",
			o.attrs(claimed, "provider_id", r.ProviderID, "err", err)...)
		return outcomeHeld
	}
	claimed.Status = enroll.StatusSent
	o.log.InfoContext(ctx, "outbox: sent", o.attrs(claimed, "provider_id", r.ProviderID)...)
	return outcomeDone
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
