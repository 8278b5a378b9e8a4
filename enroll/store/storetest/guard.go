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
	return s, s, dir
}

// fail counts an attempt of key at at with the admin login policy (a
// failure: nothing refunds it) and returns the block it started, or the
// current one when it was refused.
func fail(t *testing.T, gs enroll.GuardStore, key string, at time.Time) time.Time {
	t.Helper()
	_, until, err := gs.Attempt(t.Context(), key, at, guardWindow, guardLimit, guardBlock)
	if err != nil {
		t.Fatalf("Attempt(%s, %s): %v", key, at, err)
	}
	return until
}

// attempt is fail that also says whether the attempt was allowed.
func attempt(t *testing.T, gs enroll.GuardStore, key string, at time.Time) (bool, time.Time) {
	t.Helper()
	ok, until, err := gs.Attempt(t.Context(), key, at, guardWindow, guardLimit, guardBlock)
	if err != nil {
		t.Fatalf("Attempt(%s, %s): %v", key, at, err)
	}
	return ok, until
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
		if ok, until := attempt(t, gs, key, at); !ok || !until.IsZero() {
			t.Fatalf("attempt %d: allowed %v, blocked until %s; want allowed and no block before the %d-th", i+1, ok, until, guardLimit)
		}
		wantBlocked(t, gs, key, at, time.Time{})
	}
	fifth := t0.Add(4 * time.Minute)
	want := fifth.Add(guardBlock)
	// The limit-th attempt is allowed, and blocks the key from then on.
	if ok, until := attempt(t, gs, key, fifth); !ok || !until.Equal(want) {
		t.Fatalf("the %d-th attempt: allowed %v, until %s; want allowed and blocked until %s (block from that attempt)", guardLimit, ok, until, want)
	}
	wantBlocked(t, gs, key, fifth, want)
	wantBlocked(t, gs, key, want.Add(-time.Nanosecond), want)
	wantBlocked(t, gs, key, want, time.Time{}) // the block ends at until
	if ok, until := attempt(t, gs, key, fifth); ok || !until.Equal(want) {
		t.Fatalf("an attempt while blocked: allowed %v, until %s; want refused until %s", ok, until, want)
	}
	// Other keys are independent.
	wantBlocked(t, gs, "admin-login:ip:192.0.2.7", fifth, time.Time{})
	if ok, until := attempt(t, gs, "admin-login:user:asmith", fifth); !ok || !until.IsZero() {
		t.Errorf("a first attempt of another key: allowed %v, blocked until %s", ok, until)
	}
	// After the block, counting starts afresh.
	for i := range guardLimit - 1 {
		if ok, until := attempt(t, gs, key, want.Add(time.Duration(i)*time.Second)); !ok || !until.IsZero() {
			t.Fatalf("attempt %d after the block ended: allowed %v, blocked again until %s", i+1, ok, until)
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
	// Attempts during the block are refused, neither extend it nor count
	// afterwards.
	for i := range 3 * guardLimit {
		if ok, until := attempt(t, gs, key, t0.Add(time.Duration(i)*time.Second)); ok || !until.Equal(want) {
			t.Fatalf("an attempt while blocked: allowed %v, until %s; want refused until the current block's end %s", ok, until, want)
		}
	}
	wantBlocked(t, gs, key, want, time.Time{})
	if until := fail(t, gs, key, want); !until.IsZero() {
		t.Errorf("the first attempt after the block blocked until %s: attempts during the block were counted", until)
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

// testGuardConcurrent: however many attempts race, exactly limit are
// allowed (the limit-th starting the block) and every other is refused.
func testGuardConcurrent(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	var allowed, blocks atomic.Int32
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			// Writers with their own clocks, a nanosecond apart, inside
			// one window.
			ok, until, err := gs.Attempt(t.Context(), "race", t0.Add(time.Duration(i)), guardWindow, guardLimit, guardBlock)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
			if !until.IsZero() {
				blocks.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); int(n) != guardLimit {
		t.Errorf("%d of %d concurrent attempts were allowed, want exactly %d", n, concurrency, guardLimit)
	}
	// limit-1 allowed without a block; the limit-th and the refused ones saw it.
	if n := blocks.Load(); int(n) != concurrency-(guardLimit-1) {
		t.Errorf("%d of %d concurrent attempts reported a block, want %d", n, concurrency, concurrency-(guardLimit-1))
	}
	if _, blocked, err := gs.Blocked(t.Context(), "race", t0.Add(concurrency)); err != nil || !blocked {
		t.Errorf("after %d concurrent attempts: blocked %v, %v; want blocked", concurrency, blocked, err)
	}
}

// testGuardConcurrentRefunds: attempts that race with refunds of earlier
// ones never let more than limit unrefunded attempts through.
func testGuardConcurrentRefunds(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	ctx := t.Context()
	var unrefunded, refunded atomic.Int32
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			at := t0.Add(time.Duration(i))
			ok, _, err := gs.Attempt(ctx, "race", at, guardWindow, guardLimit, guardBlock)
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				return
			}
			if i%2 == 0 { // every other allowed attempt was no failure
				if err := gs.RefundAttempt(ctx, "race", at, at); err != nil {
					t.Error(err)
				}
				refunded.Add(1)
				return
			}
			unrefunded.Add(1)
		})
	}
	wg.Wait()
	if n := unrefunded.Load(); int(n) > guardLimit {
		t.Errorf("%d unrefunded attempts got through, want at most %d", n, guardLimit)
	}
	if refunded.Load() == 0 {
		t.Log("no allowed attempt was refunded in this run")
	}
}

func testGuardRefund(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	ctx := t.Context()
	const key = "admin-login:user:jdoe"
	refund := func(at, now time.Time) {
		t.Helper()
		if err := gs.RefundAttempt(ctx, key, at, now); err != nil {
			t.Fatalf("RefundAttempt(%s, %s): %v", at, now, err)
		}
	}
	for i := range guardLimit {
		fail(t, gs, key, t0.Add(time.Duration(i)*time.Second))
	}
	last := t0.Add((guardLimit - 1) * time.Second)
	wantBlocked(t, gs, key, last, last.Add(guardBlock))
	// Taking back one attempt lifts the block it helped start: one
	// attempt may be made again, and it blocks the key again.
	refund(t0.Add(time.Second), last)
	wantBlocked(t, gs, key, last, time.Time{})
	at := last.Add(time.Second)
	if ok, until := attempt(t, gs, key, at); !ok || !until.Equal(at.Add(guardBlock)) {
		t.Fatalf("the attempt after a refund: allowed %v, until %s; want allowed and blocked until %s", ok, until, at.Add(guardBlock))
	}
	// A refund of an attempt never counted (or already refunded) changes nothing.
	refund(t0.Add(time.Second), at)
	refund(t0.Add(time.Hour), at)
	wantBlocked(t, gs, key, at, at.Add(guardBlock))
	if err := gs.RefundAttempt(ctx, "never-seen", t0, t0); err != nil {
		t.Errorf("RefundAttempt of an unknown key: %v, want nil", err)
	}
	// Once the block has ended, its attempts are gone: a late refund does
	// not bring the others back to count.
	end := at.Add(guardBlock)
	refund(at, end)
	for i := range guardLimit - 1 {
		if ok, until := attempt(t, gs, key, end.Add(time.Duration(i))); !ok || !until.IsZero() {
			t.Fatalf("attempt %d after the block ended and a late refund: allowed %v, until %s", i+1, ok, until)
		}
	}
	// Below the limit, a refund makes room for one more.
	const k2 = "admin-login:ip:192.0.2.9"
	for range guardLimit - 1 {
		fail(t, gs, k2, t0)
	}
	if err := gs.RefundAttempt(ctx, k2, t0, t0); err != nil {
		t.Fatal(err)
	}
	if until := fail(t, gs, k2, t0); !until.IsZero() {
		t.Errorf("the %d-th attempt after a refund blocked until %s; want no block", guardLimit-1, until)
	}
	if until := fail(t, gs, k2, t0); !until.Equal(t0.Add(guardBlock)) {
		t.Errorf("the %d-th unrefunded attempt gave %s, want a block until %s", guardLimit, until, t0.Add(guardBlock))
	}
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
		"Attempt": func(ctx context.Context) error {
			_, _, err := gs.Attempt(ctx, "k", t0, guardWindow, guardLimit, guardBlock)
			return err
		},
		"RefundAttempt": func(ctx context.Context) error { return gs.RefundAttempt(ctx, "k", t0, t0) },
		"Blocked": func(ctx context.Context) error {
			_, _, err := gs.Blocked(ctx, "k", t0)
			return err
		},
		"ClearFailures": func(ctx context.Context) error { return gs.ClearFailures(ctx, "k") },
	}
}

// wantGuardUntouched checks that failing calls counted nothing for "k".
func wantGuardUntouched(t *testing.T, gs enroll.GuardStore) {
	t.Helper()
	for range guardLimit - 1 {
		if until := fail(t, gs, "k", t0); !until.IsZero() {
			t.Fatalf("key k blocked until %s after %d failures: failing calls counted some", until, guardLimit-1)
		}
	}
}

func testGuardInvalidInput(t *testing.T, open Opener) {
	_, gs, _ := guardStore(t, open)
	ctx := t.Context()
	record := func(key string, now time.Time, window time.Duration, limit int, block time.Duration) func() error {
		return func() error {
			_, _, err := gs.Attempt(ctx, key, now, window, limit, block)
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
		"clear empty key":  func() error { return gs.ClearFailures(ctx, "") },
		"refund empty key": func() error { return gs.RefundAttempt(ctx, "", t0, t0) },
		"refund zero time": func() error { return gs.RefundAttempt(ctx, "k", time.Time{}, t0) },
		"refund zero now":  func() error { return gs.RefundAttempt(ctx, "k", t0, time.Time{}) },
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
	gs = openAt(t, open, dir)
	wantBlocked(t, gs, "blocked", t0.Add(time.Minute), t0.Add(guardBlock))
	at := t0.Add(time.Minute)
	if until := fail(t, gs, "counting", at); !until.Equal(at.Add(guardBlock)) {
		t.Errorf("failures lost on reopen: the %d-th gave %s, want a block until %s", guardLimit, until, at.Add(guardBlock))
	}
}
