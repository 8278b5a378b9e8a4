package etcd_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// raftLeader returns the member that is the raft leader, asking each
// member's status.
func raftLeader(t *testing.T, c *etcdlab.Cluster, cli *clientv3.Client) *etcdlab.Member {
	t.Helper()
	for _, m := range c.Members() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		st, err := cli.Status(ctx, m.ClientURL)
		cancel()
		if err != nil {
			t.Fatalf("status of %s: %v", m.Name, err)
		}
		if st.Leader == st.Header.MemberId {
			return m
		}
	}
	t.Fatal("no member is the raft leader")
	return nil
}

// TestWritesRightAfterRaftLeaderDies is OneMemberDown/RaftLeader on the
// store: the member that is raft leader is killed, and at once, together,
// one write of each kind is made: a create-if-absent (MarkMessage), a
// read-modify-write (UpdateMessage), one that needs a new etcd lease
// (AcquireLease on a store that has no session yet: a lease Grant) and an
// append (AppendAudit). Two members of three live, so every write
// succeeds, none with ErrUnavailable, and each takes effect once: the
// dedupe says new then duplicate, the message was updated once, the lease
// is held, the audit has one event. How long each write took after the
// leader died is logged, not asserted (before the per-attempt timeout:
// 5 s, the whole request timeout, and then ErrUnavailable).
func TestWritesRightAfterRaftLeaderDies(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{})
	cli := c.Client(t)
	prefix := c.Prefix(t)
	ctx := t.Context()
	open := func() *etcd.Store {
		s, err := etcd.New(ctx, cli, etcd.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	id, err := s.EnqueueMessage(ctx, sms("+12015550111"))
	if err != nil {
		t.Fatal(err)
	}
	// Warm the connections and the TTL lease of MarkMessage's class, and
	// the audit counter.
	if _, err := s.MarkMessage(ctx, "SMwarm", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "system", Action: "warm", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	// A second store on the client has no session lease yet: its first
	// AcquireLease grants one.
	fresh := open()

	leader := raftLeader(t, c, cli)
	leader.Kill()
	killed := time.Now()
	var (
		wg    sync.WaitGroup
		first bool
		seq   uint64
		got   bool
	)
	errs := make([]error, 4)
	write := func(i int, what string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
			t.Logf("leader %s killed: %s took %v (err %v)", leader.Name, what, time.Since(killed).Round(time.Millisecond), errs[i])
		}()
	}
	write(0, "MarkMessage", func() (err error) { first, err = s.MarkMessage(ctx, "SMfailover", t0, time.Hour); return err })
	write(1, "UpdateMessage", func() error {
		return s.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error { m.Attempts++; return nil })
	})
	write(2, "AcquireLease (a lease Grant)", func() (err error) {
		got, err = fresh.AcquireLease(ctx, "outbox-worker", "node-a/1", time.Now(), time.Minute)
		return err
	})
	write(3, "AppendAudit", func() (err error) {
		seq, err = s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "system", Action: "failover", Outcome: "ok"})
		return err
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d after the leader died: %v (unavailable: %v)", i, err, errors.Is(err, enroll.ErrUnavailable))
		}
	}
	if !first {
		t.Error("MarkMessage of a new SID after the leader died said duplicate")
	}
	if again, err := s.MarkMessage(ctx, "SMfailover", t0, time.Hour); err != nil || again {
		t.Errorf("MarkMessage of the same SID = %v, %v; want false (a duplicate), nil", again, err)
	}
	if !got {
		t.Error("AcquireLease of a free lease after the leader died = false")
	}
	msgs, err := s.Messages(ctx, enroll.OutboxFilter{})
	if err != nil || len(msgs) != 1 || msgs[0].Attempts != 1 {
		t.Errorf("messages = %+v, %v; want message %d updated once (1 attempt)", msgs, err, id)
	}
	evs, err := s.Audit(ctx, enroll.AuditFilter{Action: "failover"})
	if err != nil || len(evs) != 1 || evs[0].Seq != seq {
		t.Errorf("audit = %+v, %v; want one event, seq %d", evs, err, seq)
	}
}
