package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The leases that keep a singleton job to one runner (enroll.LeaseStore).

const leaseTTL = time.Minute

func leaseStore(t *testing.T, open Opener) (enroll.Store, enroll.LeaseStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

func acquire(t *testing.T, ls enroll.LeaseStore, name, holder string, now time.Time) bool {
	t.Helper()
	ok, err := ls.AcquireLease(t.Context(), name, holder, now, leaseTTL)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s, t0%+v): %v", name, holder, now.Sub(t0), err)
	}
	return ok
}

func release(t *testing.T, ls enroll.LeaseStore, name, holder string) {
	t.Helper()
	if err := ls.ReleaseLease(t.Context(), name, holder); err != nil {
		t.Fatalf("ReleaseLease(%s, %s): %v", name, holder, err)
	}
}

// leaseSteps runs acquisitions in order and checks each outcome.
func leaseSteps(t *testing.T, ls enroll.LeaseStore, steps []leaseStep) {
	t.Helper()
	for _, st := range steps {
		if got := acquire(t, ls, st.name, st.holder, t0.Add(st.now)); got != st.want {
			t.Errorf("%s: AcquireLease(%s, %s, t0%+v) = %v, want %v", st.what, st.name, st.holder, st.now, got, st.want)
		}
	}
}

type leaseStep struct {
	what         string
	name, holder string
	now          time.Duration // after t0
	want         bool
}

func testLeaseAcquire(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	leaseSteps(t, ls, []leaseStep{
		{"free lease", "lockout", "node-a", 0, true},
		{"another lease is free", "reminders", "node-b", 0, true},
		{"names are exact", "Lockout", "node-b", 0, true},
		{"holders are exact", "lockout", "NODE-A", time.Second, false},
	})
}

func testLeaseRenew(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	leaseSteps(t, ls, []leaseStep{
		{"first", "lockout", "node-a", 0, true},
		{"renewed by its holder", "lockout", "node-a", 50 * time.Second, true},
		// The renewal moved the expiry to 50s + ttl.
		{"held past the first expiry", "lockout", "node-b", leaseTTL + time.Second, false},
		{"renewed again", "lockout", "node-a", leaseTTL + 40*time.Second, true},
		{"still held", "lockout", "node-b", 2*leaseTTL + 39*time.Second, false},
	})
}

func testLeaseRefusedWhileHeld(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	leaseSteps(t, ls, []leaseStep{
		{"first", "lockout", "node-a", 0, true},
		{"another holder", "lockout", "node-b", 0, false},
		{"one nanosecond before the expiry", "lockout", "node-b", leaseTTL - time.Nanosecond, false},
		// A refusal changes nothing: node-a still holds it and renews it.
		{"the holder renews after a refusal", "lockout", "node-a", leaseTTL - time.Nanosecond, true},
	})
}

func testLeaseAfterExpiry(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	leaseSteps(t, ls, []leaseStep{
		{"first", "lockout", "node-a", 0, true},
		{"at the expiry", "lockout", "node-b", leaseTTL, true},
		{"the old holder has lost it", "lockout", "node-a", leaseTTL + time.Second, false},
		{"expired again, long after", "lockout", "node-a", 10 * leaseTTL, true},
	})
}

func testLeaseRelease(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	acquire(t, ls, "lockout", "node-a", t0)
	release(t, ls, "lockout", "node-b") // not its lease: nothing happens
	if acquire(t, ls, "lockout", "node-b", t0.Add(time.Second)) {
		t.Error("ReleaseLease by another holder ended the lease")
	}
	release(t, ls, "lockout", "node-a")
	if !acquire(t, ls, "lockout", "node-b", t0.Add(2*time.Second)) {
		t.Error("the lease is still held after its holder released it")
	}
	release(t, ls, "lockout", "node-a") // no longer its lease
	if acquire(t, ls, "lockout", "node-a", t0.Add(3*time.Second)) {
		t.Error("ReleaseLease by the former holder ended the new holder's lease")
	}
	release(t, ls, "never-held", "node-a") // no lease at all: no error
}

func testLeaseConcurrent(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	wantOneFirst(t, "AcquireLease calls by different holders", func(i int) (bool, error) {
		return ls.AcquireLease(t.Context(), "lockout", "node-"+string(rune('A'+i)), t0, leaseTTL)
	})
	// Concurrent renewals by the holder and attempts by others, once it is
	// known: the holder keeps it every time.
	var holder string
	for i := range concurrency {
		if acquire(t, ls, "lockout", "node-"+string(rune('A'+i)), t0.Add(time.Second)) {
			holder = "node-" + string(rune('A'+i))
		}
	}
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			name := "node-" + string(rune('A'+i))
			ok, err := ls.AcquireLease(t.Context(), "lockout", name, t0.Add(2*time.Second), leaseTTL)
			if err != nil {
				t.Error(err)
			}
			if ok != (name == holder) {
				t.Errorf("AcquireLease by %s while %s holds the lease = %v", name, holder, ok)
			}
		})
	}
	wg.Wait()
}

func leaseCalls(ls enroll.LeaseStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"AcquireLease": func(ctx context.Context) error {
			_, err := ls.AcquireLease(ctx, "lockout", "node-a", t0, leaseTTL)
			return err
		},
		"ReleaseLease": func(ctx context.Context) error { return ls.ReleaseLease(ctx, "lockout", "node-a") },
	}
}

// wantLeaseFree checks that failing calls took no lease.
func wantLeaseFree(t *testing.T, ls enroll.LeaseStore) {
	t.Helper()
	if !acquire(t, ls, "lockout", "node-z", t0) {
		t.Error("AcquireLease: the lease was taken by a failed call")
	}
}

func testLeaseInvalidInput(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	ctx := t.Context()
	long := strings.Repeat("x", 513)
	acq := func(name, holder string, now time.Time, ttl time.Duration) func() error {
		return func() error { _, err := ls.AcquireLease(ctx, name, holder, now, ttl); return err }
	}
	wantInvalid(t, map[string]func() error{
		"empty name":              acq("", "node-a", t0, leaseTTL),
		"empty holder":            acq("lockout", "", t0, leaseTTL),
		"name too long":           acq(long, "node-a", t0, leaseTTL),
		"holder too long":         acq("lockout", long, t0, leaseTTL),
		"zero now":                acq("lockout", "node-a", time.Time{}, leaseTTL),
		"zero ttl":                acq("lockout", "node-a", t0, 0),
		"negative ttl":            acq("lockout", "node-a", t0, -time.Second),
		"release empty name":      func() error { return ls.ReleaseLease(ctx, "", "node-a") },
		"release empty holder":    func() error { return ls.ReleaseLease(ctx, "lockout", "") },
		"release holder too long": func() error { return ls.ReleaseLease(ctx, "lockout", long) },
	})
	wantLeaseFree(t, ls)
}

func testLeaseCancelled(t *testing.T, open Opener) {
	_, ls, _ := leaseStore(t, open)
	wantEachFails(t, cancelled(t), leaseCalls(ls), context.Canceled, "with a cancelled context")
	wantLeaseFree(t, ls)
}

func testLeaseClosed(t *testing.T, open Opener) {
	s, ls, _ := leaseStore(t, open)
	wantClosedFails(t, s, leaseCalls(ls))
}

func testLeaseReopen(t *testing.T, open Opener) {
	s, ls, dir := leaseStore(t, open)
	acquire(t, ls, "lockout", "node-a", t0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The lease ended with the store that granted it: its holder ran on
	// that store, which is closed, so a new runner takes it at once
	// instead of waiting out the TTL (a restart after a crash).
	ls = openAt(t, open, dir)
	if !acquire(t, ls, "lockout", "node-b", t0.Add(time.Second)) {
		t.Error("a lease outlived the store that granted it: the restarted node waits out the TTL")
	}
	if acquire(t, ls, "lockout", "node-a", t0.Add(2*time.Second)) {
		t.Error("after reopen two runners hold the lease")
	}
}
