package etcd_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
)

// TestPagedListings: listings and the backup read more keys than one page
// (500) holds, in order, without losing a record at a page boundary.
func TestPagedListings(t *testing.T) {
	s, cli := newStore(t)
	ctx := t.Context()
	const n = 1100
	for range n {
		if _, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "cli", Action: "enroll", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.Audit(ctx, enroll.AuditFilter{})
	if err != nil || len(evs) != n {
		t.Fatalf("Audit = %d events, %v; want %d", len(evs), err, n)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d", i, ev.Seq)
		}
	}
	newest, err := s.Audit(ctx, enroll.AuditFilter{Newest: true, BeforeSeq: 1000, Limit: 600})
	if err != nil || len(newest) != 600 || newest[0].Seq != 999 || newest[599].Seq != 400 {
		t.Fatalf("newest page = %d events, %v", len(newest), err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	copyPrefix := s.Prefix() + "copy/"
	keys, err := etcd.Restore(ctx, cli, copyPrefix, &buf)
	if err != nil || keys < n {
		t.Fatalf("Restore = %d keys, %v", keys, err)
	}
	c, err := etcd.New(ctx, cli, etcd.Options{Prefix: copyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if evs, err := c.Audit(ctx, enroll.AuditFilter{}); err != nil || len(evs) != n {
		t.Errorf("restored Audit = %d events, %v; want %d", len(evs), err, n)
	}
	if _, err := etcd.Restore(ctx, cli, copyPrefix, bytes.NewReader(nil)); err == nil {
		t.Error("Restore into a prefix that holds keys succeeded")
	}
}

// TestDueMessagesPaged: the due index of one priority holds more keys than
// a page, in the reverse of ID order; DueMessages still gives the lowest
// IDs of each priority, higher priorities first, and nothing due later
// than now.
func TestDueMessagesPaged(t *testing.T) {
	s, _ := newStore(t)
	msg := func(priority int, next time.Time) enroll.OutboundMessage {
		return enroll.OutboundMessage{Kind: enroll.KindSMS, To: "+12015550123", Sealed: []byte("sealed body"), Language: "en",
			Purpose: "code", Username: "jdoe", Priority: priority, Status: enroll.StatusQueued,
			NextAttempt: next, CreatedAt: t0, UpdatedAt: t0}
	}
	enqueue := func(m enroll.OutboundMessage) uint64 {
		id, err := s.EnqueueMessage(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	const low = 520
	var lowIDs, highIDs []uint64
	for i := range low { // the first enqueued is the last due: ID order is not index order
		lowIDs = append(lowIDs, enqueue(msg(5, t0.Add(-time.Duration(i)*time.Millisecond))))
	}
	enqueue(msg(0, t0.Add(time.Nanosecond))) // due after now: never given
	enqueue(msg(5, t0.Add(time.Hour)))
	for range 3 {
		highIDs = append(highIDs, enqueue(msg(0, t0)))
	}
	for _, c := range []struct {
		limit int
		want  []uint64
	}{
		{2, highIDs[:2]},
		{3, highIDs},
		{10, append(slices.Clone(highIDs), lowIDs[:7]...)},
		{1000, append(slices.Clone(highIDs), lowIDs...)},
	} {
		got, err := s.DueMessages(t.Context(), t0, c.limit)
		if err != nil {
			t.Fatalf("DueMessages(limit %d): %v", c.limit, err)
		}
		ids := make([]uint64, len(got))
		for i, m := range got {
			ids[i] = m.ID
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("DueMessages(limit %d) = %d messages %v..., want %d %v...", c.limit, len(ids), ids[:min(len(ids), 12)], len(c.want), c.want[:min(len(c.want), 12)])
		}
	}
}

// TestUpdateMessageGuess: a store guesses a message it just wrote is as it
// wrote it (msgCache); another node's update since is seen all the same,
// both when the guess would let fn write and when it would make fn refuse.
func TestUpdateMessageGuess(t *testing.T) {
	a, cli := newStore(t)
	ctx := t.Context()
	b, err := etcd.New(ctx, cli, etcd.Options{Prefix: a.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := enroll.OutboundMessage{Kind: enroll.KindSMS, To: "+12015550123", Sealed: []byte("sealed body"), Language: "en",
		Purpose: "code", Username: "jdoe", Priority: enroll.PriorityHigh, Status: enroll.StatusHeld, CreatedAt: t0, UpdatedAt: t0}
	status := func(s *etcd.Store, id uint64, from, to string) error {
		return s.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error {
			if m.Status != from {
				return fmt.Errorf("message %d is %s, not %s", id, m.Status, from)
			}
			m.Status, m.NextAttempt = to, t0
			return nil
		})
	}
	// a caches the held message; b queues it: a's fn, guessing held, would
	// refuse, but runs again on the real state.
	id, err := a.EnqueueMessage(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := status(b, id, enroll.StatusHeld, enroll.StatusQueued); err != nil {
		t.Fatal(err)
	}
	if err := status(a, id, enroll.StatusQueued, enroll.StatusRetry); err != nil {
		t.Errorf("update on a stale guess refused: %v", err)
	}
	// a caches what it wrote; b moves it on: a's fn, guessing retry,
	// would write, but the compare sends it to the real state.
	if err := status(b, id, enroll.StatusRetry, enroll.StatusQueued); err != nil {
		t.Fatal(err)
	}
	if err := status(a, id, enroll.StatusRetry, enroll.StatusQueued); err == nil {
		t.Error("update on a stale guess wrote over another node's update")
	}
	got, err := b.Messages(ctx, enroll.OutboxFilter{})
	if err != nil || len(got) != 1 || got[0].Status != enroll.StatusQueued {
		t.Errorf("messages = %+v, %v; want one, queued", got, err)
	}
}
