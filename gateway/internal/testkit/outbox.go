package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// OutboxRig is an outbox on a bbolt store sending through twilio-go to the
// fake.
type OutboxRig struct {
	T      *testing.T
	Store  *bolt.Store
	Sealer *enroll.Sealer
	Fake   *twiliotest.Fake
	Sender outbox.Sender
	Logs   *LockedBuffer
}

// NewOutboxRig is a rig on a new data file and a new fake.
func NewOutboxRig(t *testing.T) *OutboxRig {
	f := NewFake(t)
	return &OutboxRig{T: t, Store: OpenStore(t), Sealer: Sealer(t), Fake: f,
		Sender: TwilioSender(t, f, nil, nil), Logs: &LockedBuffer{}}
}

// Enqueue queues a message (Enqueue).
func (r *OutboxRig) Enqueue(kind, to, body string, priority int) uint64 {
	r.T.Helper()
	return Enqueue(r.T, r.Store, r.Sealer, kind, to, body, priority)
}

// Message reads message id back.
func (r *OutboxRig) Message(id uint64) enroll.OutboundMessage {
	r.T.Helper()
	return Message(r.T, r.Store, id)
}

// Start runs an outbox with fast test timings; stop ends Run and waits.
func (r *OutboxRig) Start(opt outbox.Options) (ob *outbox.Outbox, stop func()) {
	r.T.Helper()
	if opt.BackoffBase == 0 {
		opt.BackoffBase = 20 * time.Millisecond
	}
	if opt.BackoffMax == 0 {
		opt.BackoffMax = 200 * time.Millisecond
	}
	if opt.Poll == 0 {
		opt.Poll = 50 * time.Millisecond
	}
	log := slog.New(slog.NewJSONHandler(r.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ob = outbox.New(r.Store, r.Sealer, r.Sender, log, opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					r.T.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				r.T.Error("Run did not return after its context ended")
			}
		})
	}
	r.T.Cleanup(stop)
	return ob, stop
}

// Accepted counts the messages and calls the fake accepted for to.
func (r *OutboxRig) Accepted(to string) int {
	n := 0
	for _, res := range r.Fake.Resources() {
		if res.To == to {
			n++
		}
	}
	return n
}

// Attempts counts every request the fake got for to.
func (r *OutboxRig) Attempts(to string) int {
	n := 0
	for _, req := range r.Fake.Requests() {
		if req.Form.Get("To") == to {
			n++
		}
	}
	return n
}

// WaitStatus waits until message id has status.
func (r *OutboxRig) WaitStatus(id uint64, status string) enroll.OutboundMessage {
	r.T.Helper()
	var m enroll.OutboundMessage
	Eventually(r.T, fmt.Sprintf("message %d to become %s", id, status), func() bool {
		m = r.Message(id)
		return m.Status == status
	})
	return m
}

// LockoutTexts returns the lockout texts queued for username, oldest first, and
// fails t for one that is not a queued high-priority SMS.
func LockoutTexts(t *testing.T, store enroll.OutboxStore, sealer *enroll.Sealer, username string) []string {
	t.Helper()
	msgs, err := store.Messages(t.Context(), enroll.OutboxFilter{Username: username})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range slices.Backward(msgs) {
		if m.Purpose != "lockout" {
			continue
		}
		if m.Kind != enroll.KindSMS || m.Priority != enroll.PriorityHigh || m.Status != enroll.StatusQueued {
			t.Errorf("lockout message %+v: want a queued high-priority SMS", m)
		}
		body, err := sealer.Open(m.Sealed, "outbox")
		if err != nil {
			t.Fatalf("open message %d: %v", m.ID, err)
		}
		out = append(out, string(body))
	}
	return out
}
