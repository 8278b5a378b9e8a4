package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// concurrency is how many goroutines race in the atomicity tests.
const concurrency = 50

func mark(t *testing.T, s enroll.Store, sid string, now time.Time, ttl time.Duration) bool {
	t.Helper()
	first, err := s.MarkMessage(t.Context(), sid, now, ttl)
	if err != nil {
		t.Fatalf("MarkMessage(%s, %s): %v", sid, now, err)
	}
	return first
}

func allow(t *testing.T, s enroll.Store, key string, now time.Time, window time.Duration, limit int) bool {
	t.Helper()
	ok, err := s.Allow(t.Context(), key, now, window, limit)
	if err != nil {
		t.Fatalf("Allow(%s, %s): %v", key, now, err)
	}
	return ok
}

func testMarkMessage(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	const ttl = time.Hour
	steps := []struct {
		sid  string
		at   time.Duration // after t0
		want bool
	}{
		{"SM1", 0, true},
		{"SM1", 0, false},
		{"SM1", 30 * time.Minute, false},
		{"SM2", 30 * time.Minute, true}, // another SID is independent
		{"SM1", ttl - time.Nanosecond, false},
		{"SM1", ttl, true}, // expired at t0+ttl: counts as absent, recorded anew
		{"SM1", ttl + time.Minute, false},
	}
	for _, st := range steps {
		if got := mark(t, s, st.sid, t0.Add(st.at), ttl); got != st.want {
			t.Errorf("MarkMessage(%s) at t0+%s = %v, want %v", st.sid, st.at, got, st.want)
		}
	}
}

func testMarkMessageConcurrent(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	wantOneFirst(t, "MarkMessage calls for one SID", func(int) (bool, error) {
		return s.MarkMessage(t.Context(), "SMrace", t0, time.Hour)
	})
}

func testOptOut(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	want := func(phone string, v bool) {
		t.Helper()
		got, err := s.OptedOut(ctx, phone)
		if err != nil || got != v {
			t.Errorf("OptedOut(%s) = %v, %v; want %v", phone, got, err, v)
		}
	}
	set := func(phone string, v bool) {
		t.Helper()
		if err := s.SetOptOut(ctx, phone, v, t0); err != nil {
			t.Fatalf("SetOptOut(%s, %v): %v", phone, v, err)
		}
	}
	want(phone1, false)
	set(phone1, true)
	want(phone1, true)
	want(phone2, false)
	set(phone1, true) // STOP twice is harmless
	want(phone1, true)
	set(phone1, false)
	want(phone1, false)
	set(phone1, false) // START without STOP is harmless
	want(phone1, false)
}

func testAllowLimit(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	const window, limit = time.Hour, 3
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"reset:" + phone1, 0, true},
		{"reset:" + phone1, time.Minute, true},
		{"reset:" + phone1, 2 * time.Minute, true},
		{"reset:" + phone1, 3 * time.Minute, false}, // the limit: 3 per hour
		{"reset:" + phone2, 3 * time.Minute, true},  // another key is independent
		{"reset:" + phone1, window - time.Nanosecond, false},
		{"reset:" + phone1, window, true}, // the t0 hit has left the window (now-window, now]
		{"reset:" + phone1, window + 30*time.Second, false},
		{"reset:" + phone1, window + time.Minute, true},
	}
	for _, st := range steps {
		if got := allow(t, s, st.key, t0.Add(st.at), window, limit); got != st.want {
			t.Errorf("Allow(%s) at t0+%s = %v, want %v", st.key, st.at, got, st.want)
		}
	}
}

func testAllowRefusedNotRecorded(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	const window = time.Hour
	if !allow(t, s, "k", t0, window, 1) {
		t.Fatal("first hit refused")
	}
	if allow(t, s, "k", t0.Add(30*time.Minute), window, 1) {
		t.Fatal("second hit within the window allowed with limit 1")
	}
	// Had the refused hit at t0+30m been recorded, this would be refused.
	if !allow(t, s, "k", t0.Add(window), window, 1) {
		t.Error("hit one window after the first refused: the refused hit was recorded")
	}
}

func testAllowConcurrent(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	const limit = 3
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			ok, err := s.Allow(t.Context(), "race", t0, time.Hour, limit)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != limit {
		t.Errorf("%d of %d concurrent Allow calls with limit %d returned true, want exactly %d", n, concurrency, limit, limit)
	}
}

func testPurge(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	mark(t, s, "SMold", t0, time.Minute)
	mark(t, s, "SMnew", t0, time.Hour)
	allow(t, s, "old", t0, time.Minute, 1)
	allow(t, s, "new", t0, time.Hour, 1)
	if err := s.Purge(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	// Asking again at t0+1s, when both would still be live: only the
	// purged entries are gone.
	at := t0.Add(time.Second)
	if !mark(t, s, "SMold", at, time.Minute) {
		t.Error("expired message ID survived Purge")
	}
	if mark(t, s, "SMnew", at, time.Hour) {
		t.Error("Purge removed a message ID that had not expired")
	}
	if !allow(t, s, "old", at, time.Minute, 1) {
		t.Error("rate-limit hit older than its window survived Purge")
	}
	if allow(t, s, "new", at, time.Hour, 1) {
		t.Error("Purge removed a rate-limit hit still inside its window")
	}
	if err := s.Purge(ctx, t0.Add(24*time.Hour)); err != nil { // purging everything, twice, is fine
		t.Fatalf("Purge: %v", err)
	}
	if err := s.Purge(ctx, t0.Add(24*time.Hour)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if !mark(t, s, "SMnew", at, time.Hour) {
		t.Error("message ID survived a Purge after its expiry")
	}
}
