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

// The self-expiry schedule of SMS passwords (enroll.SMSPasswordStore).

func smsStore(t *testing.T, open Opener) (enroll.Store, enroll.SMSPasswordStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

// smsCheck is a fixture: reset at t0+reset, due ten minutes later.
func smsCheck(username string, reset time.Duration) enroll.SMSPasswordCheck {
	at := t0.Add(reset)
	return enroll.SMSPasswordCheck{Username: username, DN: "CN=" + username + ",OU=Staff,DC=example,DC=test",
		ResetAt: at, Due: at.Add(10 * time.Minute)}
}

func schedule(t *testing.T, ss enroll.SMSPasswordStore, c enroll.SMSPasswordCheck) {
	t.Helper()
	if err := ss.ScheduleSMSPasswordCheck(t.Context(), c); err != nil {
		t.Fatalf("ScheduleSMSPasswordCheck(%s): %v", c.Username, err)
	}
}

// wantCheck wants the entry of username to be want; a zero want means none.
func wantCheck(t *testing.T, ss enroll.SMSPasswordStore, username string, want enroll.SMSPasswordCheck) {
	t.Helper()
	got, err := ss.SMSPasswordCheck(t.Context(), username)
	switch {
	case want.Username == "" && !isNotFound(err):
		t.Errorf("SMSPasswordCheck(%s) = %+v, %v; want ErrNotFound", username, got, err)
	case want.Username == "":
	case err != nil:
		t.Errorf("SMSPasswordCheck(%s): %v", username, err)
	case got.Username != want.Username || got.DN != want.DN || !got.ResetAt.Equal(want.ResetAt) ||
		!got.Due.Equal(want.Due) || got.Attempts != want.Attempts:
		t.Errorf("SMSPasswordCheck(%s) = %+v\nwant %+v", username, got, want)
	}
}

// wantDue wants DueSMSPasswordChecks(now, limit) to list usernames, in order.
func wantDueChecks(t *testing.T, ss enroll.SMSPasswordStore, now time.Time, limit int, usernames ...string) {
	t.Helper()
	got, err := ss.DueSMSPasswordChecks(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueSMSPasswordChecks: %v", err)
	}
	names := make([]string, len(got))
	for i, c := range got {
		names[i] = c.Username
	}
	if strings.Join(names, ",") != strings.Join(usernames, ",") {
		t.Errorf("DueSMSPasswordChecks(t0%+v, %d) = %v, want %v", now.Sub(t0), limit, names, usernames)
	}
}

func testSMSCheckScheduleReplace(t *testing.T, open Opener) {
	_, ss, _ := smsStore(t, open)
	wantCheck(t, ss, "jdoe", enroll.SMSPasswordCheck{})
	first := smsCheck("JDoe", 0)
	schedule(t, ss, first)
	wantCheck(t, ss, "jdoe", first) // any case
	wantDueChecks(t, ss, first.Due, 0, "JDoe")

	// A new reset replaces the entry: the old due time no longer fires.
	second := smsCheck("jdoe", 5*time.Minute)
	schedule(t, ss, second)
	wantCheck(t, ss, "JDOE", second)
	wantDueChecks(t, ss, first.Due, 0)
	wantDueChecks(t, ss, second.Due, 0, "jdoe")
	if ok, err := ss.FinishSMSPasswordCheck(t.Context(), "jdoe", first.ResetAt); err != nil || ok {
		t.Errorf("FinishSMSPasswordCheck(the replaced reset) = %v, %v; want false: the newer entry stays", ok, err)
	}
	wantCheck(t, ss, "jdoe", second)
}

func testSMSCheckDue(t *testing.T, open Opener) {
	_, ss, _ := smsStore(t, open)
	schedule(t, ss, smsCheck("carol", 2*time.Minute))
	schedule(t, ss, smsCheck("alice", 0))
	schedule(t, ss, smsCheck("bob", time.Minute))
	schedule(t, ss, smsCheck("early", -24*time.Hour))
	wantDueChecks(t, ss, t0, 0, "early")
	wantDueChecks(t, ss, t0.Add(10*time.Minute-time.Nanosecond), 0, "early")
	wantDueChecks(t, ss, t0.Add(10*time.Minute), 0, "early", "alice") // due at exactly now counts
	wantDueChecks(t, ss, t0.Add(time.Hour), 0, "early", "alice", "bob", "carol")
	wantDueChecks(t, ss, t0.Add(time.Hour), 2, "early", "alice")
}

func testSMSCheckRescheduleFinish(t *testing.T, open Opener) {
	_, ss, _ := smsStore(t, open)
	ctx := t.Context()
	c := smsCheck("jdoe", 0)
	schedule(t, ss, c)

	later := c
	later.Due, later.Attempts = c.Due.Add(time.Hour), 1
	if ok, err := ss.RescheduleSMSPasswordCheck(ctx, later); err != nil || !ok {
		t.Fatalf("RescheduleSMSPasswordCheck = %v, %v; want true", ok, err)
	}
	wantCheck(t, ss, "jdoe", later)
	wantDueChecks(t, ss, c.Due, 0)
	wantDueChecks(t, ss, later.Due, 0, "jdoe")

	stale := later
	stale.ResetAt, stale.Due, stale.Attempts = c.ResetAt.Add(-time.Second), c.Due, 5
	if ok, err := ss.RescheduleSMSPasswordCheck(ctx, stale); err != nil || ok {
		t.Errorf("RescheduleSMSPasswordCheck(another reset) = %v, %v; want false", ok, err)
	}
	if ok, err := ss.RescheduleSMSPasswordCheck(ctx, smsCheck("nobody", 0)); err != nil || ok {
		t.Errorf("RescheduleSMSPasswordCheck(no entry) = %v, %v; want false", ok, err)
	}
	wantCheck(t, ss, "jdoe", later)

	if ok, err := ss.FinishSMSPasswordCheck(ctx, "JDOE", c.ResetAt.In(time.FixedZone("CET", 3600))); err != nil || !ok {
		t.Fatalf("FinishSMSPasswordCheck = %v, %v; want true", ok, err)
	}
	wantCheck(t, ss, "jdoe", enroll.SMSPasswordCheck{})
	wantDueChecks(t, ss, t0.Add(48*time.Hour), 0)
	if ok, err := ss.FinishSMSPasswordCheck(ctx, "jdoe", c.ResetAt); err != nil || ok {
		t.Errorf("second FinishSMSPasswordCheck = %v, %v; want false", ok, err)
	}
}

func testSMSCheckConcurrent(t *testing.T, open Opener) {
	_, ss, _ := smsStore(t, open)
	c := smsCheck("jdoe", 0)
	schedule(t, ss, c)
	var finished atomic.Int32
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			if i%5 == 0 { // reschedules racing the finishes change nothing about who wins
				r := c
				r.Due = c.Due.Add(time.Duration(i) * time.Second)
				if _, err := ss.RescheduleSMSPasswordCheck(t.Context(), r); err != nil {
					t.Error(err)
				}
				return
			}
			ok, err := ss.FinishSMSPasswordCheck(t.Context(), "jdoe", c.ResetAt)
			if err != nil {
				t.Error(err)
			}
			if ok {
				finished.Add(1)
			}
		})
	}
	wg.Wait()
	if n := finished.Load(); n != 1 {
		t.Errorf("%d concurrent FinishSMSPasswordCheck calls returned true, want exactly 1", n)
	}
	wantCheck(t, ss, "jdoe", enroll.SMSPasswordCheck{})
	wantDueChecks(t, ss, t0.Add(48*time.Hour), 0)
}

func smsCheckCalls(ss enroll.SMSPasswordStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"ScheduleSMSPasswordCheck": func(ctx context.Context) error {
			return ss.ScheduleSMSPasswordCheck(ctx, smsCheck("jdoe", 0))
		},
		"SMSPasswordCheck": func(ctx context.Context) error {
			_, err := ss.SMSPasswordCheck(ctx, "jdoe")
			return err
		},
		"DueSMSPasswordChecks": func(ctx context.Context) error {
			_, err := ss.DueSMSPasswordChecks(ctx, t0, 0)
			return err
		},
		"RescheduleSMSPasswordCheck": func(ctx context.Context) error {
			_, err := ss.RescheduleSMSPasswordCheck(ctx, smsCheck("jdoe", 0))
			return err
		},
		"FinishSMSPasswordCheck": func(ctx context.Context) error {
			_, err := ss.FinishSMSPasswordCheck(ctx, "jdoe", t0)
			return err
		},
	}
}

func testSMSCheckInvalidInput(t *testing.T, open Opener) {
	_, ss, _ := smsStore(t, open)
	ctx := t.Context()
	with := func(fn func(*enroll.SMSPasswordCheck)) enroll.SMSPasswordCheck {
		c := smsCheck("jdoe", 0)
		fn(&c)
		return c
	}
	bad := map[string]enroll.SMSPasswordCheck{
		"empty username":    with(func(c *enroll.SMSPasswordCheck) { c.Username = "" }),
		"username spaces":   with(func(c *enroll.SMSPasswordCheck) { c.Username = "jdoe " }),
		"control character": with(func(c *enroll.SMSPasswordCheck) { c.Username = "jd\x00oe" }),
		"empty DN":          with(func(c *enroll.SMSPasswordCheck) { c.DN = "" }),
		"huge DN":           with(func(c *enroll.SMSPasswordCheck) { c.DN = strings.Repeat("x", 8192) }),
		"zero reset time":   with(func(c *enroll.SMSPasswordCheck) { c.ResetAt = time.Time{} }),
		"zero due time":     with(func(c *enroll.SMSPasswordCheck) { c.Due = time.Time{} }),
		"negative attempts": with(func(c *enroll.SMSPasswordCheck) { c.Attempts = -1 }),
	}
	calls := map[string]func() error{
		"get empty username":    func() error { _, err := ss.SMSPasswordCheck(ctx, ""); return err },
		"due zero now":          func() error { _, err := ss.DueSMSPasswordChecks(ctx, time.Time{}, 0); return err },
		"due negative limit":    func() error { _, err := ss.DueSMSPasswordChecks(ctx, t0, -1); return err },
		"finish empty username": func() error { _, err := ss.FinishSMSPasswordCheck(ctx, "", t0); return err },
		"finish zero reset":     func() error { _, err := ss.FinishSMSPasswordCheck(ctx, "jdoe", time.Time{}); return err },
	}
	for name, c := range bad {
		calls["schedule "+name] = func() error { return ss.ScheduleSMSPasswordCheck(ctx, c) }
		calls["reschedule "+name] = func() error { _, err := ss.RescheduleSMSPasswordCheck(ctx, c); return err }
	}
	wantInvalid(t, calls)
	wantDueChecks(t, ss, t0.Add(48*time.Hour), 0)
}

func testSMSCheckCancelled(t *testing.T, open Opener) {
	_, ss, _ := smsStore(t, open)
	wantEachFails(t, cancelled(t), smsCheckCalls(ss), context.Canceled, "with a cancelled context")
	wantCheck(t, ss, "jdoe", enroll.SMSPasswordCheck{})
}

func testSMSCheckClosed(t *testing.T, open Opener) {
	s, ss, _ := smsStore(t, open)
	wantClosedFails(t, s, smsCheckCalls(ss))
}

func testSMSCheckReopen(t *testing.T, open Opener) {
	s, ss, dir := smsStore(t, open)
	c := smsCheck("JDoe", 0)
	c.Attempts = 2
	schedule(t, ss, c)
	schedule(t, ss, smsCheck("asmith", time.Minute))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ss = openAt(t, open, dir)
	wantCheck(t, ss, "jdoe", c)
	wantDueChecks(t, ss, t0.Add(time.Hour), 0, "JDoe", "asmith")
}
