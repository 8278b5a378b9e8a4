package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/jobs/election"
)

// candidate is one node of the election: its own etcd client, as a serve
// process has.
type candidate struct {
	name string
	cli  *clientv3.Client
	l    *election.Leader
	won  chan jobs.Term
	err  chan error
}

// campaign starts a candidate campaigning in the election under prefix;
// its term arrives on won.
func campaign(b *testing.B, cluster *etcdlab.Cluster, prefix, name string, ttl time.Duration) *candidate {
	cli, err := clientv3.New(cluster.Config())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cli.Close() })
	l, err := election.New(election.Config{Client: cli, Prefix: prefix, Node: name, TTL: ttl})
	if err != nil {
		b.Fatal(err)
	}
	c := &candidate{name: name, cli: cli, l: l, won: make(chan jobs.Term, 1), err: make(chan error, 1)}
	go func() {
		t, err := l.Campaign(b.Context())
		if err != nil {
			c.err <- err
			return
		}
		c.won <- t
	}()
	return c
}

// term waits for c to lead.
func (c *candidate) term(b *testing.B, within time.Duration) jobs.Term {
	select {
	case t := <-c.won:
		return t
	case err := <-c.err:
		b.Fatalf("%s: campaign: %v", c.name, err)
	case <-time.After(within):
		b.Fatalf("%s does not lead after %v", c.name, within)
	}
	return nil
}

// waitCandidates waits until n candidates have their key in the election
// (a follower is queued before the leader goes).
func waitCandidates(b *testing.B, cli *clientv3.Client, prefix string, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Get(ctx, prefix+"leader/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err == nil && resp.Count == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("election under %s: not %d candidates after 30 s (%v)", prefix, n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkLeaderFailover: how long the jobs have no leader when the
// leader dies (its etcd client closed, no resign: a crashed or cut-off
// node, which dies at a random moment; the other waits for the session
// lease to expire, a TTL after its last keep-alive) and when it hands over
// cleanly (Resign, as serve does on SIGTERM). The median of 10 rounds at
// the default session TTL of 10 s (under -short: 1 round at 2 s).
func BenchmarkLeaderFailover(b *testing.B) {
	cluster := etcdlab.Shared(b)
	prefix := cluster.Prefix(b)
	rounds := size(10, 1)
	ttl := election.DefaultTTL
	if testing.Short() {
		ttl = 2 * time.Second
	}
	watch := cluster.Client(b)
	var failover, handover []time.Duration
	for r := 0; r < rounds; r++ {
		a := campaign(b, cluster, prefix, fmt.Sprintf("a%d", r), ttl)
		ta := a.term(b, 30*time.Second)
		bn := campaign(b, cluster, prefix, fmt.Sprintf("b%d", r), ttl)
		waitCandidates(b, watch, prefix, 2)

		// Clean handover: a resigns, b leads.
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ta.Resign(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		tb := bn.term(b, 30*time.Second)
		handover = append(handover, time.Since(t0))
		if tb.Leader() != bn.name || tb.Revision() <= ta.Revision() {
			b.Fatalf("after the handover: leader %s at revision %d (was %d)", tb.Leader(), tb.Revision(), ta.Revision())
		}

		// Failover: b dies without resigning, c leads once b's lease
		// expires. b dies at a random point of its keep-alive cycle (one
		// every TTL/3), as a crash would: right after a keep-alive the
		// lease lasts the whole TTL, right before one, two thirds of it.
		c := campaign(b, cluster, prefix, fmt.Sprintf("c%d", r), ttl)
		waitCandidates(b, watch, prefix, 2)
		time.Sleep(rand.N(ttl))
		t0 = time.Now()
		if err := bn.cli.Close(); err != nil {
			b.Fatal(err)
		}
		tc := c.term(b, 3*ttl+30*time.Second)
		failover = append(failover, time.Since(t0))
		select {
		case <-tb.Done():
		case <-time.After(10 * time.Second):
			b.Fatal("the dead leader's term is not over")
		}
		if tc.Leader() != c.name || tc.Revision() <= tb.Revision() {
			b.Fatalf("after the failover: leader %s at revision %d (was %d)", tc.Leader(), tc.Revision(), tb.Revision())
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		if err := tc.Resign(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		_ = a.cli.Close()
		_ = c.cli.Close()
		detailf("leader failover round %d: handover %v, failover %v (TTL %v)\n", r+1,
			handover[r].Round(time.Millisecond), failover[r].Round(time.Millisecond), ttl)
	}
	med := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	span := func(d []time.Duration) string {
		return fmt.Sprintf("%s–%s ms", ms(slices.Min(d)), ms(slices.Max(d)))
	}
	record(figure{sec: secFailover, what: fmt.Sprintf("Leader failover (leader dies, no resign), session TTL %v, median of %d (range %s)",
		ttl, rounds, span(failover)), dir: "-", gateway: ms(med(failover)) + " ms"})
	record(figure{sec: secFailover, what: fmt.Sprintf("Leader clean handover (resign), median of %d (range %s)", rounds, span(handover)),
		dir: "-", gateway: ms(med(handover)) + " ms"})
	b.ReportMetric(med(failover).Seconds(), "failover-s")
	b.ReportMetric(med(handover).Seconds()*1000, "handover-ms")
}
