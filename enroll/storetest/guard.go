package storetest

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The admin login policy: 5 failures in 10 minutes block for 10 minutes.
const (
	guardWindow = 10 * time.Minute
	guardLimit  = 5
	guardBlock  = 10 * time.Minute
)

func guardStore(t *testing.T, open Opener) (enroll.Store, enroll.GuardStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, asGuardStore(t, s), dir
}

func asGuardStore(t *testing.T, s enroll.Store) enroll.GuardStore {
	t.Helper()
	return asStore[enroll.GuardStore](t, s)
}

// fail records a failure of key at at with the admin login policy.
func fail(t *testing.T, gs enroll.GuardStore, key string, at time.Time) time.Time {
	t.Helper()
	until, err := gs.RecordFailure(t.Context(), key, at, guardWindow, guardLimit, guardBlock)
	if err != nil {
		t.Fatalf("RecordFailure(%s, %s): %v", key, at, err)
	}
	return until
}

// wantBlocked checks Blocked(key) at at: the zero want means not blocked.
func wantBlocked(t *testing.T, gs enroll.GuardStore, key string, at, want time.Time) {
	t.Helper()
	until, blocked, err := gs.Blocked(t.Context(), key, at)
	switch {
	case err != nil:
		t.Errorf("Blocked(%s) at %s: %v", key, at, err)
	case want.IsZero() && (blocked || !until.IsZero()):
		t.Errorf("Blocked(%s) at %s = %s, true; want not blocked", key, at, until)
	case !want.IsZero() && (!blocked || !until.Equal(want)):
		t.Errorf("Blocked(%s) at %s = %s, %v; want blocked until %s", key, at, until, blocked, want)
	}
}

func testGuardBlockAtLimit(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	const key = "admin-login:user:jdoe"
	for i := range guardLimit - 1 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if until := fail(t, gs, key, at); !until.IsZero() {
			t.Fatalf("failure %d blocked until %s; want no block before the %d-th", i+1, until, guardLimit)
		}
		wantBlocked(t, gs, key, at, time.Time{})
	}
	fifth := t0.Add(4 * time.Minute)
	want := fifth.Add(guardBlock)
	if until := fail(t, gs, key, fifth); !until.Equal(want) {
		t.Fatalf("the %d-th failure gave %s; want blocked until %s (block from that failure)", guardLimit, until, want)
	}
	wantBlocked(t, gs, key, fifth, want)
	wantBlocked(t, gs, key, want.Add(-time.Nanosecond), want)
	wantBlocked(t, gs, key, want, time.Time{}) // the block ends at until
	// Other keys are independent.
	wantBlocked(t, gs, "admin-login:ip:192.0.2.7", fifth, time.Time{})
	if until := fail(t, gs, "admin-login:user:asmith", fifth); !until.IsZero() {
		t.Errorf("a first failure of another key blocked it until %s", until)
	}
	// After the block, counting starts afresh.
	for i := range guardLimit - 1 {
		if until := fail(t, gs, key, want.Add(time.Duration(i)*time.Second)); !until.IsZero() {
			t.Fatalf("failure %d after the block ended blocked again until %s", i+1, until)
		}
	}
}

func testGuardWindow(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	const key = "admin-login:ip:192.0.2.7"
	// Four failures at t0, then the fifth exactly one window later: the
	// first four have left (now-window, now], so no block.
	for range guardLimit - 1 {
		fail(t, gs, key, t0)
	}
	if until := fail(t, gs, key, t0.Add(guardWindow)); !until.IsZero() {
		t.Errorf("failures older than the window counted: blocked until %s", until)
	}
	// One nanosecond inside the window they count.
	const key2 = "admin-login:ip:192.0.2.8"
	for range guardLimit - 1 {
		fail(t, gs, key2, t0)
	}
	at := t0.Add(guardWindow - time.Nanosecond)
	if until := fail(t, gs, key2, at); !until.Equal(at.Add(guardBlock)) {
		t.Errorf("the %d-th failure within the window gave %s, want %s", guardLimit, until, at.Add(guardBlock))
	}
}

func testGuardBlockedNotCounted(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	const key = "admin-login:user:jdoe"
	for range guardLimit {
		fail(t, gs, key, t0)
	}
	want := t0.Add(guardBlock)
	// Failures during the block neither extend it nor count afterwards.
	for i := range 3 * guardLimit {
		if until := fail(t, gs, key, t0.Add(time.Duration(i)*time.Second)); !until.Equal(want) {
			t.Fatalf("a failure while blocked gave %s, want the current block's end %s", until, want)
		}
	}
	wantBlocked(t, gs, key, want, time.Time{})
	if until := fail(t, gs, key, want); !until.IsZero() {
		t.Errorf("the first failure after the block blocked until %s: failures during the block were counted", until)
	}
}

func testGuardClear(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	ctx := t.Context()
	const key = "admin-login:user:jdoe"
	for range guardLimit - 1 {
		fail(t, gs, key, t0)
	}
	if err := gs.ClearFailures(ctx, key); err != nil {
		t.Fatalf("ClearFailures: %v", err)
	}
	if until := fail(t, gs, key, t0); !until.IsZero() {
		t.Errorf("failures survived ClearFailures: blocked until %s", until)
	}
	for range guardLimit {
		fail(t, gs, key, t0)
	}
	wantBlocked(t, gs, key, t0, t0.Add(guardBlock))
	if err := gs.ClearFailures(ctx, key); err != nil {
		t.Fatalf("ClearFailures: %v", err)
	}
	wantBlocked(t, gs, key, t0, time.Time{})
	if err := gs.ClearFailures(ctx, "never-seen"); err != nil {
		t.Errorf("ClearFailures of an unknown key: %v, want nil", err)
	}
}

func testGuardConcurrent(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	var blocks atomic.Int32
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			until, err := gs.RecordFailure(t.Context(), "race", t0, guardWindow, guardLimit, guardBlock)
			if err != nil {
				t.Error(err)
			}
			if !until.IsZero() {
				blocks.Add(1)
			}
		})
	}
	wg.Wait()
	// Exactly limit-1 calls were counted unblocked; every other saw a block.
	if n := blocks.Load(); int(n) != concurrency-(guardLimit-1) {
		t.Errorf("%d of %d concurrent failures reported a block, want %d", n, concurrency, concurrency-(guardLimit-1))
	}
	wantBlocked(t, gs, "race", t0, t0.Add(guardBlock))
}

func testGuardPurge(t *testing.T, open Opener) {
	s, gs, _ := guardStore(t, open)
	for range guardLimit {
		fail(t, gs, "blocked", t0)
	}
	fail(t, gs, "old", t0)
	fail(t, gs, "fresh", t0.Add(15*time.Minute))
	// At t0+20m the block (to t0+10m) and the old failure have expired;
	// the fresh failure is inside its window.
	if err := s.Purge(t.Context(), t0.Add(20*time.Minute)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	// Asked about t0 again, only what Purge kept answers.
	wantBlocked(t, gs, "blocked", t0, time.Time{})
	for range guardLimit - 1 {
		fail(t, gs, "old", t0.Add(time.Second))
	}
	wantBlocked(t, gs, "old", t0.Add(time.Second), time.Time{}) // would be the 5th with the purged one
	at := t0.Add(16 * time.Minute)
	for range guardLimit - 2 {
		fail(t, gs, "fresh", at)
	}
	if until := fail(t, gs, "fresh", at); !until.Equal(at.Add(guardBlock)) {
		t.Errorf("Purge dropped a failure still inside its window: got %s, want a block until %s", until, at.Add(guardBlock))
	}
	// A live block survives Purge.
	if err := s.Purge(t.Context(), at.Add(time.Minute)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	wantBlocked(t, gs, "fresh", at.Add(time.Minute), at.Add(guardBlock))
}

func guardCalls(gs enroll.GuardStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"RecordFailure": func(ctx context.Context) error {
			_, err := gs.RecordFailure(ctx, "k", t0, guardWindow, guardLimit, guardBlock)
			return err
		},
		"Blocked": func(ctx context.Context) error {
			_, _, err := gs.Blocked(ctx, "k", t0)
			return err
		},
		"ClearFailures": func(ctx context.Context) error { return gs.ClearFailures(ctx, "k") },
	}
}

// wantGuardUntouched checks that failing calls recorded nothing for "k".
func wantGuardUntouched(t *testing.T, gs enroll.GuardStore) {
	t.Helper()
	for range guardLimit - 1 {
		if until := fail(t, gs, "k", t0); !until.IsZero() {
			t.Fatalf("key k blocked until %s after %d failures: failing calls recorded some", until, guardLimit-1)
		}
	}
}

func testGuardInvalidInput(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	ctx := t.Context()
	record := func(key string, now time.Time, window time.Duration, limit int, block time.Duration) func() error {
		return func() error {
			_, err := gs.RecordFailure(ctx, key, now, window, limit, block)
			return err
		}
	}
	bad := map[string]func() error{
		"record empty key":     record("", t0, guardWindow, guardLimit, guardBlock),
		"record long key":      record(strings.Repeat("k", 4096), t0, guardWindow, guardLimit, guardBlock),
		"record zero time":     record("k", time.Time{}, guardWindow, guardLimit, guardBlock),
		"record zero window":   record("k", t0, 0, guardLimit, guardBlock),
		"record zero limit":    record("k", t0, guardWindow, 0, guardBlock),
		"record zero block":    record("k", t0, guardWindow, guardLimit, 0),
		"record negative args": record("k", t0, -guardWindow, -1, -guardBlock),
		"blocked empty key": func() error {
			_, _, err := gs.Blocked(ctx, "", t0)
			return err
		},
		"blocked zero time": func() error {
			_, _, err := gs.Blocked(ctx, "k", time.Time{})
			return err
		},
		"clear empty key": func() error { return gs.ClearFailures(ctx, "") },
	}
	wantInvalid(t, bad)
	wantGuardUntouched(t, gs)
}

func testGuardCancelled(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	wantEachFails(t, cancelled(t), guardCalls(gs), context.Canceled, "with a cancelled context")
	wantGuardUntouched(t, gs)
}

func testGuardClosed(t *testing.T, open Opener) {
	s, gs, _ := guardStore(t, open)
	wantClosedFails(t, s, guardCalls(gs))
}

func testGuardReopen(t *testing.T, open Opener) {
	s, gs, dir := guardStore(t, open)
	for range guardLimit {
		fail(t, gs, "blocked", t0)
	}
	for range guardLimit - 1 {
		fail(t, gs, "counting", t0)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	gs = asGuardStore(t, openAt(t, open, dir))
	wantBlocked(t, gs, "blocked", t0.Add(time.Minute), t0.Add(guardBlock))
	at := t0.Add(time.Minute)
	if until := fail(t, gs, "counting", at); !until.Equal(at.Add(guardBlock)) {
		t.Errorf("failures lost on reopen: the %d-th gave %s, want a block until %s", guardLimit, until, at.Add(guardBlock))
	}
}
