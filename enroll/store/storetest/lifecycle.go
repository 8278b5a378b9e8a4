package storetest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// calls exercises every Store method once with valid arguments, for the
// tests where each must fail the same way.
func calls(s enroll.Store) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"PutEnrollment": func(ctx context.Context) error {
			return s.PutEnrollment(ctx, enrollment("jdoe", phone1, enroll.StateActive))
		},
		"Enrollment": func(ctx context.Context) error {
			_, err := s.Enrollment(ctx, "jdoe")
			return err
		},
		"EnrollmentByPhone": func(ctx context.Context) error {
			_, err := s.EnrollmentByPhone(ctx, phone1)
			return err
		},
		"Enrollments": func(ctx context.Context) error {
			_, err := s.Enrollments(ctx)
			return err
		},
		"DeleteEnrollment": func(ctx context.Context) error { return s.DeleteEnrollment(ctx, "jdoe") },
		"UpdateEnrollment": func(ctx context.Context) error {
			return s.UpdateEnrollment(ctx, "jdoe", func(*enroll.Enrollment) error { return nil })
		},
		"AppendAudit": func(ctx context.Context) error {
			_, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "cli", Action: "enroll", Outcome: "ok"})
			return err
		},
		"Audit": func(ctx context.Context) error {
			_, err := s.Audit(ctx, enroll.AuditFilter{})
			return err
		},
		"WalkAudit": func(ctx context.Context) error {
			return s.WalkAudit(ctx, enroll.AuditFilter{Newest: true}, func(enroll.Event) bool { return true })
		},
		"MarkMessage": func(ctx context.Context) error {
			_, err := s.MarkMessage(ctx, "SM1", t0, time.Hour)
			return err
		},
		"SetOptOut": func(ctx context.Context) error { return s.SetOptOut(ctx, phone1, true, t0) },
		"OptedOut": func(ctx context.Context) error {
			_, err := s.OptedOut(ctx, phone1)
			return err
		},
		"Allow": func(ctx context.Context) error {
			_, err := s.Allow(ctx, "k", t0, time.Hour, 1)
			return err
		},
		"Purge": func(ctx context.Context) error { return s.Purge(ctx, t0) },
		"Ping":  func(ctx context.Context) error { return s.Ping(ctx) },
		"Check": func(ctx context.Context) error { return s.Check(ctx) },
		"Backup": func(ctx context.Context) error {
			_, err := s.Backup(ctx, io.Discard)
			return err
		},
		"SpendBudget": func(ctx context.Context) error {
			_, err := s.SpendBudget(ctx, t0, time.Hour, []enroll.BudgetLimit{{Key: "k", Limit: 1}})
			return err
		},
		"RefundBudget": func(ctx context.Context) error { return s.RefundBudget(ctx, []string{"k"}, t0) },
		"BudgetHits": func(ctx context.Context) error {
			_, err := s.BudgetHits(ctx, "k", t0, time.Hour)
			return err
		},
		"EnqueueRedaction": func(ctx context.Context) error {
			_, _, err := s.EnqueueRedaction(ctx, redactSID, "code", "jdoe", t0)
			return err
		},
	}
}

// wantUntouched checks that a store on which only failing calls were made
// holds nothing.
func wantUntouched(t *testing.T, s enroll.Store) {
	t.Helper()
	ctx := t.Context()
	if list, err := s.Enrollments(ctx); err != nil || len(list) != 0 {
		t.Errorf("Enrollments = %v, %v; want none", list, err)
	}
	if evs, err := s.Audit(ctx, enroll.AuditFilter{}); err != nil || len(evs) != 0 {
		t.Errorf("Audit = %v, %v; want none", evs, err)
	}
	if out, err := s.OptedOut(ctx, phone1); err != nil || out {
		t.Errorf("OptedOut = %v, %v; want false", out, err)
	}
	if !mark(t, s, "SM1", t0, time.Hour) {
		t.Error("MarkMessage: SM1 was recorded by a failed call")
	}
	if !allow(t, s, "k", t0, time.Hour, 1) {
		t.Error("Allow: a hit was recorded by a failed call")
	}
	if due, err := s.DueMessages(ctx, t0.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("DueMessages = %v, %v; want none", due, err)
	}
}

func testInvalidInput(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	withState := func(st enroll.State) enroll.Enrollment { return enrollment("jdoe", phone1, st) }
	withPhone := func(p string) enroll.Enrollment { return enrollment("jdoe", p, enroll.StateActive) }
	bad := map[string]func() error{
		"put empty username":       func() error { return s.PutEnrollment(ctx, enrollment("", phone1, enroll.StateActive)) },
		"put blank username":       func() error { return s.PutEnrollment(ctx, enrollment(" jdoe", phone1, enroll.StateActive)) },
		"put unknown state":        func() error { return s.PutEnrollment(ctx, withState("bogus")) },
		"put zero state":           func() error { return s.PutEnrollment(ctx, withState("")) },
		"put national phone":       func() error { return s.PutEnrollment(ctx, withPhone("0612345678")) },
		"put formatted phone":      func() error { return s.PutEnrollment(ctx, withPhone("+1 201 555 0101")) },
		"put pending bad phone":    func() error { return s.PutEnrollment(ctx, enrollment("jdoe", "12", enroll.StatePending)) },
		"put active without phone": func() error { return s.PutEnrollment(ctx, withPhone("")) },
		"put frozen without phone": func() error { return s.PutEnrollment(ctx, enrollment("jdoe", "", enroll.StateFrozen)) },
		"get empty username": func() error {
			_, err := s.Enrollment(ctx, "")
			return err
		},
		"delete empty username": func() error { return s.DeleteEnrollment(ctx, "") },
		"by phone not E.164": func() error {
			_, err := s.EnrollmentByPhone(ctx, "2015550101")
			return err
		},
		"by phone empty": func() error {
			_, err := s.EnrollmentByPhone(ctx, "")
			return err
		},
		"audit without action": func() error {
			_, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "cli", Outcome: "ok"})
			return err
		},
		"audit without time": func() error {
			_, err := s.AppendAudit(ctx, enroll.Event{Actor: "cli", Action: "enroll", Outcome: "ok"})
			return err
		},
		"audit negative limit": func() error {
			_, err := s.Audit(ctx, enroll.AuditFilter{Limit: -1})
			return err
		},
		"walk audit negative limit": func() error {
			return s.WalkAudit(ctx, enroll.AuditFilter{Limit: -1}, func(enroll.Event) bool { return true })
		},
		"walk audit nil function": func() error { return s.WalkAudit(ctx, enroll.AuditFilter{}, nil) },
		"message empty SID": func() error {
			_, err := s.MarkMessage(ctx, "", t0, time.Hour)
			return err
		},
		"message zero TTL": func() error {
			_, err := s.MarkMessage(ctx, "SM1", t0, 0)
			return err
		},
		"message zero time": func() error {
			_, err := s.MarkMessage(ctx, "SM1", time.Time{}, time.Hour)
			return err
		},
		"opt-out bad phone": func() error { return s.SetOptOut(ctx, "phone", true, t0) },
		"opt-out zero time": func() error { return s.SetOptOut(ctx, phone1, true, time.Time{}) },
		"opted-out bad phone": func() error {
			_, err := s.OptedOut(ctx, "+0123")
			return err
		},
		"allow empty key": func() error {
			_, err := s.Allow(ctx, "", t0, time.Hour, 1)
			return err
		},
		"allow zero window": func() error {
			_, err := s.Allow(ctx, "k", t0, 0, 1)
			return err
		},
		"allow zero limit": func() error {
			_, err := s.Allow(ctx, "k", t0, time.Hour, 0)
			return err
		},
		"allow zero time": func() error {
			_, err := s.Allow(ctx, "k", time.Time{}, time.Hour, 1)
			return err
		},
		"purge zero time": func() error { return s.Purge(ctx, time.Time{}) },
	}
	for name, call := range bad {
		if err := call(); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	wantUntouched(t, s)
}

// wantEachFails calls every one of calls with ctx and wants an error
// matching want from each; when says how they were called.
func wantEachFails(t *testing.T, ctx context.Context, calls map[string]func(context.Context) error, want error, when string) {
	t.Helper()
	for name, call := range calls {
		if err := call(ctx); !errors.Is(err, want) {
			t.Errorf("%s %s: %v, want %v", name, when, err, want)
		}
	}
}

// wantInvalid wants every one of bad to fail with ErrInvalid.
func wantInvalid(t *testing.T, bad map[string]func() error) {
	t.Helper()
	for name, call := range bad {
		if err := call(); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// cancelled is a context that is already done.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// wantClosedFails closes s and wants every one of calls to give ErrClosed.
func wantClosedFails(t *testing.T, s enroll.Store, calls map[string]func(context.Context) error) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantEachFails(t, t.Context(), calls, enroll.ErrClosed, "after Close")
}

func testCancelled(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range calls(s) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	wantUntouched(t, s)
}

func testClosed(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range calls(s) {
		if err := call(t.Context()); !errors.Is(err, enroll.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil { // the suite's cleanup closes it again
		t.Errorf("second Close: %v, want nil", err)
	}
}

func testReopen(t *testing.T, open Opener) {
	s, dir := newStore(t, open)
	ctx := t.Context()
	alice := enrollment("Alice", phone1, enroll.StateActive)
	put(t, s, alice)
	put(t, s, enrollment("bob", phone2, enroll.StatePending))
	seqs := auditFixture(t, s)
	mark(t, s, "SM1", t0, time.Hour)
	if err := s.SetOptOut(ctx, phone3, true, t0); err != nil {
		t.Fatal(err)
	}
	allow(t, s, "k", t0, time.Hour, 1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openAt(t, open, dir)
	wantEqual(t, get(t, s, "alice"), alice)
	wantOwner(t, s, phone1, "Alice")
	wantOwner(t, s, phone2, "")
	if list, err := s.Enrollments(ctx); err != nil || len(list) != 2 {
		t.Errorf("Enrollments after reopen = %d records, %v; want 2", len(list), err)
	}
	if evs, err := s.Audit(ctx, enroll.AuditFilter{}); err != nil || len(evs) != len(seqs) {
		t.Errorf("Audit after reopen = %d events, %v; want %d", len(evs), err, len(seqs))
	}
	seq, err := s.AppendAudit(ctx, enroll.Event{Time: t0.Add(time.Hour), Actor: "cli", Action: "backup", Outcome: "ok"})
	if err != nil || seq <= seqs[len(seqs)-1] {
		t.Errorf("AppendAudit after reopen = %d, %v; want a Seq above %d", seq, err, seqs[len(seqs)-1])
	}
	if mark(t, s, "SM1", t0.Add(time.Minute), time.Hour) {
		t.Error("message ID lost on reopen")
	}
	if out, err := s.OptedOut(ctx, phone3); err != nil || !out {
		t.Errorf("opt-out lost on reopen: %v, %v", out, err)
	}
	if allow(t, s, "k", t0.Add(time.Minute), time.Hour, 1) {
		t.Error("rate-limit hit lost on reopen")
	}
}
