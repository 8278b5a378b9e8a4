package outbox_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// heldRig is a queue on a real bbolt store, with a held password message.
type heldRig struct {
	t      *testing.T
	rig    *testkit.OutboxRig
	q      *outbox.Queue
	wakes  atomic.Int32
	heldID uint64
}

func newHeldRig(t *testing.T) *heldRig {
	r := &heldRig{t: t, rig: testkit.NewOutboxRig(t)}
	r.q = outbox.NewQueue(r.rig.Store, r.rig.Sealer, func() { r.wakes.Add(1) })
	r.heldID = r.hold("new password: Secret#1")
	return r
}

func (r *heldRig) hold(body string) uint64 {
	r.t.Helper()
	id, err := r.q.Enqueue(r.t.Context(), enroll.OutboundMessage{To: "+15550002222", Language: "en", Purpose: "password",
		Username: "jdoe", Priority: enroll.PriorityHigh, Status: enroll.StatusHeld, Prepaid: true}, body)
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *heldRig) body(id uint64) string {
	r.t.Helper()
	b, err := r.rig.Sealer.Open(r.rig.Message(id).Sealed, outbox.SealPurpose)
	if err != nil {
		r.t.Fatalf("open message %d: %v", id, err)
	}
	return string(b)
}

// TestQueueActsOnAHeldMessageOnce: Release, Replace and Cancel change a
// held message and nothing else; on a message that is no longer held each
// of them (and Reseal) returns ErrNotHeld and leaves it as it was.
func TestQueueActsOnAHeldMessageOnce(t *testing.T) {
	ctx := t.Context()
	for _, tt := range []struct {
		name       string
		act        func(q *outbox.Queue, id uint64) error
		wantStatus string
		wantBody   string
	}{
		{"release", func(q *outbox.Queue, id uint64) error { return q.Release(ctx, id) }, enroll.StatusQueued, "new password: Secret#1"},
		{"replace", func(q *outbox.Queue, id uint64) error { return q.Replace(ctx, id, "did not finish") }, enroll.StatusQueued, "did not finish"},
		{"cancel", func(q *outbox.Queue, id uint64) error { return q.Cancel(ctx, id, "superseded") }, enroll.StatusCanceled, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newHeldRig(t)
			if err := tt.act(r.q, r.heldID); err != nil {
				t.Fatalf("%s of a held message: %v", tt.name, err)
			}
			m := r.rig.Message(r.heldID)
			if m.Status != tt.wantStatus || !m.Prepaid {
				t.Fatalf("after %s: %+v, want status %s, still prepaid", tt.name, m, tt.wantStatus)
			}
			if got := r.body(r.heldID); got != tt.wantBody {
				t.Errorf("after %s the body is %q, want %q", tt.name, got, tt.wantBody)
			}
			if wake := tt.wantStatus == enroll.StatusQueued; (r.wakes.Load() == 1) != wake {
				t.Errorf("after %s the worker was woken %d times; want a wake: %v", tt.name, r.wakes.Load(), wake)
			}
			before := r.rig.Message(r.heldID)
			for name, again := range map[string]func() error{
				"release": func() error { return r.q.Release(ctx, r.heldID) },
				"replace": func() error { return r.q.Replace(ctx, r.heldID, "other") },
				"cancel":  func() error { return r.q.Cancel(ctx, r.heldID, "other") },
				"reseal":  func() error { return r.q.Reseal(ctx, r.heldID, "other") },
			} {
				if err := again(); !errors.Is(err, outbox.ErrNotHeld) {
					t.Errorf("%s after %s: %v, want ErrNotHeld", name, tt.name, err)
				}
			}
			if after := r.rig.Message(r.heldID); after.Status != before.Status || after.UpdatedAt != before.UpdatedAt ||
				string(after.Sealed) != string(before.Sealed) {
				t.Errorf("a refused change changed the message: %+v, was %+v", after, before)
			}
		})
	}
}

// TestQueueRacingReleasesActOnce: many goroutines release, replace and
// cancel one held message at once; exactly one of them wins.
func TestQueueRacingReleasesActOnce(t *testing.T) {
	r := newHeldRig(t)
	ctx := t.Context()
	var wins, notHeld atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				err = r.q.Release(ctx, r.heldID)
			case 1:
				err = r.q.Replace(ctx, r.heldID, "did not finish")
			default:
				err = r.q.Cancel(ctx, r.heldID, "superseded")
			}
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, outbox.ErrNotHeld):
				notHeld.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || notHeld.Load() != 29 {
		t.Errorf("%d changes won and %d were refused as not held; want 1 and 29", wins.Load(), notHeld.Load())
	}
	if m := r.rig.Message(r.heldID); m.Status == enroll.StatusHeld {
		t.Errorf("the message is still held after the race: %+v", m)
	}
	// The message sends once: the worker finds it due once.
	if st := r.rig.Message(r.heldID).Status; st == enroll.StatusQueued {
		_, stop := r.rig.Start(outbox.Options{})
		r.rig.WaitStatus(r.heldID, enroll.StatusSent)
		stop()
		if n := r.rig.Accepted("+15550002222"); n != 1 {
			t.Errorf("the fake Twilio accepted %d messages, want 1", n)
		}
	}
}
