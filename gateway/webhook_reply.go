package gateway

import (
	"context"

	"github.com/replyreset/replyreset/enroll"
)

// A TwiML reply is an SMS like any other: Twilio sends it and bills it. So
// each reply is charged to the SMS budgets (Settings.SMSBudget) before it
// is written, and one the budgets refuse is left out (an empty
// <Response/>). A RESET is charged before the password is changed: a reset
// whose reply could not leave would lock the user out with a password
// nobody knows. A reply that shows a password or a code names the status
// callback as its <Message action>, with ?redact=<kind>, so that its body
// is redacted at Twilio once its status is final (outbox_redact.go).

// replyMeta is what handling one inbound message learned about its reply.
type replyMeta struct {
	charged bool // the budgets were charged for the reply (ticket)
	refused bool // the budgets refused it: no reply
	ticket  BudgetTicket
	secret  string // redactPassword or redactCode when the reply shows one
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
	t, err := w.set.SMSBudget.Admit(ctx, Send{To: to, Kind: enroll.KindSMS, Purpose: purpose, Username: username})
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
	m.charged, m.ticket = false, BudgetTicket{}
}

// replyAction is the <Message action> of reply: the status callback, for
// a reply that shows a secret; "" otherwise.
func (w *Webhook) replyAction(in inbound, reply string) string {
	if reply == "" || in.reply == nil || in.reply.secret == "" {
		return ""
	}
	return w.set.PublicURL + StatusCallbackPath + "?redact=" + in.reply.secret
}

// admitReply charges the reply of this conversation now, before anything
// irreversible is done for it; false means no reply may be sent, so
// nothing should be done.
func (c *conversation) admitReply() bool {
	username := ""
	if c.enr != nil {
		username = c.enr.Username
	}
	return c.w.charge(c.ctx, c.phone, c.cmd.Kind.String(), username, c.reply)
}

// noteSecret marks the reply as showing a secret when a text is rendered
// with a password or a code, so that it is redacted at the provider.
func (c *conversation) noteSecret(args map[string]string) {
	if c.reply == nil {
		return
	}
	switch {
	case args["password"] != "":
		c.reply.secret = redactPassword
	case args["code"] != "" && c.reply.secret == "":
		c.reply.secret = redactCode
	}
}
