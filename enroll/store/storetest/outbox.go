package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// outboxStore opens a store on a fresh directory and returns it both as a
// Store and as an OutboxStore (a part of Store).
func outboxStore(t *testing.T, open Opener) (enroll.Store, enroll.OutboxStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

// message is a fixture: a queued SMS to jdoe, due at next.
func message(to string, priority int, next time.Time) enroll.OutboundMessage {
	return enroll.OutboundMessage{Kind: enroll.KindSMS, To: to, Sealed: []byte("sealed body"), Language: "en",
		Purpose: "code", Username: "jdoe", Priority: priority, Status: enroll.StatusQueued,
		NextAttempt: next, CreatedAt: t0, UpdatedAt: t0}
}

func enqueue(t *testing.T, ob enroll.OutboxStore, m enroll.OutboundMessage) uint64 {
	t.Helper()
	id, err := ob.EnqueueMessage(t.Context(), m)
	if err != nil {
		t.Fatalf("EnqueueMessage(%s to %s): %v", m.Purpose, m.To, err)
	}
	return id
}

func updateMessage(t *testing.T, ob enroll.OutboxStore, id uint64, fn func(*enroll.OutboundMessage)) {
	t.Helper()
	err := ob.UpdateMessage(t.Context(), id, func(m *enroll.OutboundMessage) error { fn(m); return nil })
	if err != nil {
		t.Fatalf("UpdateMessage(%d): %v", id, err)
	}
}

// wantDue checks the IDs DueMessages gives, in order.
func wantDue(t *testing.T, ob enroll.OutboxStore, now time.Time, limit int, want ...uint64) {
	t.Helper()
	got, err := ob.DueMessages(t.Context(), now, limit)
	if err != nil {
		t.Errorf("DueMessages(%s, %d): %v", now, limit, err)
		return
	}
	if ids := messageIDs(got); !slices.Equal(ids, want) {
		t.Errorf("DueMessages(t0%+v, %d) = %v, want %v", now.Sub(t0), limit, ids, want)
	}
}

func messageIDs(ms []enroll.OutboundMessage) []uint64 {
	var ids []uint64
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// wantMessage checks that message want.ID is stored as want, with the
// provider-ID index agreeing.
func wantMessage(t *testing.T, ob enroll.OutboxStore, want enroll.OutboundMessage) {
	t.Helper()
	list, err := ob.Messages(t.Context(), enroll.OutboxFilter{})
	if err != nil {
		t.Fatalf("Messages: %v", err)
	}
	i := slices.IndexFunc(list, func(m enroll.OutboundMessage) bool { return m.ID == want.ID })
	if i < 0 {
		t.Errorf("message %d is missing from Messages", want.ID)
		return
	}
	if got := list[i]; got.Kind != want.Kind || got.To != want.To || !bytes.Equal(got.Sealed, want.Sealed) ||
		got.Language != want.Language || got.Purpose != want.Purpose || got.Username != want.Username ||
		got.Priority != want.Priority || got.Status != want.Status || got.Attempts != want.Attempts ||
		!got.NextAttempt.Equal(want.NextAttempt) || got.ProviderID != want.ProviderID ||
		got.ErrorCode != want.ErrorCode || got.LastError != want.LastError || got.Prepaid != want.Prepaid ||
		!got.SendStarted.Equal(want.SendStarted) || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("message = %+v\nwant      %+v", got, want)
	}
	if want.ProviderID != "" {
		if m, err := ob.MessageByProviderID(t.Context(), want.ProviderID); err != nil || m.ID != want.ID {
			t.Errorf("MessageByProviderID(%s) = %d, %v; want %d", want.ProviderID, m.ID, err, want.ID)
		}
	}
}

func testOutboxEnqueue(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	var ids []uint64
	for i := range 3 {
		m := message(phone1, enroll.PriorityHigh, t0)
		m.ID = 999 // the store assigns IDs; this must be ignored
		m.Kind, m.Language, m.Purpose, m.Username = enroll.KindCall, "fr", "lockout", "JDoe"
		m.Attempts, m.ErrorCode, m.LastError, m.UpdatedAt = i, 30003, "unreachable", t0.Add(time.Minute)
		m.Sealed = []byte{byte(i), 0, 0xff}
		ids = append(ids, enqueue(t, ob, m))
		if i > 0 && ids[i] <= ids[i-1] {
			t.Fatalf("IDs %v are not increasing", ids)
		}
		m.ID = ids[i]
		wantMessage(t, ob, m)
	}

	// Concurrent enqueues, raced with failing updates, get the IDs they
	// are stored under, each once.
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	whileFailing(t, failMessage(ob, ids[0]), func(int) {
		id, err := ob.EnqueueMessage(t.Context(), message(phone2, enroll.PriorityLow, t0))
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[id] {
			t.Errorf("concurrent EnqueueMessage gave ID %d twice", id)
		}
		seen[id] = true
	})
	list, err := ob.Messages(t.Context(), enroll.OutboxFilter{})
	if err != nil || len(list) != len(seen) {
		t.Fatalf("Messages = %d messages, %v; want %d", len(list), err, len(seen))
	}
	for _, m := range list {
		if !seen[m.ID] {
			t.Errorf("message %d is stored, but no EnqueueMessage returned its ID", m.ID)
		}
	}
}

func testOutboxDue(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	now := t0.Add(5 * time.Minute)
	// IDs and due times are in different orders on purpose.
	a := enqueue(t, ob, message(phone1, enroll.PriorityHigh, t0.Add(2*time.Minute)))
	b := enqueue(t, ob, message(phone2, enroll.PriorityLow, t0))
	retry := message(phone3, enroll.PriorityHigh, t0)
	retry.Status = enroll.StatusRetry
	c := enqueue(t, ob, retry)
	d := enqueue(t, ob, message(phone1, enroll.PriorityHigh, t0.Add(10*time.Minute)))
	for _, st := range []string{enroll.StatusSent, enroll.StatusDelivered, enroll.StatusUndelivered,
		enroll.StatusFailed, enroll.StatusRejected, enroll.StatusExpired, enroll.StatusUnknown} {
		done := message(phone1, enroll.PriorityHigh, t0)
		done.Status = st
		enqueue(t, ob, done)
	}
	f := enqueue(t, ob, message(phone2, enroll.PriorityHigh, now))                      // due at exactly now
	g := enqueue(t, ob, message(phone2, enroll.PriorityHigh, now.Add(time.Nanosecond))) // not yet

	wantDue(t, ob, t0.Add(-time.Second), 10)
	wantDue(t, ob, now, 10, a, c, f, b)
	wantDue(t, ob, now, 2, a, c)
	wantDue(t, ob, now, 1, a)
	wantDue(t, ob, now, 4, a, c, f, b)
	wantDue(t, ob, t0.Add(10*time.Minute), 100, a, c, d, f, g, b)
	wantDue(t, ob, t0, 10, c, b)
}

func testOutboxUpdate(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	ctx := t.Context()
	m1 := message(phone1, enroll.PriorityHigh, t0)
	m1.ID = enqueue(t, ob, m1)
	m2 := message(phone2, enroll.PriorityHigh, t0)
	m2.ID = enqueue(t, ob, m2)
	later := t0.Add(24 * time.Hour)

	// Sent: it leaves the due index.
	updateMessage(t, ob, m1.ID, func(m *enroll.OutboundMessage) { m.Status, m.Attempts = enroll.StatusSent, 1 })
	m1.Status, m1.Attempts = enroll.StatusSent, 1
	wantMessage(t, ob, m1)
	wantDue(t, ob, later, 10, m2.ID)

	// Retry later: due from then on, not before.
	next := t0.Add(time.Hour)
	updateMessage(t, ob, m2.ID, func(m *enroll.OutboundMessage) {
		m.Status, m.Attempts, m.NextAttempt, m.LastError = enroll.StatusRetry, 1, next, "timeout"
	})
	m2.Status, m2.Attempts, m2.NextAttempt, m2.LastError = enroll.StatusRetry, 1, next, "timeout"
	wantMessage(t, ob, m2)
	wantDue(t, ob, next.Add(-time.Nanosecond), 10)
	wantDue(t, ob, next, 10, m2.ID)

	// A new priority reorders the queue.
	m3 := message(phone3, enroll.PriorityHigh, t0)
	m3.ID = enqueue(t, ob, m3)
	wantDue(t, ob, next, 10, m2.ID, m3.ID)
	updateMessage(t, ob, m2.ID, func(m *enroll.OutboundMessage) { m.Priority = enroll.PriorityLow })
	m2.Priority = enroll.PriorityLow
	wantDue(t, ob, next, 10, m3.ID, m2.ID)

	// A claim's send mark is kept, pending or not, and an unknown outcome
	// leaves the due index.
	claim := t0.Add(time.Minute)
	updateMessage(t, ob, m3.ID, func(m *enroll.OutboundMessage) { m.SendStarted, m.Attempts = claim, 1 })
	m3.SendStarted, m3.Attempts = claim, 1
	wantMessage(t, ob, m3)
	wantDue(t, ob, next, 10, m3.ID, m2.ID)
	updateMessage(t, ob, m3.ID, func(m *enroll.OutboundMessage) { m.Status = enroll.StatusUnknown })
	m3.Status = enroll.StatusUnknown
	wantMessage(t, ob, m3)
	wantDue(t, ob, next, 10, m2.ID)

	// Back from sent to retry: due again.
	updateMessage(t, ob, m1.ID, func(m *enroll.OutboundMessage) { m.Status, m.NextAttempt = enroll.StatusRetry, next })
	m1.Status, m1.NextAttempt = enroll.StatusRetry, next
	wantDue(t, ob, next, 10, m1.ID, m2.ID)

	bad := []struct {
		name string
		fn   func(*enroll.OutboundMessage) error
		want error
	}{
		{"fn fails", func(m *enroll.OutboundMessage) error { m.Status = enroll.StatusSent; return errBoom }, errBoom},
		{"ID changed", func(m *enroll.OutboundMessage) error { m.ID++; return nil }, enroll.ErrInvalid},
		{"unknown status", func(m *enroll.OutboundMessage) error { m.Status = "bogus"; return nil }, enroll.ErrInvalid},
		{"To not E.164", func(m *enroll.OutboundMessage) error { m.To = "2015550101"; return nil }, enroll.ErrInvalid},
	}
	for _, tt := range bad {
		if err := ob.UpdateMessage(ctx, m3.ID, tt.fn); !errors.Is(err, tt.want) {
			t.Errorf("%s: UpdateMessage = %v, want %v", tt.name, err, tt.want)
		}
		wantMessage(t, ob, m3)
	}
	wantDue(t, ob, next, 10, m1.ID, m2.ID)
	if err := ob.UpdateMessage(ctx, m3.ID+1000, func(*enroll.OutboundMessage) error { return nil }); !isNotFound(err) {
		t.Errorf("UpdateMessage of an unknown ID: %v, want ErrNotFound", err)
	}
}

// testOutboxHeld: a held message (a new password, written before the
// password is set) is stored and listed but never due; released (made
// queued) it is due at its NextAttempt; canceled it never is, and its
// Prepaid mark is kept.
func testOutboxHeld(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	held := message(phone1, enroll.PriorityHigh, t0)
	held.Status, held.Purpose, held.Prepaid = enroll.StatusHeld, "password", true
	held.ID = enqueue(t, ob, held)
	other := message(phone2, enroll.PriorityHigh, t0)
	other.Status = enroll.StatusHeld
	other.ID = enqueue(t, ob, other)
	later := t0.Add(time.Hour)
	wantMessage(t, ob, held)
	wantDue(t, ob, later, 10)
	if held.Pending() {
		t.Error("a held message counts as pending")
	}

	updateMessage(t, ob, held.ID, func(m *enroll.OutboundMessage) { m.Status, m.NextAttempt = enroll.StatusQueued, later })
	held.Status, held.NextAttempt = enroll.StatusQueued, later
	wantMessage(t, ob, held)
	wantDue(t, ob, later.Add(-time.Nanosecond), 10)
	wantDue(t, ob, later, 10, held.ID)

	updateMessage(t, ob, other.ID, func(m *enroll.OutboundMessage) {
		m.Status, m.Sealed, m.LastError = enroll.StatusCanceled, []byte("wiped"), "not released"
	})
	other.Status, other.Sealed, other.LastError = enroll.StatusCanceled, []byte("wiped"), "not released"
	wantMessage(t, ob, other)
	wantDue(t, ob, later.Add(24*time.Hour), 10, held.ID)
}

// failMessage is a write that fails with errBoom.
func failMessage(ob enroll.OutboxStore, id uint64) func(context.Context) error {
	return func(ctx context.Context) error {
		return ob.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error { m.Attempts += 1000; return errBoom })
	}
}

// testOutboxUpdateConcurrent races updates that move a message in the due
// index with failing ones: the index must end with exactly one entry.
func testOutboxUpdateConcurrent(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	want := message(phone1, enroll.PriorityHigh, t0)
	want.ID = enqueue(t, ob, want)
	whileFailing(t, failMessage(ob, want.ID), func(int) {
		if err := ob.UpdateMessage(t.Context(), want.ID, func(m *enroll.OutboundMessage) error {
			m.Attempts++
			m.Status, m.NextAttempt = enroll.StatusRetry, t0.Add(time.Duration(m.Attempts)*time.Minute)
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	want.Attempts, want.Status, want.NextAttempt = concurrency, enroll.StatusRetry, t0.Add(concurrency*time.Minute)
	wantMessage(t, ob, want)
	wantDue(t, ob, want.NextAttempt.Add(-time.Nanosecond), 10)
	wantDue(t, ob, want.NextAttempt, 10, want.ID)
}

func testOutboxProviderID(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	ctx := t.Context()
	if _, err := ob.MessageByProviderID(ctx, "SMnone"); !isNotFound(err) {
		t.Errorf("MessageByProviderID of an unknown SID: %v, want ErrNotFound", err)
	}
	m1 := message(phone1, enroll.PriorityHigh, t0)
	m1.ID = enqueue(t, ob, m1)
	updateMessage(t, ob, m1.ID, func(m *enroll.OutboundMessage) { m.Status, m.ProviderID = enroll.StatusSent, "SM1" })
	m1.Status, m1.ProviderID = enroll.StatusSent, "SM1"
	wantMessage(t, ob, m1)
	updateMessage(t, ob, m1.ID, func(m *enroll.OutboundMessage) { m.Status = enroll.StatusDelivered })
	m1.Status = enroll.StatusDelivered
	wantMessage(t, ob, m1) // the index still finds it, with the new status

	updateMessage(t, ob, m1.ID, func(m *enroll.OutboundMessage) { m.ProviderID = "SM2" })
	m1.ProviderID = "SM2"
	wantMessage(t, ob, m1)
	if _, err := ob.MessageByProviderID(ctx, "SM1"); !isNotFound(err) {
		t.Errorf("MessageByProviderID of a replaced SID: %v, want ErrNotFound", err)
	}

	m2 := message(phone2, enroll.PriorityHigh, t0)
	m2.Kind, m2.Status, m2.ProviderID = enroll.KindCall, enroll.StatusSent, "CA3"
	m2.ID = enqueue(t, ob, m2)
	wantMessage(t, ob, m2)

	// One SID names one message.
	err := ob.UpdateMessage(ctx, m2.ID, func(m *enroll.OutboundMessage) error { m.ProviderID = "SM2"; return nil })
	if !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("UpdateMessage to another message's SID: %v, want ErrInvalid", err)
	}
	m3 := message(phone3, enroll.PriorityHigh, t0)
	m3.ProviderID = "SM2"
	if _, err := ob.EnqueueMessage(ctx, m3); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("EnqueueMessage with another message's SID: %v, want ErrInvalid", err)
	}
	wantMessage(t, ob, m1)
	wantMessage(t, ob, m2)
}

func testOutboxMessages(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	var ids []uint64
	for _, r := range []struct{ to, user string }{
		{phone1, "jdoe"}, {phone2, "asmith"}, {phone1, "JDoe"}, {phone3, "jdoe"}, {phone1, ""},
	} {
		m := message(r.to, enroll.PriorityHigh, t0)
		m.Username = r.user
		ids = append(ids, enqueue(t, ob, m))
	}
	updateMessage(t, ob, ids[0], func(m *enroll.OutboundMessage) { m.Status = enroll.StatusSent }) // order stays by ID
	tests := []struct {
		name string
		f    enroll.OutboxFilter
		want []uint64
	}{
		{"all, newest first", enroll.OutboxFilter{}, []uint64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"to", enroll.OutboxFilter{To: phone1}, []uint64{ids[4], ids[2], ids[0]}},
		{"username any case", enroll.OutboxFilter{Username: "JDOE"}, []uint64{ids[3], ids[2], ids[0]}},
		{"to and username", enroll.OutboxFilter{To: phone1, Username: "jdoe"}, []uint64{ids[2], ids[0]}},
		{"no match", enroll.OutboxFilter{To: phone2, Username: "jdoe"}, nil},
		{"limit keeps the newest", enroll.OutboxFilter{Limit: 2}, []uint64{ids[4], ids[3]}},
		{"limit counts matches", enroll.OutboxFilter{Username: "jdoe", Limit: 2}, []uint64{ids[3], ids[2]}},
	}
	for _, tt := range tests {
		got, err := ob.Messages(t.Context(), tt.f)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if ids := messageIDs(got); !slices.Equal(ids, tt.want) {
			t.Errorf("%s: Messages(%+v) = %v, want %v", tt.name, tt.f, ids, tt.want)
		}
	}
}
