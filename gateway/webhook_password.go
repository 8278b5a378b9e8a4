package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// The new password of a RESET never travels in the webhook's answer: a
// captured or replayed request, or a proxy's log of the answer, must yield
// nothing. It goes to the enrolled number as an outbound SMS through the
// outbox (REST, with the status callback, redacted at the provider once
// its status is final), and the TwiML answer is empty.
//
// The order keeps a password from being set without its message: the SMS
// is first written held (enroll.StatusHeld: stored, never sent), then the
// password is set, then the message is released (queued). A password the
// directory refuses is replaced in the held message before the next try;
// a reset that sets nothing cancels it, and its body is wiped. A crash
// between holding and releasing leaves the message held: the leader's
// held recovery (heldrecovery.go) later sends it, or tells the user the
// reset did not finish; what can never happen is a password in force that
// no durable message carries.

// PasswordPurpose is the outbox purpose of a RESET's new password.
const PasswordPurpose = "password"

// heldTimeout bounds the store writes that release or cancel a held
// message: they run after the directory work, which may have used up the
// reply's budget, and must happen all the same.
const heldTimeout = 5 * time.Second

// heldPassword is the held SMS of one RESET; id 0 means none yet.
type heldPassword struct {
	c  *conversation
	u  directory.User
	id uint64
}

// hold writes (or, after a refused password, rewrites) the held message
// carrying password. An error is the store's: nothing may then be set.
func (h *heldPassword) hold(ctx context.Context, password string) error {
	c := h.c
	if c.w.set.Outbox == nil {
		return errors.New("gateway: no outbox: the new password cannot be queued")
	}
	key := "sms.reset.ok"
	if c.w.set.Password.MustChange {
		key = "sms.reset.ok_must_change"
	}
	body := c.w.msgs.Text(c.lang, key, map[string]string{"username": h.u.Username, "password": password})
	if h.id != 0 {
		return c.w.set.Outbox.Reseal(ctx, h.id, body)
	}
	id, err := c.w.set.Outbox.Enqueue(ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: c.phone,
		Language: c.lang, Purpose: PasswordPurpose, Username: h.u.Username, Priority: enroll.PriorityHigh,
		Status: enroll.StatusHeld, Prepaid: c.reply != nil && c.reply.charged, CreatedAt: c.w.now()}, body)
	if err != nil {
		return err
	}
	h.id = id
	return nil
}

// release queues the held message for sending now and wakes the outbox;
// the budget charge taken for this RESET now belongs to that message.
func (h *heldPassword) release(ctx context.Context) error {
	c := h.c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), heldTimeout)
	defer cancel()
	if err := c.w.set.Outbox.Release(ctx, h.id); err != nil {
		return err
	}
	if c.reply != nil {
		c.reply.charged, c.reply.ticket = false, outbox.Ticket{} // spent by the message
	}
	return nil
}

// cancel ends the held message unsent, its body wiped, because no
// password was set (why says what happened instead).
func (h *heldPassword) cancel(ctx context.Context, why string) {
	if h.id == 0 {
		return
	}
	c := h.c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), heldTimeout)
	defer cancel()
	if err := c.w.set.Outbox.Cancel(ctx, h.id, why); err != nil {
		// Held messages are never sent: this one only stays in the list.
		c.w.log.ErrorContext(ctx, "a held password message could not be canceled", "message_id", h.id, "err", err)
	}
}
