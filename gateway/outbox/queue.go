package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// QueueStore is what Queue needs from the store (enroll.OutboxStore).
type QueueStore interface {
	EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error)
	UpdateMessage(ctx context.Context, id uint64, fn func(*enroll.OutboundMessage) error) error
	EnqueueRedaction(ctx context.Context, sid, purpose, username string, now time.Time) (uint64, bool, error)
}

var _ enroll.MessageQueue = (*Queue)(nil)

// Queue is the outbox as producers see it: Enqueue, the held messages'
// life (a RESET's password: Reseal, Release, Cancel) and the redactions
// the delivery reports ask for; each wakes the worker when something is
// due.
type Queue struct {
	store  QueueStore
	sealer BodySealer
	wake   func()
	now    func() time.Time
}

// NewQueue returns the queue; wake (the worker's Notify) may be nil.
func NewQueue(store QueueStore, sealer BodySealer, wake func()) *Queue {
	if wake == nil {
		wake = func() {}
	}
	return &Queue{store: store, sealer: sealer, wake: wake, now: time.Now}
}

// Enqueue is the one way an SMS or a call enters the outbox: it stores m
// with body sealed, due at m.CreatedAt (now when zero), and wakes the
// worker unless m is held. m gives the recipient, the kind (an SMS when
// empty), language, purpose, username, priority and Prepaid; its status is
// queued, or held when m.Status says so (Release then sends it).
func (q *Queue) Enqueue(ctx context.Context, m enroll.OutboundMessage, body string) (uint64, error) {
	if m.Kind == "" {
		m.Kind = enroll.KindSMS
	}
	if m.Status != enroll.StatusHeld {
		m.Status = enroll.StatusQueued
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = q.now()
	}
	m.Sealed = sealBody(q.sealer, body)
	m.NextAttempt, m.UpdatedAt = m.CreatedAt, m.CreatedAt
	id, err := q.store.EnqueueMessage(ctx, m)
	if err == nil && m.Status != enroll.StatusHeld {
		q.wake()
	}
	return id, err
}

// ErrNotHeld is the answer of Reseal, Replace, Release and Cancel for a
// message that is no longer held: someone else (the RESET that wrote it,
// or the held-message recovery of this or another node) already released
// or canceled it. Each held message is acted on once: the check and the
// change are one store transaction.
var ErrNotHeld = errors.New("outbox: the message is no longer held")

// updateHeld changes held message id with fn in one store transaction,
// or returns an error wrapping ErrNotHeld when it is no longer held.
func (q *Queue) updateHeld(ctx context.Context, id uint64, fn func(m *enroll.OutboundMessage)) error {
	return q.store.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error {
		if m.Status != enroll.StatusHeld {
			return fmt.Errorf("message %d is %s: %w", id, m.Status, ErrNotHeld)
		}
		fn(m)
		return nil
	})
}

// Reseal replaces the body of held message id (after the directory
// refused the password it carried).
func (q *Queue) Reseal(ctx context.Context, id uint64, body string) error {
	sealed := sealBody(q.sealer, body)
	return q.updateHeld(ctx, id, func(m *enroll.OutboundMessage) { m.Sealed, m.UpdatedAt = sealed, q.now() })
}

// Release queues held message id for sending now and wakes the worker.
func (q *Queue) Release(ctx context.Context, id uint64) error {
	return q.release(ctx, id, nil)
}

// Replace replaces the body of held message id and queues it for sending
// now, in one transaction (the held-message recovery's "your reset did
// not finish", instead of a password that was never set).
func (q *Queue) Replace(ctx context.Context, id uint64, body string) error {
	sealed := sealBody(q.sealer, body)
	return q.release(ctx, id, sealed)
}

// release queues held message id, its body replaced by sealed unless nil.
func (q *Queue) release(ctx context.Context, id uint64, sealed []byte) error {
	now := q.now()
	err := q.updateHeld(ctx, id, func(m *enroll.OutboundMessage) {
		if sealed != nil {
			m.Sealed = sealed
		}
		m.Status, m.NextAttempt, m.UpdatedAt = enroll.StatusQueued, now, now
	})
	if err != nil {
		return err
	}
	q.wake()
	return nil
}

// Cancel ends held message id unsent, its body wiped; why says what
// happened instead.
func (q *Queue) Cancel(ctx context.Context, id uint64, why string) error {
	wiped := q.sealer.Seal(nil, SealPurpose)
	return q.updateHeld(ctx, id, func(m *enroll.OutboundMessage) {
		m.Status, m.Sealed, m.LastError, m.UpdatedAt = enroll.StatusCanceled, wiped, why, q.now()
	})
}

// EnqueueRedaction queues the blanking of provider message sid at the
// provider, once however often it is asked (the store keeps one per SID),
// and wakes the worker when it queued one.
func (q *Queue) EnqueueRedaction(ctx context.Context, sid, purpose, username string, now time.Time) (uint64, bool, error) {
	id, queued, err := q.store.EnqueueRedaction(ctx, sid, purpose, username, now)
	if err == nil && queued {
		q.wake()
	}
	return id, queued, err
}
