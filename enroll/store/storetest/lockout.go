package storetest

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// lockoutStore opens a store on a fresh directory and returns it both as a
// Store and as a LockoutStore (a part of Store).
func lockoutStore(t *testing.T, open Opener) (enroll.Store, enroll.LockoutStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

func recordLockout(t *testing.T, ls enroll.LockoutStore, username string, lockedAt, now time.Time) bool {
	t.Helper()
	first, err := ls.RecordLockout(t.Context(), username, lockedAt, now)
	if err != nil {
		t.Fatalf("RecordLockout(%s, %s): %v", username, lockedAt, err)
	}
	return first
}

func wantCursor(t *testing.T, ls enroll.LockoutStore, name string, want []byte) {
	t.Helper()
	got, err := ls.MonitorCursor(t.Context(), name)
	switch {
	case err != nil:
		t.Errorf("MonitorCursor(%s): %v", name, err)
	case want == nil && got != nil:
		t.Errorf("MonitorCursor(%s) = %q, want nil", name, got)
	case !bytes.Equal(got, want):
		t.Errorf("MonitorCursor(%s) = %q, want %q", name, got, want)
	}
}

func setCursor(t *testing.T, ls enroll.LockoutStore, name string, cursor []byte) {
	t.Helper()
	if err := ls.SetMonitorCursor(t.Context(), name, cursor); err != nil {
		t.Fatalf("SetMonitorCursor(%s): %v", name, err)
	}
}

func testLockoutFirstAndDuplicate(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	locked := t0.Add(-time.Minute)
	steps := []struct {
		name     string
		username string
		lockedAt time.Time
		now      time.Duration // after t0
		want     bool
	}{
		{"new event", "jdoe", locked, 0, true},
		{"same event", "jdoe", locked, 0, false},
		{"same event, later", "jdoe", locked, time.Hour, false},
		{"same event, other case", "JDoe", locked, time.Hour, false},
		{"same instant in another zone", "jdoe", locked.In(time.FixedZone("CET", 3600)), time.Hour, false},
		{"another user, same time", "asmith", locked, 0, true},
		{"re-lock one nanosecond later", "jdoe", locked.Add(time.Nanosecond), 0, true},
		{"re-lock an hour later", "jdoe", locked.Add(time.Hour), time.Hour, true},
		{"lockout time in the future (clock skew)", "skewed", t0.Add(time.Hour), 0, true},
		{"just inside the retention", "old", t0.Add(-enroll.LockoutRetention + time.Nanosecond), 0, true},
		{"at the retention: never news", "older", t0.Add(-enroll.LockoutRetention), 0, false},
		{"not recorded either", "older", t0.Add(-enroll.LockoutRetention), -time.Nanosecond, true},
	}
	for _, st := range steps {
		if got := recordLockout(t, ls, st.username, st.lockedAt, t0.Add(st.now)); got != st.want {
			t.Errorf("%s: RecordLockout(%s, %s) = %v, want %v", st.name, st.username, st.lockedAt, got, st.want)
		}
	}
}

func testLockoutConcurrent(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	wantOneFirst(t, "RecordLockout calls for one event", func(i int) (bool, error) {
		// Spellings differ: usernames match case-insensitively.
		name := "jdoe"
		if i%2 == 1 {
			name = "JDOE"
		}
		return ls.RecordLockout(t.Context(), name, t0, t0.Add(time.Duration(i)*time.Millisecond))
	})
}

func testLockoutPurge(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	ctx := t.Context()
	recordLockout(t, ls, "a", t0, t0)
	recordLockout(t, ls, "b", t0.Add(time.Hour), t0.Add(time.Hour))
	recordLockout(t, ls, "c", t0.Add(48*time.Hour), t0.Add(48*time.Hour))
	purge := func(now time.Time, want int) {
		t.Helper()
		n, err := ls.PurgeLockouts(ctx, now)
		if err != nil || n != want {
			t.Errorf("PurgeLockouts(t0%+v) = %d, %v; want %d", now.Sub(t0), n, err, want)
		}
	}
	purge(t0.Add(enroll.LockoutRetention-time.Nanosecond), 0)
	purge(t0.Add(enroll.LockoutRetention+time.Hour), 2) // a and b
	purge(t0.Add(enroll.LockoutRetention+time.Hour), 0)
	// c is still remembered; a, purged, is not news any more either.
	if recordLockout(t, ls, "c", t0.Add(48*time.Hour), t0.Add(enroll.LockoutRetention+time.Hour)) {
		t.Error("an event younger than the retention was purged")
	}
	if recordLockout(t, ls, "a", t0, t0.Add(enroll.LockoutRetention+time.Hour)) {
		t.Error("a purged event came back as news")
	}
	purge(t0.Add(enroll.LockoutRetention+48*time.Hour), 1)
}

func testLockoutPurgeConcurrent(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	for i := range concurrency {
		recordLockout(t, ls, "u"+strings.Repeat("x", i%7), t0.Add(time.Duration(i)*time.Second), t0)
	}
	var removed atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			n, err := ls.PurgeLockouts(t.Context(), t0.Add(enroll.LockoutRetention+time.Hour))
			if err != nil {
				t.Error(err)
			}
			removed.Add(int32(n))
		})
	}
	wg.Wait()
	if n := removed.Load(); n != concurrency {
		t.Errorf("concurrent PurgeLockouts removed %d events in all, want %d", n, concurrency)
	}
}

func testMonitorCursor(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	wantCursor(t, ls, "lockout", nil)
	c := []byte("usn:12345")
	setCursor(t, ls, "lockout", c)
	c[0] = 'X' // the store kept its own copy
	wantCursor(t, ls, "lockout", []byte("usn:12345"))
	got, err := ls.MonitorCursor(t.Context(), "lockout")
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'Y' // and hands out copies
	wantCursor(t, ls, "lockout", []byte("usn:12345"))

	setCursor(t, ls, "lockout", []byte("usn:12399"))
	wantCursor(t, ls, "lockout", []byte("usn:12399"))
	wantCursor(t, ls, "storm", nil) // names are independent
	setCursor(t, ls, "storm", []byte{0, 1, 2, 0xff})
	wantCursor(t, ls, "storm", []byte{0, 1, 2, 0xff})
	wantCursor(t, ls, "lockout", []byte("usn:12399"))
	big := bytes.Repeat([]byte("c"), 64<<10)
	setCursor(t, ls, "big", big)
	wantCursor(t, ls, "big", big)

	setCursor(t, ls, "lockout", nil)
	wantCursor(t, ls, "lockout", nil)
	setCursor(t, ls, "storm", []byte{})
	wantCursor(t, ls, "storm", nil)
	setCursor(t, ls, "never-set", nil) // deleting nothing is harmless
	wantCursor(t, ls, "never-set", nil)
}

// lockoutCalls exercises every LockoutStore method once with valid
// arguments, for the tests where each must fail the same way.
func lockoutCalls(ls enroll.LockoutStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"RecordLockout": func(ctx context.Context) error {
			_, err := ls.RecordLockout(ctx, "jdoe", t0, t0)
			return err
		},
		"PurgeLockouts": func(ctx context.Context) error {
			_, err := ls.PurgeLockouts(ctx, t0)
			return err
		},
		"MonitorCursor": func(ctx context.Context) error {
			_, err := ls.MonitorCursor(ctx, "lockout")
			return err
		},
		"SetMonitorCursor": func(ctx context.Context) error {
			return ls.SetMonitorCursor(ctx, "lockout", []byte("c"))
		},
	}
}

// wantLockoutsUntouched checks that nothing was recorded by failing calls.
func wantLockoutsUntouched(t *testing.T, ls enroll.LockoutStore) {
	t.Helper()
	wantCursor(t, ls, "lockout", nil)
	if !recordLockout(t, ls, "jdoe", t0, t0) {
		t.Error("RecordLockout: the event was recorded by a failed call")
	}
}

func testLockoutInvalidInput(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	ctx := t.Context()
	bad := map[string]func() error{
		"record empty username": func() error {
			_, err := ls.RecordLockout(ctx, "", t0, t0)
			return err
		},
		"record username with spaces": func() error {
			_, err := ls.RecordLockout(ctx, " jdoe", t0, t0)
			return err
		},
		"record control character": func() error {
			_, err := ls.RecordLockout(ctx, "jd\x00oe", t0, t0)
			return err
		},
		"record zero lockout time": func() error {
			_, err := ls.RecordLockout(ctx, "jdoe", time.Time{}, t0)
			return err
		},
		"record zero now": func() error {
			_, err := ls.RecordLockout(ctx, "jdoe", t0, time.Time{})
			return err
		},
		"purge zero now": func() error {
			_, err := ls.PurgeLockouts(ctx, time.Time{})
			return err
		},
		"cursor empty name": func() error {
			_, err := ls.MonitorCursor(ctx, "")
			return err
		},
		"set cursor empty name": func() error { return ls.SetMonitorCursor(ctx, "", []byte("c")) },
		"set cursor name too long": func() error {
			return ls.SetMonitorCursor(ctx, strings.Repeat("n", 4096), []byte("c"))
		},
		"set cursor too big": func() error {
			return ls.SetMonitorCursor(ctx, "lockout", make([]byte, 16<<20))
		},
	}
	wantInvalid(t, bad)
	wantLockoutsUntouched(t, ls)
}

func testLockoutCancelled(t *testing.T, open Opener) {
	_, ls, _ := lockoutStore(t, open)
	wantEachFails(t, cancelled(t), lockoutCalls(ls), context.Canceled, "with a cancelled context")
	wantLockoutsUntouched(t, ls)
}

func testLockoutClosed(t *testing.T, open Opener) {
	s, ls, _ := lockoutStore(t, open)
	wantClosedFails(t, s, lockoutCalls(ls))
}

func testLockoutReopen(t *testing.T, open Opener) {
	s, ls, dir := lockoutStore(t, open)
	recordLockout(t, ls, "JDoe", t0, t0)
	setCursor(t, ls, "lockout", []byte("usn:42"))
	setCursor(t, ls, "storm", []byte(`{"active":true}`))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ls = openAt(t, open, dir)
	if recordLockout(t, ls, "jdoe", t0, t0.Add(time.Minute)) {
		t.Error("lockout event lost on reopen: it would be alerted twice")
	}
	if !recordLockout(t, ls, "jdoe", t0.Add(time.Second), t0.Add(time.Minute)) {
		t.Error("a new lockout after reopen is not news")
	}
	wantCursor(t, ls, "lockout", []byte("usn:42"))
	wantCursor(t, ls, "storm", []byte(`{"active":true}`))
	if n, err := ls.PurgeLockouts(t.Context(), t0.Add(enroll.LockoutRetention+time.Minute)); err != nil || n != 2 {
		t.Errorf("PurgeLockouts after reopen = %d, %v; want 2", n, err)
	}
}
