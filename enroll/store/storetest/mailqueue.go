package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func mailQueueStore(t *testing.T, open Opener) (enroll.Store, enroll.MailQueueStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

// queuedMail is a fixture: an activation mail due at next.
func queuedMail(to string, next time.Time) enroll.QueuedMail {
	return enroll.QueuedMail{Kind: "activation", To: to, Sealed: []byte("sealed mail"), State: enroll.MailQueued,
		NextAttempt: next, CreatedAt: t0, UpdatedAt: t0}
}

func enqueueMail(t *testing.T, mq enroll.MailQueueStore, m enroll.QueuedMail) uint64 {
	t.Helper()
	id, err := mq.EnqueueMail(t.Context(), m)
	if err != nil {
		t.Fatalf("EnqueueMail(%s to %s): %v", m.Kind, m.To, err)
	}
	return id
}

func updateMail(t *testing.T, mq enroll.MailQueueStore, id uint64, fn func(*enroll.QueuedMail)) {
	t.Helper()
	if err := mq.UpdateMail(t.Context(), id, func(m *enroll.QueuedMail) error { fn(m); return nil }); err != nil {
		t.Fatalf("UpdateMail(%d): %v", id, err)
	}
}

func wantDueMail(t *testing.T, mq enroll.MailQueueStore, now time.Time, limit int, want ...uint64) {
	t.Helper()
	got, err := mq.DueMail(t.Context(), now, limit)
	if err != nil {
		t.Errorf("DueMail(t0%+v, %d): %v", now.Sub(t0), limit, err)
		return
	}
	var ids []uint64
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("DueMail(t0%+v, %d) = %v, want %v", now.Sub(t0), limit, ids, want)
	}
}

// wantMails checks QueuedMails(0) against want, newest first.
func wantMails(t *testing.T, mq enroll.MailQueueStore, want ...enroll.QueuedMail) {
	t.Helper()
	got, err := mq.QueuedMails(t.Context(), 0)
	if err != nil {
		t.Fatalf("QueuedMails: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("QueuedMails = %d mails, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Kind != w.Kind || g.To != w.To || !bytes.Equal(g.Sealed, w.Sealed) || g.State != w.State ||
			g.Attempts != w.Attempts || !g.NextAttempt.Equal(w.NextAttempt) || g.LastError != w.LastError ||
			!g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("mail %d = %+v\nwant     %+v", i, g, w)
		}
	}
}

func testMailEnqueue(t *testing.T, open Opener) {
	_, mq, _ := mailQueueStore(t, open)
	m1 := queuedMail("jdoe@example.com", t0)
	m1.ID = enqueueMail(t, mq, m1)
	m2 := queuedMail("Admin <admin@example.com>", t0)
	m2.Kind = "not_me"
	m2.ID = enqueueMail(t, mq, m2)
	if m1.ID == 0 || m2.ID <= m1.ID {
		t.Fatalf("IDs %d, %d: want increasing from 1", m1.ID, m2.ID)
	}
	wantMails(t, mq, m2, m1)
	if got, err := mq.QueuedMails(t.Context(), 1); err != nil || len(got) != 1 || got[0].ID != m2.ID {
		t.Errorf("QueuedMails(1) = %+v, %v; want the newest", got, err)
	}
}

func testMailDue(t *testing.T, open Opener) {
	_, mq, _ := mailQueueStore(t, open)
	late := enqueueMail(t, mq, queuedMail("a@example.com", t0.Add(time.Minute)))
	early := enqueueMail(t, mq, queuedMail("b@example.com", t0))
	same := enqueueMail(t, mq, queuedMail("c@example.com", t0))
	wantDueMail(t, mq, t0.Add(-time.Nanosecond), 10)
	wantDueMail(t, mq, t0, 10, early, same)
	wantDueMail(t, mq, t0.Add(time.Minute), 10, early, same, late)
	wantDueMail(t, mq, t0.Add(time.Hour), 2, early, same)
}

// testMailUpdate: a retry moves the mail in the due index; a settled mail
// (sent or failed, its body dropped) leaves it; fn's error changes nothing.
func testMailUpdate(t *testing.T, open Opener) {
	_, mq, _ := mailQueueStore(t, open)
	m := queuedMail("jdoe@example.com", t0)
	m.ID = enqueueMail(t, mq, m)
	other := enqueueMail(t, mq, queuedMail("x@example.com", t0.Add(time.Second)))

	updateMail(t, mq, m.ID, func(c *enroll.QueuedMail) {
		c.State, c.Attempts, c.NextAttempt, c.LastError = enroll.MailRetry, 1, t0.Add(time.Hour), "mailer: dial: timeout"
	})
	m.State, m.Attempts, m.NextAttempt, m.LastError = enroll.MailRetry, 1, t0.Add(time.Hour), "mailer: dial: timeout"
	wantDueMail(t, mq, t0.Add(time.Minute), 10, other)
	wantDueMail(t, mq, t0.Add(time.Hour), 10, other, m.ID)

	err := mq.UpdateMail(t.Context(), m.ID, func(c *enroll.QueuedMail) error { c.Attempts = 99; return errBoom })
	if !errors.Is(err, errBoom) {
		t.Errorf("UpdateMail with a failing fn: %v, want errBoom", err)
	}
	if err := mq.UpdateMail(t.Context(), 999, func(*enroll.QueuedMail) error { return nil }); !isNotFound(err) {
		t.Errorf("UpdateMail(unknown): %v, want ErrNotFound", err)
	}

	updateMail(t, mq, m.ID, func(c *enroll.QueuedMail) { c.State, c.Sealed, c.LastError = enroll.MailSent, nil, "" })
	m.State, m.Sealed, m.LastError = enroll.MailSent, nil, ""
	wantDueMail(t, mq, t0.Add(24*time.Hour), 10, other)
	updateMail(t, mq, other, func(c *enroll.QueuedMail) { c.State, c.Sealed = enroll.MailFailed, nil })
	wantDueMail(t, mq, t0.Add(24*time.Hour), 10)
	mails, err := mq.QueuedMails(t.Context(), 0)
	if err != nil || len(mails) != 2 || mails[1].State != enroll.MailSent || mails[0].State != enroll.MailFailed {
		t.Fatalf("QueuedMails = %+v, %v", mails, err)
	}
	wantMails(t, mq, mails[0], m)
}

// testMailUpdateConcurrent races claims (attempt counted, next try moved)
// with failing writes: every claim counts once, one due entry remains.
func testMailUpdateConcurrent(t *testing.T, open Opener) {
	_, mq, _ := mailQueueStore(t, open)
	m := queuedMail("jdoe@example.com", t0)
	m.ID = enqueueMail(t, mq, m)
	fail := func(ctx context.Context) error {
		return mq.UpdateMail(ctx, m.ID, func(c *enroll.QueuedMail) error { c.Attempts += 1000; return errBoom })
	}
	whileFailing(t, fail, func(int) {
		if err := mq.UpdateMail(t.Context(), m.ID, func(c *enroll.QueuedMail) error {
			c.Attempts++
			c.State, c.NextAttempt = enroll.MailRetry, t0.Add(time.Duration(c.Attempts)*time.Minute)
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	m.Attempts, m.State, m.NextAttempt = concurrency, enroll.MailRetry, t0.Add(concurrency*time.Minute)
	wantMails(t, mq, m)
	wantDueMail(t, mq, m.NextAttempt.Add(-time.Nanosecond), 10)
	wantDueMail(t, mq, m.NextAttempt, 10, m.ID)
}

func mailCalls(mq enroll.MailQueueStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"EnqueueMail": func(ctx context.Context) error {
			_, err := mq.EnqueueMail(ctx, queuedMail("jdoe@example.com", t0))
			return err
		},
		"DueMail": func(ctx context.Context) error { _, err := mq.DueMail(ctx, t0, 10); return err },
		"UpdateMail": func(ctx context.Context) error {
			return mq.UpdateMail(ctx, 1, func(*enroll.QueuedMail) error { return nil })
		},
		"QueuedMails": func(ctx context.Context) error { _, err := mq.QueuedMails(ctx, 0); return err },
	}
}

func testMailInvalidInput(t *testing.T, open Opener) {
	_, mq, _ := mailQueueStore(t, open)
	id := enqueueMail(t, mq, queuedMail("jdoe@example.com", t0))
	bad := map[string]func(*enroll.QueuedMail){
		"no kind":        func(m *enroll.QueuedMail) { m.Kind = "" },
		"bad recipient":  func(m *enroll.QueuedMail) { m.To = "not an address" },
		"unknown state":  func(m *enroll.QueuedMail) { m.State = "lost" },
		"pending, empty": func(m *enroll.QueuedMail) { m.Sealed = nil },
		"negative tries": func(m *enroll.QueuedMail) { m.Attempts = -1 },
		"no creation":    func(m *enroll.QueuedMail) { m.CreatedAt = time.Time{} },
		"no next try":    func(m *enroll.QueuedMail) { m.NextAttempt = time.Time{} },
		"huge body":      func(m *enroll.QueuedMail) { m.Sealed = make([]byte, 2<<20) },
	}
	for name, change := range bad {
		m := queuedMail("jdoe@example.com", t0)
		change(&m)
		if _, err := mq.EnqueueMail(t.Context(), m); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("EnqueueMail(%s): %v, want ErrInvalid", name, err)
		}
		if err := mq.UpdateMail(t.Context(), id, func(c *enroll.QueuedMail) error { change(c); return nil }); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("UpdateMail(%s): %v, want ErrInvalid", name, err)
		}
	}
	if err := mq.UpdateMail(t.Context(), id, func(c *enroll.QueuedMail) error { c.ID++; return nil }); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("UpdateMail changing the ID: %v, want ErrInvalid", err)
	}
	if _, err := mq.DueMail(t.Context(), time.Time{}, 10); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("DueMail(zero now): %v, want ErrInvalid", err)
	}
	if _, err := mq.DueMail(t.Context(), t0, 0); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("DueMail(limit 0): %v, want ErrInvalid", err)
	}
	if _, err := mq.QueuedMails(t.Context(), -1); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("QueuedMails(-1): %v, want ErrInvalid", err)
	}
	wantMails(t, mq, enroll.QueuedMail{ID: id, Kind: "activation", To: "jdoe@example.com", Sealed: []byte("sealed mail"),
		State: enroll.MailQueued, NextAttempt: t0, CreatedAt: t0, UpdatedAt: t0})
}

func testMailCancelled(t *testing.T, open Opener) {
	_, mq, _ := mailQueueStore(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range mailCalls(mq) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	wantMails(t, mq)
}

func testMailClosed(t *testing.T, open Opener) {
	s, mq, _ := mailQueueStore(t, open)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range mailCalls(mq) {
		if err := call(t.Context()); !errors.Is(err, enroll.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// testMailReopen: queued mail survives a restart, still due, and IDs go on
// increasing.
func testMailReopen(t *testing.T, open Opener) {
	s, mq, dir := mailQueueStore(t, open)
	m1 := queuedMail("jdoe@example.com", t0)
	m1.ID = enqueueMail(t, mq, m1)
	m2 := queuedMail("admin@example.com", t0)
	m2.ID = enqueueMail(t, mq, m2)
	updateMail(t, mq, m2.ID, func(c *enroll.QueuedMail) {
		c.State, c.Attempts, c.NextAttempt = enroll.MailRetry, 1, t0.Add(time.Hour)
	})
	m2.State, m2.Attempts, m2.NextAttempt = enroll.MailRetry, 1, t0.Add(time.Hour)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mq = openAt(t, open, dir)
	wantMails(t, mq, m2, m1)
	wantDueMail(t, mq, t0, 10, m1.ID)
	wantDueMail(t, mq, t0.Add(time.Hour), 10, m1.ID, m2.ID)
	if id := enqueueMail(t, mq, queuedMail("x@example.com", t0)); id <= m2.ID {
		t.Errorf("EnqueueMail after reopen = ID %d, want one above %d", id, m2.ID)
	}
}
