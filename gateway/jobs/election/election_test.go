package election_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/jobs/election"
)

// hang bounds every wait: reaching it is a failure, not a measure.
const hang = 60 * time.Second

// testTTL keeps the failovers of these tests short; the default is
// election.DefaultTTL.
const testTTL = 2 * time.Second

func newLeader(t testing.TB, cli *clientv3.Client, pfx, node string) *election.Leader {
	t.Helper()
	return newLeaderTTL(t, cli, pfx, node, testTTL)
}

func newLeaderTTL(t testing.TB, cli *clientv3.Client, pfx, node string, ttl time.Duration) *election.Leader {
	t.Helper()
	l, err := election.New(election.Config{Client: cli, Prefix: pfx, Node: node, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type won struct {
	term jobs.Term
	err  error
	at   time.Time
}

// campaign runs l.Campaign in the background.
func campaign(ctx context.Context, l *election.Leader) <-chan won {
	ch := make(chan won, 1)
	go func() {
		term, err := l.Campaign(ctx)
		ch <- won{term, err, time.Now()}
	}()
	return ch
}

func waitWon(t testing.TB, ch <-chan won, what string) jobs.Term {
	t.Helper()
	select {
	case w := <-ch:
		if w.err != nil {
			t.Fatalf("%s: Campaign: %v", what, w.err)
		}
		return w.term
	case <-time.After(hang):
		t.Fatalf("%s: no leader after %s", what, hang)
	}
	return nil
}

func waitDone(t testing.TB, term jobs.Term, what string) {
	t.Helper()
	select {
	case <-term.Done():
	case <-time.After(hang):
		t.Fatalf("%s: Term.Done not closed after %s", what, hang)
	}
}

// candidates waits until n candidates' keys are in the election.
func candidates(t testing.TB, cli *clientv3.Client, pfx string, n int) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		resp, err := cli.Get(t.Context(), pfx+"leader/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == int64(n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d candidates never campaigned", n)
}

// fenceHolds runs a write conditional on f, as a shared store does for a
// leader's writes, and reports whether it was applied.
func fenceHolds(t testing.TB, cli *clientv3.Client, f enroll.Fence, key string) bool {
	t.Helper()
	resp, err := cli.Txn(t.Context()).
		If(clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Revision)).
		Then(clientv3.OpPut(key, "written")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	return resp.Succeeded
}

func notYet(t testing.TB, ch <-chan won, what string) {
	t.Helper()
	select {
	case w := <-ch:
		t.Fatalf("%s: a second node leads at the same time (%v, %v)", what, w.term, w.err)
	default:
	}
}

func TestOneLeaderAtATime(t *testing.T) {
	pfx := prefix(t)
	a, b := newClient(t), newClient(t)
	ca := campaign(t.Context(), newLeader(t, a, pfx, "node-a"))
	cb := campaign(t.Context(), newLeader(t, b, pfx, "node-b"))
	var first jobs.Term
	var second <-chan won
	select {
	case w := <-ca:
		first, second = w.term, cb
		if w.err != nil {
			t.Fatal(w.err)
		}
	case w := <-cb:
		first, second = w.term, ca
		if w.err != nil {
			t.Fatal(w.err)
		}
	case <-time.After(hang):
		t.Fatal("no leader")
	}
	// Both candidates are in the election; the second waits.
	candidates(t, a, pfx, 2)
	notYet(t, second, "while the first leads")
	f := first.Fence()
	if !slices.Contains([]string{"node-a", "node-b"}, first.Leader()) || f.Revision != first.Revision() || f.Revision <= 0 ||
		len(f.Key) <= len(pfx+"leader/") || f.Key[:len(pfx+"leader/")] != pfx+"leader/" {
		t.Errorf("term: leader %s, revision %d, fence %+v; want a fence under %sleader/", first.Leader(), first.Revision(), f, pfx)
	}
	if !fenceHolds(t, a, f, pfx+"probe") {
		t.Error("the leader's own fence does not hold")
	}
	// Resigning hands the leadership over at once.
	if err := first.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, first, "after Resign")
	next := waitWon(t, second, "after the leader resigned")
	if next.Leader() == first.Leader() || next.Revision() <= first.Revision() {
		t.Errorf("next term: %s at %d after %s at %d", next.Leader(), next.Revision(), first.Leader(), first.Revision())
	}
	if fenceHolds(t, a, f, pfx+"probe") {
		t.Error("the resigned leader's fence still holds")
	}
	if err := next.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// failover makes a leader (a client of its own), kills its client the way
// a crash does (no resign, no revoke: its lease must expire), and returns
// how long the standby took to lead. It checks that the deposed leader's
// term ends and its fence no longer holds.
func failover(t testing.TB, standby *clientv3.Client, pfx string, ttl time.Duration) time.Duration {
	t.Helper()
	doomed, err := clientv3.New(clientConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer doomed.Close()
	old := waitWon(t, campaign(t.Context(), newLeaderTTL(t, doomed, pfx, "doomed", ttl)), "the first leader")
	ch := campaign(t.Context(), newLeaderTTL(t, standby, pfx, "standby", ttl))
	candidates(t, standby, pfx, 2)
	notYet(t, ch, "before the crash")
	killed := time.Now()
	doomed.Close()
	next := waitWon(t, ch, "after the leader's crash")
	took := time.Since(killed)
	waitDone(t, old, "the crashed leader's term")
	if fenceHolds(t, standby, old.Fence(), pfx+"stale-write") {
		t.Error("the crashed leader's fence still holds after the new leader took over")
	}
	if !fenceHolds(t, standby, next.Fence(), pfx+"write") {
		t.Error("the new leader's fence does not hold")
	}
	if err := next.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	return took
}

func TestFailoverWhenTheLeaderCrashes(t *testing.T) {
	standby := newClient(t)
	took := failover(t, standby, prefix(t), testTTL)
	t.Logf("failover after a crash (session TTL %s): %s", testTTL, took.Round(time.Millisecond))
}

func TestDeposedWhenItsKeyIsGone(t *testing.T) {
	pfx := prefix(t)
	a, b := newClient(t), newClient(t)
	old := waitWon(t, campaign(t.Context(), newLeader(t, a, pfx, "node-a")), "node-a")
	ch := campaign(t.Context(), newLeader(t, b, pfx, "node-b"))
	candidates(t, b, pfx, 2)
	// The leader's key disappears while its process keeps running (its
	// lease revoked by an operator, or expired while it was paused): the
	// term ends at once, and the other node leads.
	if _, err := b.Delete(t.Context(), old.Fence().Key); err != nil {
		t.Fatal(err)
	}
	waitDone(t, old, "the deposed leader's term")
	next := waitWon(t, ch, "after the leader key was deleted")
	// Its own client still works: a write it makes under its old fence,
	// after the new leader took over, is refused.
	if fenceHolds(t, a, old.Fence(), pfx+"stale-write") {
		t.Error("a deposed leader's write under its fence was applied")
	}
	if resp, err := a.Get(t.Context(), pfx+"stale-write"); err != nil || resp.Count != 0 {
		t.Errorf("the stale write is in etcd: %v, %v", resp, err)
	}
	if !fenceHolds(t, b, next.Fence(), pfx+"write") {
		t.Error("the new leader's fence does not hold")
	}
	next.Resign(t.Context())
}

func TestCampaignEndsWithItsContext(t *testing.T) {
	pfx := prefix(t)
	a, b := newClient(t), newClient(t)
	first := waitWon(t, campaign(t.Context(), newLeader(t, a, pfx, "node-a")), "node-a")
	ctx, cancel := context.WithCancel(t.Context())
	ch := campaign(ctx, newLeader(t, b, pfx, "node-b"))
	candidates(t, b, pfx, 2)
	cancel()
	select {
	case w := <-ch:
		if !errors.Is(w.err, context.Canceled) {
			t.Errorf("Campaign after its ctx ended: %v, %v; want context.Canceled", w.term, w.err)
		}
	case <-time.After(hang):
		t.Fatal("Campaign did not return when its ctx ended")
	}
	// The abandoned candidate left the election.
	candidates(t, b, pfx, 1)
	first.Resign(t.Context())
}

func TestRunOnEtcdFencesTheJobs(t *testing.T) {
	pfx := prefix(t)
	cli := newClient(t)
	var status jobs.Status
	fences := make(chan enroll.Fence, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		status.Run(ctx, newLeader(t, cli, pfx, "node-a"), nil, jobs.Job{Name: "probe", Run: func(ctx context.Context) error {
			f, _ := enroll.FenceFrom(ctx)
			fences <- f
			<-ctx.Done()
			return nil
		}})
		close(done)
	}()
	var f enroll.Fence
	select {
	case f = <-fences:
	case <-time.After(hang):
		t.Fatal("the job never started")
	}
	if !status.Leading() || f.Key == "" || !fenceHolds(t, cli, f, pfx+"w") {
		t.Errorf("leading %v, fence %+v: want the job under the term's fence", status.Leading(), f)
	}
	cancel()
	<-done
	if status.Leading() || fenceHolds(t, cli, f, pfx+"w") {
		t.Error("after Run returned the node still leads, or its fence still holds (not resigned)")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cli := newClient(t)
	for name, cfg := range map[string]election.Config{
		"no client":      {Prefix: "/r/"},
		"prefix":         {Client: cli, Prefix: "r/"},
		"prefix no end":  {Client: cli, Prefix: "/r"},
		"fractional ttl": {Client: cli, Prefix: "/r/", TTL: 1500 * time.Millisecond},
		"negative ttl":   {Client: cli, Prefix: "/r/", TTL: -time.Second},
	} {
		if _, err := election.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestFailoverFigures measures 10 crash failovers (the leader's client
// closed without resigning: the standby leads once the lease expires) and
// prints the median with -v. A figure, not an assertion.
func TestFailoverFigures(t *testing.T) {
	standby := newClient(t)
	pfx := prefix(t)
	var took []time.Duration
	for range 10 {
		took = append(took, failover(t, standby, pfx, testTTL))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("crash failover, session TTL %s, 10 runs: median %s, min %s, max %s",
		testTTL, ((took[4] + took[5]) / 2).Round(time.Millisecond), took[0].Round(time.Millisecond), took[9].Round(time.Millisecond))
}

// BenchmarkFailover measures crash failovers at the default session TTL
// (10 s): run it with -benchtime=10x for the median of 10.
func BenchmarkFailover(b *testing.B) {
	standby := newClient(b)
	pfx := prefix(b)
	var took []time.Duration
	for b.Loop() {
		took = append(took, failover(b, standby, pfx, election.DefaultTTL))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	median := took[len(took)/2]
	if len(took)%2 == 0 {
		median = (took[len(took)/2-1] + took[len(took)/2]) / 2
	}
	b.ReportMetric(median.Seconds(), "median-s")
}

// TestLeaderStepsDownWithoutQuorum: two of three members die; the leader
// cannot prove it still leads, so its term ends (within the session TTL)
// instead of running the jobs on; with the members back, a campaign wins
// again.
func TestLeaderStepsDownWithoutQuorum(t *testing.T) {
	lab := etcdlab.New(t, etcdlab.Options{})
	cli := lab.Client(t)
	pfx := lab.Prefix(t)
	l := newLeader(t, cli, pfx, "node-a")
	term := waitWon(t, campaign(t.Context(), l), "the leader")
	lab.Member(1).Kill()
	lab.Member(2).Kill()
	lost := time.Now()
	waitDone(t, term, "the leader without a quorum")
	t.Logf("term ended %s after the quorum was lost (session TTL %s)", time.Since(lost).Round(time.Millisecond), testTTL)
	lab.Member(1).Restart(t)
	lab.Member(2).Restart(t)
	next := waitWon(t, campaign(t.Context(), l), "after the quorum came back")
	if next.Revision() <= term.Revision() {
		t.Errorf("the new term's revision %d is not after the old one's %d", next.Revision(), term.Revision())
	}
	next.Resign(t.Context())
}
