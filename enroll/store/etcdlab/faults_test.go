package etcdlab_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// mustPut writes key through a client of every member.
func mustPut(t *testing.T, c *etcdlab.Cluster, key string) {
	t.Helper()
	if _, err := c.Client(t).Put(ctxT(t, 20*time.Second), key, "v"); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// wantNoQuorum checks that a write through member m blocks until its 2 s
// deadline, or that the member gives up first ("request timed out"): a
// leader's proposal is dropped when it resigns for want of a quorum.
func wantNoQuorum(t *testing.T, c *etcdlab.Cluster, m *etcdlab.Member, key string) {
	t.Helper()
	_, err := memberClient(t, c, m).Put(ctxT(t, 2*time.Second), key, "v")
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return
	}
	if err != nil && strings.Contains(rpctypes.ErrorDesc(err), "request timed out") {
		return
	}
	t.Fatalf("put %s without quorum: err %v, want DeadlineExceeded", key, err)
}

// One member of three down: the cluster keeps its quorum and takes writes.
func TestKillOneMemberKeepsQuorum(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{})
	c.Member(0).Kill()
	c.WaitHealthy(t) // a write in flight to a killed leader is lost
	mustPut(t, c, "/after-kill")
	if _, err := memberClient(t, c, c.Member(1)).Get(ctxT(t, 20*time.Second), "/after-kill"); err != nil {
		t.Fatal(err)
	}
	c.Member(0).Restart(t)
	c.WaitHealthy(t)
}

// Two of three down: a write fails at its deadline, or at the survivor's
// own request timeout when it still believed it led (a loaded machine
// reaches that first); restarted, the members form a quorum again and take
// writes.
func TestKillTwoMembersLosesQuorumUntilRestart(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{})
	c.Member(0).Kill()
	c.Member(1).Kill()
	wantNoQuorum(t, c, c.Member(2), "/no-quorum")
	c.Member(0).Restart(t)
	mustPut(t, c, "/quorum-back")
	c.Member(1).Restart(t)
	c.WaitHealthy(t)
}

// Paused members hold their ports but answer nothing: two paused lose the
// quorum, resumed they have it back.
func TestPauseResume(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{})
	c.Member(0).Pause()
	c.WaitHealthy(t) // a write in flight to a paused leader is lost
	// Through m2: a request sent to a paused member waits for its deadline.
	if _, err := memberClient(t, c, c.Member(2)).Put(ctxT(t, 20*time.Second), "/one-paused", "v"); err != nil {
		t.Fatalf("put with one member paused: %v", err)
	}
	c.Member(1).Pause()
	wantNoQuorum(t, c, c.Member(2), "/two-paused")
	c.Member(0).Resume()
	c.Member(1).Resume()
	c.WaitHealthy(t)
	mustPut(t, c, "/resumed")
}
