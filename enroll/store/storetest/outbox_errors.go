package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// How the outbox methods refuse bad input, a done context and a closed
// store, and what survives a reopen.

// outboxCalls exercises every OutboxStore method once with valid
// arguments, for the tests where each must fail the same way.
func outboxCalls(ob enroll.OutboxStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"EnqueueMessage": func(ctx context.Context) error {
			_, err := ob.EnqueueMessage(ctx, message(phone1, enroll.PriorityHigh, t0))
			return err
		},
		"DueMessages": func(ctx context.Context) error {
			_, err := ob.DueMessages(ctx, t0, 10)
			return err
		},
		"UpdateMessage": func(ctx context.Context) error {
			return ob.UpdateMessage(ctx, 1, func(m *enroll.OutboundMessage) error { m.Attempts++; return nil })
		},
		"MessageByProviderID": func(ctx context.Context) error {
			_, err := ob.MessageByProviderID(ctx, "SM1")
			return err
		},
		"Messages": func(ctx context.Context) error {
			_, err := ob.Messages(ctx, enroll.OutboxFilter{})
			return err
		},
	}
}

// wantOutboxEmpty checks that an outbox on which only failing calls were
// made holds nothing.
func wantOutboxEmpty(t *testing.T, ob enroll.OutboxStore) {
	t.Helper()
	if list, err := ob.Messages(t.Context(), enroll.OutboxFilter{}); err != nil || len(list) != 0 {
		t.Errorf("Messages = %v, %v; want none", list, err)
	}
	wantDue(t, ob, t0.Add(time.Hour), 10)
}

func testOutboxInvalidInput(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	ctx := t.Context()
	enqueues := map[string]func(*enroll.OutboundMessage){
		"unknown kind":      func(m *enroll.OutboundMessage) { m.Kind = "fax" },
		"no kind":           func(m *enroll.OutboundMessage) { m.Kind = "" },
		"To not E.164":      func(m *enroll.OutboundMessage) { m.To = "0612345678" },
		"no To":             func(m *enroll.OutboundMessage) { m.To = "" },
		"unknown status":    func(m *enroll.OutboundMessage) { m.Status = "bogus" },
		"no status":         func(m *enroll.OutboundMessage) { m.Status = "" },
		"negative priority": func(m *enroll.OutboundMessage) { m.Priority = -1 },
		"priority too low":  func(m *enroll.OutboundMessage) { m.Priority = enroll.PriorityLow + 1 },
		"no body":           func(m *enroll.OutboundMessage) { m.Sealed = nil },
		"negative attempts": func(m *enroll.OutboundMessage) { m.Attempts = -1 },
		"zero created":      func(m *enroll.OutboundMessage) { m.CreatedAt = time.Time{} },
		"zero next attempt": func(m *enroll.OutboundMessage) { m.NextAttempt = time.Time{} },
	}
	for name, change := range enqueues {
		m := message(phone1, enroll.PriorityHigh, t0)
		change(&m)
		if _, err := ob.EnqueueMessage(ctx, m); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("enqueue with %s: %v, want ErrInvalid", name, err)
		}
	}
	bad := map[string]func() error{
		"due zero time": func() error {
			_, err := ob.DueMessages(ctx, time.Time{}, 10)
			return err
		},
		"due zero limit": func() error {
			_, err := ob.DueMessages(ctx, t0, 0)
			return err
		},
		"due negative limit": func() error {
			_, err := ob.DueMessages(ctx, t0, -1)
			return err
		},
		"update nil fn": func() error { return ob.UpdateMessage(ctx, 1, nil) },
		"by provider ID empty": func() error {
			_, err := ob.MessageByProviderID(ctx, "")
			return err
		},
		"messages To not E.164": func() error {
			_, err := ob.Messages(ctx, enroll.OutboxFilter{To: "2015550101"})
			return err
		},
		"messages negative limit": func() error {
			_, err := ob.Messages(ctx, enroll.OutboxFilter{Limit: -1})
			return err
		},
	}
	for name, call := range bad {
		if err := call(); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	wantOutboxEmpty(t, ob)
}

func testOutboxCancelled(t *testing.T, open Opener) {
	_, ob, _ := outboxStore(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range outboxCalls(ob) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	wantOutboxEmpty(t, ob)
}

func testOutboxClosed(t *testing.T, open Opener) {
	s, ob, _ := outboxStore(t, open)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range outboxCalls(ob) {
		if err := call(t.Context()); !errors.Is(err, enroll.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func testOutboxReopen(t *testing.T, open Opener) {
	s, ob, dir := outboxStore(t, open)
	m1 := message(phone1, enroll.PriorityLow, t0)
	m1.ID = enqueue(t, ob, m1)
	m2 := message(phone2, enroll.PriorityHigh, t0)
	m2.ID = enqueue(t, ob, m2)
	m3 := message(phone3, enroll.PriorityHigh, t0)
	m3.ID = enqueue(t, ob, m3)
	updateMessage(t, ob, m2.ID, func(m *enroll.OutboundMessage) { m.Status, m.ProviderID = enroll.StatusSent, "SM2" })
	m2.Status, m2.ProviderID = enroll.StatusSent, "SM2"
	updateMessage(t, ob, m3.ID, func(m *enroll.OutboundMessage) { m.Status, m.NextAttempt = enroll.StatusRetry, t0.Add(time.Hour) })
	m3.Status, m3.NextAttempt = enroll.StatusRetry, t0.Add(time.Hour)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ob = openAt(t, open, dir)
	for _, m := range []enroll.OutboundMessage{m1, m2, m3} {
		wantMessage(t, ob, m)
	}
	wantDue(t, ob, t0, 10, m1.ID)
	wantDue(t, ob, t0.Add(time.Hour), 10, m3.ID, m1.ID)
	if id := enqueue(t, ob, message(phone1, enroll.PriorityHigh, t0)); id <= m3.ID {
		t.Errorf("EnqueueMessage after reopen = ID %d, want one above %d", id, m3.ID)
	}
}
