package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/replyreset/replyreset/enroll"
)

// Redaction at the provider. A message that carried a password or a code
// keeps its body in the provider's logs (Twilio's message log, its API)
// long after the user read it. Once its final status is known (delivered,
// undelivered or failed: Twilio refuses before), the status callback
// queues a KindRedact message naming its SID, and the outbox blanks the
// body there (Twilio: update the Message with an empty Body), retried with
// the same backoff and expiry as any send. The store queues one redaction
// per SID however many reports name it (EnqueueRedaction), so each message
// is redacted once; the job holds only the SID, never the body.
//
// Which messages are redacted (SMS only: a call's inline TwiML cannot be
// blanked through the API): outbox messages whose purpose is in
// secretPurposes, the new passwords of RESET and the verification codes. A
// code dies after code_ttl, but it is a secret until then and nobody needs
// it at the provider afterwards. No webhook reply carries a secret (a
// replayed or logged webhook answer must yield nothing); the status
// callback still honours ?redact=<purpose> on the callback URL, which the
// signature covers, for replies sent by earlier versions.

// secretPurposes are the outbox purposes whose SMS body is redacted at the
// provider after its final status.
var secretPurposes = map[string]bool{"code": true, passwordPurpose: true}

// Redact purposes of webhook replies of earlier versions (the ?redact= of
// the callback URL).
const (
	redactPassword = "password"
	redactCode     = "code"
)

// Redactor blanks the body of a provider message (TwilioSender).
type Redactor interface {
	Redact(ctx context.Context, sid string) error
}

// Auditor appends to the audit trail (enroll.Store).
type Auditor interface {
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

var _ Redactor = LocalSender{}

// Redact has nothing to blank: LocalSender sends nothing.
func (LocalSender) Redact(context.Context, string) error { return nil }

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

// admit asks the budget whether claimed may leave (a Prepaid message was
// charged when it was queued and always may). When it may not, the
// message ends with status over_budget and stop is true.
func (o *Outbox) admit(ctx context.Context, m enroll.OutboundMessage) (t BudgetTicket, stop bool, oc outcome) {
	if o.opt.Budget == nil || m.Prepaid {
		return BudgetTicket{}, false, outcomeDone
	}
	t, err := o.opt.Budget.Admit(ctx, Send{To: m.To, Kind: m.Kind, Purpose: m.Purpose, Username: m.Username})
	if err != nil {
		// The claim stands: the message is tried again after it.
		o.log.ErrorContext(ctx, "outbox: cannot check the SMS budget", o.attrs(m, "err", err)...)
		return BudgetTicket{}, true, outcomeHeld
	}
	if t.Refused == "" {
		return t, false, outcomeDone
	}
	why := t.Budget + " reached"
	if t.Refused == RefusedCountry {
		why = "the number's country is not in sms.allowed_countries"
	}
	err = o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		c.Status, c.LastError, c.UpdatedAt = enroll.StatusOverBudget, why, o.opt.Now()
		return nil
	})
	if err != nil {
		o.log.ErrorContext(ctx, "outbox: cannot record a message refused by the budget", o.attrs(m, "err", err)...)
		return t, true, outcomeHeld
	}
	m.Status = enroll.StatusOverBudget
	o.log.WarnContext(ctx, "outbox: not sent", o.attrs(m, "reason", why)...)
	return t, true, outcomeDone
}

// refund takes back the budget of a send that did not leave.
func (o *Outbox) refund(ctx context.Context, t BudgetTicket) {
	if o.opt.Budget != nil {
		o.opt.Budget.Refund(ctx, t)
	}
}
