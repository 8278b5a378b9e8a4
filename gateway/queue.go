package gateway

import (
	"context"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// MessageQueue is where texts are queued (enroll.OutboxStore).
type MessageQueue interface {
	EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error)
}

// QueueSMS puts m, an SMS of text body, in the outbox, due now, and wakes
// the outbox worker; m gives the recipient, language, purpose, username
// and priority. The lockout watch and the expiry reminders queue their
// texts with it.
func QueueSMS(ctx context.Context, store MessageQueue, sealer BodySealer, notify func(), m enroll.OutboundMessage, body string, now time.Time) (uint64, error) {
	m.Kind, m.Status = enroll.KindSMS, enroll.StatusQueued
	m.Sealed = sealer.Seal([]byte(body), outboxSealPurpose)
	m.NextAttempt, m.CreatedAt, m.UpdatedAt = now, now, now
	id, err := store.EnqueueMessage(ctx, m)
	if err != nil {
		return 0, err
	}
	notify()
	return id, nil
}

// BodySealer seals message bodies for the outbox (enroll.Sealer).
type BodySealer interface {
	Seal(plain []byte, purpose string) []byte
}
