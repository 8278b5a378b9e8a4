package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/replyreset/replyreset/enroll"
)

// Auditor appends to the audit trail (enroll.Store).
type Auditor interface {
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

// redactor is the Redactor of the outbox, or nil.
func (o *Outbox) redactor() Redactor {
	if o.opt.Redactor != nil {
		return o.opt.Redactor
	}
	r, _ := o.sender.(Redactor)
	return r
}

// redact runs the claimed redaction m and records the result.
func (o *Outbox) redact(ctx context.Context, m enroll.OutboundMessage) outcome {
	r := o.redactor()
	var err error
	if r == nil {
		err = &SendError{Final: true, Message: "the SMS provider cannot redact messages"}
	} else {
		sctx, cancel := context.WithTimeout(ctx, o.opt.SendTimeout)
		err = r.Redact(sctx, m.Target)
		cancel()
	}
	if err != nil {
		oc := o.finish(ctx, m, "", err)
		if cur, rerr := o.message(ctx, m.ID); rerr == nil && !cur.Pending() {
			o.auditRedaction(ctx, cur, cur.Status, cur.LastError)
		}
		return oc
	}
	var stored enroll.OutboundMessage
	err = o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		c.Status, c.ErrorCode, c.LastError, c.UpdatedAt = enroll.StatusSent, 0, "", o.opt.Now()
		stored = *c
		return nil
	})
	if err != nil {
		// Blanked, but the store does not know: it is blanked again once
		// the claim runs out, which changes nothing at the provider.
		o.log.ErrorContext(ctx, "outbox: redacted, but the result cannot be recorded", o.attrs(m, "err", err)...)
		return outcomeHeld
	}
	o.log.InfoContext(ctx, "outbox: redacted at the provider", o.attrs(stored, "provider_id", m.Target)...)
	o.auditRedaction(ctx, stored, "ok", "")
	return outcomeDone
}

// message reads message id back (after finish settled it).
func (o *Outbox) message(ctx context.Context, id uint64) (enroll.OutboundMessage, error) {
	var m enroll.OutboundMessage
	err := o.store.UpdateMessage(ctx, id, func(c *enroll.OutboundMessage) error {
		m = *c
		return errUnchanged
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	return m, err
}

func (o *Outbox) auditRedaction(ctx context.Context, m enroll.OutboundMessage, outcome, why string) {
	if o.opt.Audit == nil {
		return
	}
	detail := fmt.Sprintf("%s message %s, %d attempts", m.Purpose, m.Target, m.Attempts)
	if why != "" {
		detail += ": " + why
	}
	ev := enroll.Event{Time: o.opt.Now(), Actor: "system", Action: "redact", Username: m.Username,
		Outcome: outcome, Detail: detail}
	if _, err := o.opt.Audit.AppendAudit(ctx, ev); err != nil {
		o.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "err", err)
	}
}
