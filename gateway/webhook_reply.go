package gateway

import (
	"context"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// A TwiML reply is an SMS like any other: Twilio sends it and bills it. So
// each reply is charged to the SMS budgets (Settings.SMSBudget) before it
// is written, and one the budgets refuse is left out (an empty
// <Response/>). A RESET is charged before the password is changed: a reset
// whose reply could not leave would lock the user out with a password
// nobody knows; the charge then passes to the outbox message carrying the
// password (webhook_password.go), and the TwiML reply is empty.

// replyMeta is what handling one inbound message learned about its reply.
type replyMeta struct {
	charged bool // the budgets were charged for the reply (ticket)
	refused bool // the budgets refused it: no reply
	ticket  outbox.Ticket
}

// charge admits one reply to from; false means it may not be sent. A
// store failure refuses too: without the store nothing is safe to send.
func (w *Webhook) charge(ctx context.Context, from, purpose, username string, m *replyMeta) bool {
	if m == nil || m.charged {
		return true
	}
	if m.refused {
		return false
	}
	if w.set.SMSBudget == nil {
		m.charged = true
		return true
	}
	to := from
	if p, err := enroll.NormalizePhone(from, ""); err == nil {
		to = p
	}
	t, err := w.set.SMSBudget.Admit(ctx, outbox.Send{To: to, Kind: enroll.KindSMS, Purpose: purpose, Username: username})
	if err != nil {
		w.log.ErrorContext(ctx, "webhook: cannot check the SMS budget; no reply", "err", err)
		m.refused = true
		return false
	}
	if t.Refused != "" {
		m.refused = true
		return false
	}
	m.charged, m.ticket = true, t
	return true
}

// admitReply returns the reply to send: reply itself once charged, or ""
// when the budgets refuse it. An empty reply takes back what was charged.
func (w *Webhook) admitReply(ctx context.Context, in inbound, reply string) string {
	if reply == "" {
		w.refundReply(ctx, in)
		return ""
	}
	if !w.charge(ctx, in.from, "reply", "", in.reply) {
		return ""
	}
	return reply
}

// refundReply takes back the charge of a reply that is not sent.
func (w *Webhook) refundReply(ctx context.Context, in inbound) {
	m := in.reply
	if m == nil || !m.charged || w.set.SMSBudget == nil {
		return
	}
	w.set.SMSBudget.Refund(ctx, m.ticket)
	m.charged, m.ticket = false, outbox.Ticket{}
}

// admitReply charges the reply of this conversation now, before anything
// irreversible is done for it; false means no reply may be sent, so
// nothing should be done.
func (c *conversation) admitReply(ctx context.Context) bool {
	username := ""
	if c.enr != nil {
		username = c.enr.Username
	}
	return c.w.charge(ctx, c.phone, c.cmd.Kind.String(), username, c.reply)
}
