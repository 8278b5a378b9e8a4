package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// newStore opens a store on a fresh prefix of the test cluster.
func newStore(t *testing.T) (*etcd.Store, *clientv3.Client) {
	t.Helper()
	cli, base := cluster(t)
	s, err := etcd.New(t.Context(), cli, etcd.Options{Prefix: base + "store/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cli
}

func sms(to string) enroll.OutboundMessage {
	return enroll.OutboundMessage{Kind: enroll.KindSMS, To: to, Sealed: []byte("sealed"), Language: "en",
		Purpose: "lockout", Priority: enroll.PriorityHigh, Status: enroll.StatusQueued,
		NextAttempt: t0, CreatedAt: t0, UpdatedAt: t0}
}

// TestFencedWrites: writes under a fence whose election key still exists
// at its revision go through; once the key is deleted (the leader was
// deposed), or re-created by a new term, every write fails with ErrFenced
// and writes nothing.
func TestFencedWrites(t *testing.T) {
	s, cli := newStore(t)
	ctx := t.Context()
	key := s.Prefix() + "election/leader-1"
	put, err := cli.Put(ctx, key, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	fenced := enroll.WithFence(ctx, enroll.Fence{Key: key, Revision: put.Header.Revision})

	// Under a live fence: everything goes through.
	id, err := s.EnqueueMessage(fenced, sms("+12015550101"))
	if err != nil {
		t.Fatalf("EnqueueMessage under a live fence: %v", err)
	}
	if err := s.UpdateMessage(fenced, id, func(m *enroll.OutboundMessage) error { m.Attempts = 1; return nil }); err != nil {
		t.Fatalf("UpdateMessage under a live fence: %v", err)
	}
	if ok, err := s.AcquireLease(fenced, "lockout", "node-a", t0, time.Minute); err != nil || !ok {
		t.Fatalf("AcquireLease under a live fence = %v, %v", ok, err)
	}
	if first, err := s.RecordLockout(fenced, "jdoe", t0, t0); err != nil || !first {
		t.Fatalf("RecordLockout under a live fence = %v, %v", first, err)
	}
	if _, err := s.AppendAudit(fenced, enroll.Event{Time: t0, Actor: "system", Action: "lockout", Outcome: "ok"}); err != nil {
		t.Fatalf("AppendAudit under a live fence: %v", err)
	}
	if err := s.ReleaseLease(fenced, "lockout", "node-a"); err != nil {
		t.Fatalf("ReleaseLease under a live fence: %v", err)
	}

	for _, depose := range []struct {
		what string
		fn   func() error
	}{
		{"deleted", func() error { _, err := cli.Delete(ctx, key); return err }},
		{"re-created by a new term", func() error { _, err := cli.Put(ctx, key, "node-b"); return err }},
	} {
		if err := depose.fn(); err != nil {
			t.Fatal(err)
		}
		wantFenced(t, s, fenced, id, depose.what, t0.Add(time.Duration(len(depose.what))*time.Minute))
	}
}

// wantFenced checks that every write under fenced fails with ErrFenced and
// leaves the store as it was (checked without the fence).
// at tells the rounds' lockout events apart.
func wantFenced(t *testing.T, s *etcd.Store, fenced context.Context, id uint64, what string, at time.Time) {
	t.Helper()
	ctx := t.Context()
	before, err := s.Messages(ctx, enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	audit, err := s.Audit(ctx, enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"EnqueueMessage": func() error { _, err := s.EnqueueMessage(fenced, sms("+12015550102")); return err },
		"UpdateMessage": func() error {
			return s.UpdateMessage(fenced, id, func(m *enroll.OutboundMessage) error { m.Attempts = 2; return nil })
		},
		"AcquireLease": func() error { _, err := s.AcquireLease(fenced, "lockout", "node-a", t0, time.Minute); return err },
		"RecordLockout": func() error {
			_, err := s.RecordLockout(fenced, "asmith", at, at)
			return err
		},
		"AppendAudit": func() error {
			_, err := s.AppendAudit(fenced, enroll.Event{Time: t0, Actor: "system", Action: "lockout", Outcome: "ok"})
			return err
		},
		"MarkMessage": func() error { _, err := s.MarkMessage(fenced, what, t0, time.Hour); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, enroll.ErrFenced) {
			t.Errorf("%s after the election key was %s: %v, want ErrFenced", name, what, err)
		}
	}
	after, err := s.Messages(ctx, enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || after[0].Attempts != before[0].Attempts {
		t.Errorf("fenced outbox writes changed it: %+v, was %+v", after, before)
	}
	if evs, err := s.Audit(ctx, enroll.AuditFilter{}); err != nil || len(evs) != len(audit) {
		t.Errorf("fenced AppendAudit wrote: %d events, %v; want %d", len(evs), err, len(audit))
	}
	if ok, err := s.AcquireLease(ctx, "lockout", "node-b", t0, time.Minute); err != nil || !ok {
		t.Errorf("the fenced AcquireLease took the lease: node-b gets %v, %v", ok, err)
	}
	if err := s.ReleaseLease(ctx, "lockout", "node-b"); err != nil {
		t.Fatal(err)
	}
	if first, err := s.RecordLockout(ctx, "asmith", at, at); err != nil || !first {
		t.Errorf("the fenced RecordLockout wrote its event: unfenced RecordLockout = %v, %v", first, err)
	}
	if first, err := s.MarkMessage(ctx, what, t0, time.Hour); err != nil || !first {
		t.Errorf("the fenced MarkMessage wrote: unfenced MarkMessage = %v, %v", first, err)
	}
}

// TestUnavailable: a cluster that does not answer gives ErrUnavailable
// (which is enroll.ErrUnavailable too) once the request timeout has
// passed, not a hang.
func TestUnavailable(t *testing.T) {
	_, err := etcd.Open(t.Context(), etcd.Config{Endpoints: []string{"127.0.0.1:1"},
		DialTimeout: 200 * time.Millisecond, RequestTimeout: 500 * time.Millisecond})
	if !errors.Is(err, etcd.ErrUnavailable) {
		t.Errorf("Open of an unreachable cluster: %v, want ErrUnavailable", err)
	}
	if !errors.Is(err, enroll.ErrUnavailable) {
		t.Errorf("Open of an unreachable cluster: %v, want the backend-neutral enroll.ErrUnavailable too", err)
	}
}

// TestHealth: the health report names the backend and the members, all
// reachable, one the leader.
func TestHealth(t *testing.T) {
	s, _ := newStore(t)
	h, err := s.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, m := range h.Members {
		if m.Leader {
			leaders++
		}
		if !m.Reachable {
			t.Errorf("member %s unreachable: %s", m.Name, m.Error)
		}
	}
	if h.Backend != "etcd" || len(h.Members) == 0 || h.Reachable != len(h.Members) || leaders != 1 {
		t.Errorf("Health = %+v; want backend etcd, every member reachable, one leader", h)
	}
}

// TestLeaseEndsWithACrashedProcess: a job lease held by a process that
// dies without closing its store (its client just stops) ends when the
// store's etcd session expires, without anyone releasing it.
func TestLeaseEndsWithACrashedProcess(t *testing.T) {
	s, cli := newStore(t)
	dead, err := clientv3.New(clientv3.Config{Endpoints: cli.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	crashed, err := etcd.New(t.Context(), dead, etcd.Options{Prefix: s.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := crashed.AcquireLease(t.Context(), "lockout", "dead-node", t0, time.Hour); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	if ok, err := s.AcquireLease(t.Context(), "lockout", "live-node", t0, time.Hour); err != nil || ok {
		t.Fatalf("AcquireLease while the other holds it = %v, %v; want refused", ok, err)
	}
	dead.Close() // the process dies: no Close, no keep-alive
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		ok, err := s.AcquireLease(ctx, "lockout", "live-node", t0, time.Hour)
		if err != nil {
			t.Fatalf("the dead process's lease did not end with its etcd session: %v", err)
		}
		if ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestOpenAuth: Open reaches a cluster that wants a user, and the store
// works there; a wrong password is refused. (TLS: when etcdlab has it.)
func TestOpenAuth(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Members: 1, Auth: true})
	s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: c.Endpoints(), Prefix: "/replyreset/",
		TLS: c.TLSConfig(), Username: c.Username, Password: c.Password})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if first, err := s.MarkMessage(t.Context(), "SM1", t0, time.Hour); err != nil || !first {
		t.Errorf("MarkMessage as a user = %v, %v", first, err)
	}
	if _, err := etcd.Open(t.Context(), etcd.Config{Endpoints: c.Endpoints(), TLS: c.TLSConfig(),
		Username: c.Username, Password: "wrong", RequestTimeout: 2 * time.Second}); err == nil {
		t.Error("Open with a wrong password succeeded")
	}
}
