package lockout_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
)

func TestLockoutAlertOncePerEvent(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	e.enroll("zlefevre", "+33612345678", "fr", enroll.StateActive)
	w := e.watch()
	e.poll(w) // first poll: a full sweep, nothing locked
	if c := e.scan.lastCall(); !c.full || c.cursor != "" {
		t.Errorf("first scan = %+v, want a full sweep without cursor", c)
	}

	lockedAt := e.clock.Advance(10 * time.Second).Add(-3 * time.Second)
	e.scan.lock("jdoe", lockedAt)
	e.scan.lock("zlefevre", lockedAt)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if c := e.scan.lastCall(); c.full || c.cursor != "0" {
		t.Errorf("second scan = %+v, want incremental from the stored cursor", c)
	}
	if got, want := e.texts("jdoe"), []string{e.alertText("en", "jdoe", lockedAt)}; !slices.Equal(got, want) {
		t.Fatalf("texts to jdoe = %q, want %q", got, want)
	}
	if !strings.Contains(e.texts("jdoe")[0], "at 12:42.") {
		t.Errorf("the time is not HH:MM in the server's zone: %q", e.texts("jdoe")[0])
	}
	if got, want := e.texts("zlefevre"), []string{e.alertText("fr", "zlefevre", lockedAt)}; !slices.Equal(got, want) {
		t.Fatalf("texts to zlefevre = %q, want %q (in French)", got, want)
	}
	if n := e.notified.Load(); n < 1 {
		t.Error("the outbox worker was not woken")
	}
	e.wantAudit("lockout_alert", "jdoe", "ok", 1)
	if ev := e.audit("lockout_alert", "jdoe")[0]; ev.Phone != "+12015550121" || ev.Actor != "system" {
		t.Errorf("audit = %+v", ev)
	}

	// Still locked: later polls, and a full sweep, do not text again.
	for range 3 {
		e.clock.Advance(30 * time.Second)
		e.poll(w)
	}
	e.clock.Advance(time.Hour)
	e.poll(w)
	if c := e.scan.lastCall(); !c.full {
		t.Errorf("scan after an hour = %+v, want a full sweep", c)
	}
	if n := len(e.texts("jdoe")); n != 1 {
		t.Fatalf("%d texts to jdoe after more polls, want 1", n)
	}
	if n := len(e.mailer.mails()); n != 0 {
		t.Errorf("%d admin mails for two lockouts, want none", n)
	}
}

// TestLockoutDefaultZoneIsLocal: without Location, {time} is the server's
// local time.
func TestLockoutDefaultZoneIsLocal(t *testing.T) {
	e := newWatchEnv(t)
	e.opt.Location = nil
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	lockedAt := e.clock.Now().Add(-time.Minute)
	e.scan.lock("jdoe", lockedAt)
	e.poll(e.watch())
	want := "locked at " + lockedAt.In(time.Local).Format("15:04") + "."
	if got := e.texts("jdoe"); len(got) != 1 || !strings.Contains(got[0], want) {
		t.Fatalf("texts = %q, want one with %q", got, want)
	}
}

// TestLockoutRestartNoDuplicate: a new watch on the reopened data file
// resumes from the stored cursor and does not text again, even when the
// scanner reports the lockout again or a full sweep runs.
func TestLockoutRestartNoDuplicate(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	e.poll(w)
	lockedAt := e.clock.Now()
	e.scan.lock("jdoe", lockedAt)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := len(e.texts("jdoe")); n != 1 {
		t.Fatalf("%d texts before the restart, want 1", n)
	}

	e.reopen()
	e.scan.again = true // a scanner may report an event again
	w = e.watch()
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if c := e.scan.lastCall(); c.full || c.cursor != "1" {
		t.Errorf("first scan after restart = %+v, want incremental from cursor 1", c)
	}
	e.reopen()
	if err := e.store.SetMonitorCursor(t.Context(), "lockout", nil); err != nil {
		t.Fatal(err)
	}
	w = e.watch()
	e.poll(w)
	if c := e.scan.lastCall(); !c.full {
		t.Errorf("scan without cursor = %+v, want a full sweep", c)
	}
	if n := len(e.texts("jdoe")); n != 1 {
		t.Fatalf("%d texts after restarts, want 1", n)
	}
	e.wantAudit("lockout_alert", "jdoe", "ok", 1)
}

// TestLockoutRelockIsNewEvent: the event is (account, lockout time): the
// same account locked again, after an unlock or an expired lockout, is
// texted again; an expired lockout itself is not reported by the scanner
// and so never texted.
func TestLockoutRelockIsNewEvent(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	first := e.clock.Now().Add(-time.Minute)
	e.scan.lock("jdoe", first)
	e.poll(w)
	e.scan.unlock("jdoe") // expired or unlocked: no longer reported
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	second := e.clock.Advance(20 * time.Minute)
	e.scan.lock("jdoe", second)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	want := []string{e.alertText("en", "jdoe", first), e.alertText("en", "jdoe", second)}
	if got := e.texts("jdoe"); !slices.Equal(got, want) {
		t.Fatalf("texts = %q, want %q", got, want)
	}
}

func TestLockoutWhoIsNotTexted(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("frozen", "+12015550122", "en", enroll.StateFrozen)
	e.enroll("pending", "", "en", enroll.StatePending)
	e.enroll("gone", "+12015550123", "en", enroll.StateDeactivated)
	e.enroll("stopped", "+12015550124", "en", enroll.StateActive)
	if err := e.store.SetOptOut(t.Context(), "+12015550124", true, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.enroll("old", "+12015550125", "en", enroll.StateActive)
	w := e.watch()
	now := e.clock.Now()
	for _, u := range []string{"stranger", "frozen", "pending", "gone", "stopped"} {
		e.scan.lock(u, now.Add(-time.Minute))
	}
	e.scan.lock("old", now.Add(-2*time.Hour)) // locked before the watch ran: not news
	e.poll(w)
	if n := e.allTexts(); n != 0 {
		t.Fatalf("%d messages queued, want none", n)
	}
	e.wantAudit("lockout", "stranger", "not_enrolled", 1)
	e.wantAudit("lockout", "frozen", "not_active", 1)
	e.wantAudit("lockout", "pending", "not_active", 1)
	e.wantAudit("lockout", "gone", "not_active", 1)
	e.wantAudit("lockout_alert", "stopped", "opted_out", 1)
	e.wantAudit("lockout", "old", "stale", 1)
	e.poll(w)
	if n := len(e.audit("", "")); n != 6 {
		t.Errorf("%d audit events after a second poll, want the same 6", n)
	}
}

// TestLockoutClockSkew: a lockout time ahead of the gateway's clock is
// news, and texted with the directory's time.
func TestLockoutClockSkew(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	ahead := e.clock.Now().Add(3 * time.Minute)
	e.scan.lock("jdoe", ahead)
	e.poll(e.watch())
	if got, want := e.texts("jdoe"), []string{e.alertText("en", "jdoe", ahead)}; !slices.Equal(got, want) {
		t.Fatalf("texts = %q, want %q", got, want)
	}
}

// TestLockoutScanErrorRetried: a failed scan changes nothing and is tried
// again; Run keeps going (no crash, no busy loop) until its context ends.
func TestLockoutScanErrorRetried(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	e.scan.lock("jdoe", e.clock.Now())
	e.scan.failNext(1)
	if err := w.Poll(t.Context()); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Poll with a failing scan = %v, want ErrUnavailable", err)
	}
	if n := e.allTexts(); n != 0 {
		t.Fatalf("%d texts after a failed scan", n)
	}
	cursor, err := e.store.MonitorCursor(t.Context(), "lockout")
	if err != nil || cursor != nil {
		t.Fatalf("cursor after a failed scan = %q, %v; want none", cursor, err)
	}

	e.cfg.PollInterval = 20 * time.Millisecond
	w = e.watch()
	e.scan.failNext(3)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	testkit.Eventually(t, "the alert after three failed scans", func() bool {
		msgs, err := e.store.Messages(t.Context(), enroll.OutboxFilter{Username: "jdoe"})
		return err == nil && len(msgs) == 1
	})
	if err := w.Run(t.Context()); err == nil {
		t.Error("a second Run at the same time did not fail")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil when its context ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	e.scan.mu.Lock()
	calls := len(e.scan.calls)
	e.scan.mu.Unlock()
	if calls < 5 {
		t.Errorf("%d scans, want the failures retried", calls)
	}

	e.cfg.Enabled = false
	if err := e.watch().Run(t.Context()); err != nil {
		t.Errorf("Run with lockout.enabled off = %v, want nil at once", err)
	}
}

// failingRecords fails RecordLockout for one username, once.
type failingRecords struct {
	*bolt.Store
	fail atomic.Pointer[string]
}

func (f *failingRecords) RecordLockout(ctx context.Context, username string, lockedAt, now time.Time) (bool, error) {
	if p := f.fail.Load(); p != nil && *p == username {
		f.fail.Store(nil)
		return false, errors.New("disk full")
	}
	return f.Store.RecordLockout(ctx, username, lockedAt, now)
}

// TestLockoutStoreErrorKeepsCursor: when an event cannot be recorded, the
// cursor stays, the events recorded before it are still texted, and the
// next poll texts the rest, each once.
func TestLockoutStoreErrorKeepsCursor(t *testing.T) {
	e := newWatchEnv(t)
	store := &failingRecords{Store: e.store}
	w := e.watchOn(store, nil)
	e.poll(w)
	for _, u := range []string{"a", "b", "c"} {
		e.enroll(u, "+1201555013"+string(u[0]-'a'+'1'), "en", enroll.StateActive)
		e.scan.lock(u, e.clock.Now())
	}
	bad := "b"
	store.fail.Store(&bad)
	if err := w.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Poll = %v, want the store error", err)
	}
	if got := []int{len(e.texts("a")), len(e.texts("b")), len(e.texts("c"))}; !slices.Equal(got, []int{1, 0, 0}) {
		t.Fatalf("texts after the failure = %v, want [1 0 0]", got)
	}
	if cursor, _ := e.store.MonitorCursor(t.Context(), "lockout"); string(cursor) != "0" {
		t.Errorf("cursor = %q, want the one before the failed poll", cursor)
	}
	e.poll(w)
	if got := []int{len(e.texts("a")), len(e.texts("b")), len(e.texts("c"))}; !slices.Equal(got, []int{1, 1, 1}) {
		t.Fatalf("texts after the retry = %v, want [1 1 1]", got)
	}
}

// TestLockoutPurgesOldEvents: the full sweep forgets events past the
// retention, which are never news again.
func TestLockoutPurgesOldEvents(t *testing.T) {
	e := newWatchEnv(t)
	e.opt.MaxAge = 365 * 24 * time.Hour
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	e.scan.lock("jdoe", e.clock.Now())
	e.poll(w)
	e.clock.Advance(enroll.LockoutRetention + time.Hour)
	e.poll(w) // a full sweep: the event is purged, and too old to be news
	if n, err := e.store.PurgeLockouts(t.Context(), e.clock.Now()); err != nil || n != 0 {
		t.Errorf("PurgeLockouts after the watch's sweep = %d, %v; want 0 left", n, err)
	}
	if n := len(e.texts("jdoe")); n != 1 {
		t.Errorf("%d texts, want 1", n)
	}
}
