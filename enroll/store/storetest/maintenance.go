package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// testBackupRoundTrip: a backup holds what was written before it and
// nothing written after, opens as a store (through the Restorer) that
// passes Check, and leaves the live store in use.
func testBackupRoundTrip(t *testing.T, open Opener, restore Restorer) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	alice := enrollment("Alice", phone1, enroll.StateActive)
	put(t, s, alice)
	seqs := auditFixture(t, s)
	a := activation("bob", tokenHash(1))
	if err := s.PutActivation(ctx, a); err != nil {
		t.Fatal(err)
	}
	id, err := s.EnqueueMessage(ctx, message(phone1, enroll.PriorityLow, t0))
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	n, err := s.Backup(ctx, &buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup reported %d bytes, wrote %d", n, buf.Len())
	}
	// The store stays usable after the backup; this write is not in it.
	put(t, s, enrollment("later", "", enroll.StatePending))

	dir := t.TempDir()
	restore(t, dir, buf.Bytes())
	b := openAt(t, open, dir)
	if err := b.Check(ctx); err != nil {
		t.Errorf("Check of the restored backup: %v", err)
	}
	wantEqual(t, get(t, b, "alice"), alice)
	wantOwner(t, b, phone1, "Alice")
	if _, err := b.Enrollment(ctx, "later"); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("the backup holds an enrollment written after it: %v", err)
	}
	if evs, err := b.Audit(ctx, enroll.AuditFilter{}); err != nil || len(evs) != len(seqs) || evs[len(evs)-1].Seq != seqs[len(seqs)-1] {
		t.Errorf("backup Audit = %d events, %v; want %d up to Seq %d", len(evs), err, len(seqs), seqs[len(seqs)-1])
	}
	if got, err := b.ActivationByToken(ctx, a.TokenHash); err != nil || got.Username != "bob" {
		t.Errorf("backup ActivationByToken = %+v, %v", got, err)
	}
	if ms, err := b.Messages(ctx, enroll.OutboxFilter{}); err != nil || len(ms) != 1 || ms[0].ID != id {
		t.Errorf("backup Messages = %+v, %v; want message %d", ms, err, id)
	}
	// The copy goes on numbering after what it holds.
	if seq, err := b.AppendAudit(ctx, enroll.Event{Time: t0.Add(time.Hour), Actor: "cli", Action: "restore", Outcome: "ok"}); err != nil || seq <= seqs[len(seqs)-1] {
		t.Errorf("AppendAudit on the copy = %d, %v; want a Seq above %d", seq, err, seqs[len(seqs)-1])
	}
	if _, err := s.Enrollment(ctx, "later"); err != nil {
		t.Errorf("the live store lost a write made after the backup: %v", err)
	}
}

// testBackupUnderWrites: a backup taken while writers keep appending holds
// every write acknowledged before it began, and nothing half-written.
func testBackupUnderWrites(t *testing.T, open Opener, restore Restorer) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	var (
		acked   sync.Map // seq → true, once AppendAudit returned
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				seq, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "test", Action: "write", Outcome: "ok",
					Detail: string(rune('a'+w)) + "-" + time.Duration(i).String()})
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(seq, true)
				written.Add(1)
			}
		})
	}
	for written.Load() < 200 && !t.Failed() { // let the writers get going
		time.Sleep(time.Millisecond)
	}
	var before []uint64
	acked.Range(func(k, _ any) bool {
		before = append(before, k.(uint64))
		return true
	})
	var buf bytes.Buffer
	_, err := s.Backup(ctx, &buf)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup while writing: %v", err)
	}

	dir := t.TempDir()
	restore(t, dir, buf.Bytes())
	b := openAt(t, open, dir)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of the backup: %v", err)
	}
	evs, err := b.Audit(ctx, enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[uint64]bool, len(evs))
	for i, ev := range evs {
		have[ev.Seq] = true
		if ev.Action != "write" || ev.Detail == "" || (i > 0 && ev.Seq <= evs[i-1].Seq) {
			t.Fatalf("backup event %d is damaged: %+v", i, ev)
		}
	}
	for _, seq := range before {
		if !have[seq] {
			t.Fatalf("event %d was acknowledged before the backup began but is not in it", seq)
		}
	}
	if len(evs) < len(before) || int64(len(evs)) > written.Load() {
		t.Errorf("backup holds %d events: %d acknowledged before it began, %d written in all", len(evs), len(before), written.Load())
	}
}

// testCheck: a store in use passes its consistency check; a closed one
// says so (cancelled contexts: CancelledContext).
func testCheck(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	put(t, s, enrollment("jdoe", phone1, enroll.StateActive))
	for i := range 200 { // records of many sizes, over many pages
		if _, err := s.AppendAudit(t.Context(), enroll.Event{Time: t0, Actor: "cli", Action: "enroll", Outcome: "ok",
			Detail: strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); !errors.Is(err, enroll.ErrClosed) {
		t.Errorf("Check after Close: %v, want ErrClosed", err)
	}
}

// testPing: an open store answers, a closed one does not.
func testPing(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, enroll.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
}

// observed records what a StoreObserver is told.
type observed struct {
	mu     sync.Mutex
	events []enroll.Event
	msgs   []enroll.OutboundMessage
}

func (o *observed) AuditAppended(ev enroll.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, ev)
}

func (o *observed) MessageUpdated(m enroll.OutboundMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
}

func (o *observed) counts() (events, msgs int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.events), len(o.msgs)
}

// testObserver: the observer hears every audit event appended (with its
// Seq) and every outbox message stored or updated (with its ID, without
// its body), after the write; not a write that failed; and nothing once
// removed.
func testObserver(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	o := &observed{}
	s.SetObserver(o)
	seq, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "cli", Action: "enroll", Username: "jdoe", Outcome: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.EnqueueMessage(ctx, message(phone1, enroll.PriorityLow, t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error {
		m.Status, m.ProviderID = enroll.StatusSent, "SM42"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	if err := s.UpdateMessage(ctx, id, func(*enroll.OutboundMessage) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("UpdateMessage with a failing fn: %v", err)
	}
	if _, err := s.AppendAudit(ctx, enroll.Event{Time: t0}); !errors.Is(err, enroll.ErrInvalid) {
		t.Fatalf("AppendAudit without an action: %v", err)
	}

	o.mu.Lock()
	if len(o.events) != 1 || o.events[0].Seq != seq || o.events[0].Action != "enroll" || o.events[0].Username != "jdoe" {
		t.Errorf("audit events observed = %+v; want the one of Seq %d", o.events, seq)
	}
	if len(o.msgs) != 2 || o.msgs[0].ID != id || o.msgs[0].Status != enroll.StatusQueued ||
		o.msgs[1].ID != id || o.msgs[1].Status != enroll.StatusSent || o.msgs[1].ProviderID != "SM42" {
		t.Errorf("messages observed = %+v; want message %d queued, then sent", o.msgs, id)
	}
	for _, m := range o.msgs {
		if len(m.Sealed) != 0 {
			t.Errorf("an observer was given the body of message %d", m.ID)
		}
	}
	o.mu.Unlock()
	if ms, err := s.Messages(ctx, enroll.OutboxFilter{}); err != nil || len(ms) != 1 || len(ms[0].Sealed) == 0 {
		t.Errorf("the stored message lost its body to the observer: %+v, %v", ms, err)
	}

	s.SetObserver(nil)
	if _, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "cli", Action: "enroll", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueMessage(ctx, message(phone2, enroll.PriorityLow, t0)); err != nil {
		t.Fatal(err)
	}
	if events, msgs := o.counts(); events != 1 || msgs != 2 {
		t.Errorf("after SetObserver(nil) the observer heard %d events and %d messages; want 1 and 2", events, msgs)
	}
}

// The fingerprint of the sealing key the store's secrets are sealed with
// (enroll.SealKeyStore).

const (
	fingerprintA = "0123456789abcdef"
	fingerprintB = "fedcba9876543210"
)

func sealKey(t *testing.T, s enroll.SealKeyStore, fp string) string {
	t.Helper()
	got, err := s.SealKey(t.Context(), fp)
	if err != nil {
		t.Fatalf("SealKey(%s): %v", fp, err)
	}
	return got
}

func testSealKeyFirstRecorded(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	if got := sealKey(t, s, fingerprintA); got != fingerprintA {
		t.Errorf("SealKey(A) on an empty store = %q, want A recorded and returned", got)
	}
	if got := sealKey(t, s, fingerprintA); got != fingerprintA {
		t.Errorf("SealKey(A) again = %q, want A", got)
	}
	// Another key does not replace the recorded one: it is told which.
	if got := sealKey(t, s, fingerprintB); got != fingerprintA {
		t.Errorf("SealKey(B) after A = %q, want A (unchanged)", got)
	}
	long := strings.Repeat("ab", 64)
	if got := sealKey(t, s, long); got != fingerprintA {
		t.Errorf("SealKey(128 digits) after A = %q, want A", got)
	}
}

func testSealKeyConcurrent(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	got := make([]string, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			fp := fmt.Sprintf("%016x", i+1)
			r, err := s.SealKey(t.Context(), fp)
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		})
	}
	wg.Wait()
	for i, r := range got {
		if r != got[0] {
			t.Fatalf("concurrent first SealKey calls got %q and %q (call %d): want one fingerprint recorded for all", got[0], r, i)
		}
	}
	if got[0] == "" {
		t.Fatal("concurrent SealKey calls recorded nothing")
	}
	if r := sealKey(t, s, fingerprintB); r != got[0] {
		t.Errorf("SealKey after the race = %q, want %q", r, got[0])
	}
}

func sealKeyCalls(s enroll.SealKeyStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"SealKey": func(ctx context.Context) error { _, err := s.SealKey(ctx, fingerprintA); return err },
	}
}

// wantNoSealKey checks that failing calls recorded nothing.
func wantNoSealKey(t *testing.T, s enroll.SealKeyStore) {
	t.Helper()
	if got := sealKey(t, s, fingerprintB); got != fingerprintB {
		t.Errorf("SealKey(B) = %q: a failed call recorded a fingerprint", got)
	}
}

func testSealKeyInvalidInput(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	call := func(fp string) func() error {
		return func() error { _, err := s.SealKey(t.Context(), fp); return err }
	}
	wantInvalid(t, map[string]func() error{
		"empty":         call(""),
		"too short":     call("0123456789abcde"),
		"too long":      call(strings.Repeat("a", 129)),
		"upper case":    call("0123456789ABCDEF"),
		"not hex":       call("0123456789abcdeg"),
		"space":         call("0123456789abcde "),
		"key-like junk": call(strings.Repeat("\x00", 64)),
	})
	wantNoSealKey(t, s)
}

func testSealKeyCancelled(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	wantEachFails(t, cancelled(t), sealKeyCalls(s), context.Canceled, "with a cancelled context")
	wantNoSealKey(t, s)
}

func testSealKeyClosed(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	wantClosedFails(t, s, sealKeyCalls(s))
}

func testSealKeyReopen(t *testing.T, open Opener) {
	s, dir := newStore(t, open)
	sealKey(t, s, fingerprintA)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openAt(t, open, dir)
	if got := sealKey(t, s, fingerprintB); got != fingerprintA {
		t.Errorf("SealKey(B) after reopen = %q, want A (the fingerprint survives)", got)
	}
}

func testSealKeyBackup(t *testing.T, open Opener, restore Restorer) {
	s, _ := newStore(t, open)
	sealKey(t, s, fingerprintA)
	var buf strings.Builder
	if _, err := s.Backup(t.Context(), &buf); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	dir := t.TempDir()
	restore(t, dir, []byte(buf.String()))
	c := openAt(t, open, dir)
	if got := sealKey(t, c, fingerprintB); got != fingerprintA {
		t.Errorf("SealKey(B) on the restored copy = %q, want A: a backup must carry the fingerprint of the key its secrets need", got)
	}
}
