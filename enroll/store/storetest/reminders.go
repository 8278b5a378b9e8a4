package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The password-expiry reminders sent (enroll.ReminderStore).

func reminderStore(t *testing.T, open Opener) (enroll.Store, enroll.ReminderStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

func recordReminder(t *testing.T, rs enroll.ReminderStore, username string, expires time.Time, stage int, now time.Time) bool {
	t.Helper()
	first, err := rs.RecordReminder(t.Context(), username, expires, stage, now)
	if err != nil {
		t.Fatalf("RecordReminder(%s, %s, %d): %v", username, expires, stage, err)
	}
	return first
}

func testReminderFirstAndDuplicate(t *testing.T, open Opener) {
	_, rs, _ := reminderStore(t, open)
	expires := t0.Add(10 * 24 * time.Hour)
	steps := []struct {
		name     string
		username string
		expires  time.Time
		stage    int
		now      time.Duration // after t0
		want     bool
	}{
		{"first stage", "jdoe", expires, 14, 0, true},
		{"same stage again", "jdoe", expires, 14, time.Hour, false},
		{"same stage, other case", "JDOE", expires, 14, 2 * time.Hour, false},
		{"same instant in another zone", "jdoe", expires.In(time.FixedZone("CET", 3600)), 14, 0, false},
		{"next stage", "jdoe", expires, 7, 3 * 24 * time.Hour, true},
		{"next stage again", "jdoe", expires, 7, 4 * 24 * time.Hour, false},
		{"another user", "asmith", expires, 14, 0, true},
		{"a new password restarts the stages", "jdoe", expires.Add(42 * 24 * time.Hour), 14, 0, true},
		{"one nanosecond later is another expiry", "jdoe", expires.Add(time.Nanosecond), 7, 0, true},
		{"expired, inside the retention", "late", t0.Add(-enroll.ReminderRetention + time.Nanosecond), 1, 0, true},
		{"at the retention: never new", "older", t0.Add(-enroll.ReminderRetention), 1, 0, false},
		{"not recorded either", "older", t0.Add(-enroll.ReminderRetention), 1, -time.Nanosecond, true},
	}
	for _, st := range steps {
		if got := recordReminder(t, rs, st.username, st.expires, st.stage, t0.Add(st.now)); got != st.want {
			t.Errorf("%s: RecordReminder(%s, %s, %d) = %v, want %v", st.name, st.username, st.expires, st.stage, got, st.want)
		}
	}
}

func testReminderConcurrent(t *testing.T, open Opener) {
	_, rs, _ := reminderStore(t, open)
	wantOneFirst(t, "RecordReminder calls for one stage", func(i int) (bool, error) {
		name := "jdoe"
		if i%2 == 1 {
			name = "JDoe"
		}
		return rs.RecordReminder(t.Context(), name, t0.Add(time.Hour), 3, t0.Add(time.Duration(i)*time.Millisecond))
	})
}

// wantOneFirst makes concurrency concurrent calls of a check-and-insert
// (call gets the call's number) and wants exactly one to report first.
func wantOneFirst(t *testing.T, what string, call func(i int) (bool, error)) {
	t.Helper()
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			first, err := call(i)
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Errorf("%d of %d concurrent %s returned true, want exactly 1", n, concurrency, what)
	}
}

func testReminderPurge(t *testing.T, open Opener) {
	_, rs, _ := reminderStore(t, open)
	ctx := t.Context()
	recordReminder(t, rs, "a", t0, 1, t0.Add(-time.Hour))
	recordReminder(t, rs, "a", t0, 3, t0.Add(-48*time.Hour))
	recordReminder(t, rs, "b", t0.Add(time.Hour), 1, t0)
	recordReminder(t, rs, "c", t0.Add(48*time.Hour), 7, t0)
	purge := func(now time.Time, want int) {
		t.Helper()
		n, err := rs.PurgeReminders(ctx, now)
		if err != nil || n != want {
			t.Errorf("PurgeReminders(t0%+v) = %d, %v; want %d", now.Sub(t0), n, err, want)
		}
	}
	purge(t0.Add(enroll.ReminderRetention-time.Nanosecond), 0)
	purge(t0.Add(enroll.ReminderRetention+time.Hour), 3) // a (two stages) and b
	purge(t0.Add(enroll.ReminderRetention+time.Hour), 0)
	if recordReminder(t, rs, "c", t0.Add(48*time.Hour), 7, t0.Add(enroll.ReminderRetention+time.Hour)) {
		t.Error("a reminder younger than the retention was purged")
	}
	purge(t0.Add(enroll.ReminderRetention+48*time.Hour), 1)
}

func reminderCalls(rs enroll.ReminderStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"RecordReminder": func(ctx context.Context) error {
			_, err := rs.RecordReminder(ctx, "jdoe", t0.Add(time.Hour), 1, t0)
			return err
		},
		"PurgeReminders": func(ctx context.Context) error {
			_, err := rs.PurgeReminders(ctx, t0)
			return err
		},
	}
}

// wantRemindersUntouched checks that failing calls recorded nothing.
func wantRemindersUntouched(t *testing.T, rs enroll.ReminderStore) {
	t.Helper()
	if !recordReminder(t, rs, "jdoe", t0.Add(time.Hour), 1, t0) {
		t.Error("RecordReminder: the reminder was recorded by a failed call")
	}
}

func testReminderInvalidInput(t *testing.T, open Opener) {
	_, rs, _ := reminderStore(t, open)
	ctx := t.Context()
	expires := t0.Add(time.Hour)
	record := func(username string, expires time.Time, stage int, now time.Time) func() error {
		return func() error { _, err := rs.RecordReminder(ctx, username, expires, stage, now); return err }
	}
	wantInvalid(t, map[string]func() error{
		"empty username":      record("", expires, 1, t0),
		"username spaces":     record(" jdoe", expires, 1, t0),
		"control character":   record("jd\x00oe", expires, 1, t0),
		"zero expiry":         record("jdoe", time.Time{}, 1, t0),
		"stage 0":             record("jdoe", expires, 0, t0),
		"stage over 365 days": record("jdoe", expires, 366, t0),
		"zero now":            record("jdoe", expires, 1, time.Time{}),
		"purge zero now":      func() error { _, err := rs.PurgeReminders(ctx, time.Time{}); return err },
	})
	wantRemindersUntouched(t, rs)
}

func testReminderCancelled(t *testing.T, open Opener) {
	_, rs, _ := reminderStore(t, open)
	wantEachFails(t, cancelled(t), reminderCalls(rs), context.Canceled, "with a cancelled context")
	wantRemindersUntouched(t, rs)
}

func testReminderClosed(t *testing.T, open Opener) {
	s, rs, _ := reminderStore(t, open)
	wantClosedFails(t, s, reminderCalls(rs))
}

func testReminderReopen(t *testing.T, open Opener) {
	s, rs, dir := reminderStore(t, open)
	expires := t0.Add(5 * 24 * time.Hour)
	recordReminder(t, rs, "JDoe", expires, 7, t0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rs = openAt(t, open, dir)
	if recordReminder(t, rs, "jdoe", expires, 7, t0.Add(time.Hour)) {
		t.Error("reminder lost on reopen: it would be texted twice")
	}
	if !recordReminder(t, rs, "jdoe", expires, 3, t0.Add(2*24*time.Hour)) {
		t.Error("the next stage after reopen is not new")
	}
}
