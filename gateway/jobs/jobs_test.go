package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/jobs"
)

// hang bounds every wait of these tests: reaching it is a failure (a
// job that never starts or never stops), not a measure.
const hang = 30 * time.Second

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, _ := enrolltest.DataDir(t)
	return s
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hang):
		t.Fatalf("%s: not after %s", what, hang)
	}
}

// probe is a job that reports each start and each stop.
type probe struct {
	name    string
	started chan struct{}
	stopped chan struct{}
	runs    atomic.Int32
}

func newProbe(name string) *probe {
	return &probe{name: name, started: make(chan struct{}, 10), stopped: make(chan struct{}, 10)}
}

func (p *probe) job() jobs.Job {
	return jobs.Job{Name: p.name, Run: func(ctx context.Context) error {
		p.runs.Add(1)
		p.started <- struct{}{}
		<-ctx.Done()
		p.stopped <- struct{}{}
		return nil
	}}
}

func TestSingleNodeLeadsAtOnceAndForever(t *testing.T) {
	l := jobs.NewSingleNode("node-a")
	t1, err := l.Campaign(t.Context())
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	if t1.Leader() != "node-a" {
		t.Errorf("Leader() = %q, want node-a", t1.Leader())
	}
	select {
	case <-t1.Done():
		t.Fatal("a single node's term ended by itself")
	default:
	}
	if err := t1.Resign(t.Context()); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	wait(t, t1.Done(), "Done after Resign")
	if err := t1.Resign(t.Context()); err != nil {
		t.Errorf("second Resign: %v", err)
	}
	t2, err := l.Campaign(t.Context())
	if err != nil {
		t.Fatalf("Campaign after Resign: %v", err)
	}
	if t2.Revision() <= t1.Revision() {
		t.Errorf("revisions %d then %d: want them to grow", t1.Revision(), t2.Revision())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Campaign(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Campaign with a done context: %v, want context.Canceled", err)
	}
	if a, b := jobs.NodeID(), jobs.NodeID(); a == "" || a != b {
		t.Errorf("NodeID() = %q then %q: want one non-empty ID per process", a, b)
	}
	if t3, err := jobs.NewSingleNode("").Campaign(t.Context()); err != nil || t3.Leader() != jobs.NodeID() {
		t.Errorf("the default single node leads as %v, %v; want NodeID() %q", t3, err, jobs.NodeID())
	}
}

func TestRunStartsEveryJobAndStopsThemAtTheEnd(t *testing.T) {
	probes := []*probe{newProbe("lockout watch"), newProbe("expiry reminders"), newProbe("sms password expiry")}
	var list []jobs.Job
	for _, p := range probes {
		list = append(list, p.job())
	}
	off := jobs.Job{Name: "off", Run: func(context.Context) error { return nil }} // returns at once: not restarted
	failed := jobs.Job{Name: "broken", Run: func(context.Context) error { return errors.New("broken") }}
	var offRuns, failedRuns atomic.Int32
	list = append(list,
		jobs.Job{Name: off.Name, Run: func(ctx context.Context) error { offRuns.Add(1); return off.Run(ctx) }},
		jobs.Job{Name: failed.Name, Run: func(ctx context.Context) error { failedRuns.Add(1); return failed.Run(ctx) }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { jobs.Run(ctx, jobs.NewSingleNode("node-a"), nil, list...); close(done) }()
	for _, p := range probes {
		wait(t, p.started, p.name+" started")
	}
	cancel()
	for _, p := range probes {
		wait(t, p.stopped, p.name+" stopped")
	}
	wait(t, done, "Run returned")
	for _, p := range probes {
		if n := p.runs.Load(); n != 1 {
			t.Errorf("%s ran %d times, want 1", p.name, n)
		}
	}
	if offRuns.Load() != 1 || failedRuns.Load() != 1 {
		t.Errorf("a job that returned ran %d and %d times, want once each", offRuns.Load(), failedRuns.Load())
	}
}

// scriptedLeader is an election the test decides: each Campaign waits for
// a term the test hands out, and the test ends terms.
type scriptedLeader struct {
	terms chan *scriptedTerm
}

type scriptedTerm struct {
	rev   int64
	fence enroll.Fence
	once  sync.Once
	done  chan struct{}
}

func (l *scriptedLeader) Campaign(ctx context.Context) (jobs.Term, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case t := <-l.terms:
		return t, nil
	}
}

func (t *scriptedTerm) Done() <-chan struct{}            { return t.done }
func (t *scriptedTerm) Leader() string                   { return "node-a" }
func (t *scriptedTerm) Revision() int64                  { return t.rev }
func (t *scriptedTerm) Fence() enroll.Fence              { return t.fence }
func (t *scriptedTerm) Resign(ctx context.Context) error { t.lose(); return nil }
func (t *scriptedTerm) lose()                            { t.once.Do(func() { close(t.done) }) }

func TestRunFollowsTheLeadership(t *testing.T) {
	l := &scriptedLeader{terms: make(chan *scriptedTerm)}
	p := newProbe("lockout watch")
	revs := make(chan int64, 10)
	job := p.job()
	run := job.Run
	job.Run = func(ctx context.Context) error {
		if term, ok := jobs.TermOf(ctx); ok {
			revs <- term.Revision()
		} else {
			revs <- 0
		}
		return run(ctx)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { jobs.Run(ctx, l, nil, job); close(done) }()

	select {
	case <-p.started:
		t.Fatal("a job started before the leadership was won")
	default:
	}
	first := &scriptedTerm{rev: 1, done: make(chan struct{})}
	l.terms <- first
	wait(t, p.started, "the job started when the leadership was won")
	first.lose()
	wait(t, p.stopped, "the job stopped when the leadership was lost")

	second := &scriptedTerm{rev: 2, done: make(chan struct{})}
	l.terms <- second // Run campaigns again
	wait(t, p.started, "the job started again with the next term")
	cancel()
	wait(t, p.stopped, "the job stopped at shutdown")
	wait(t, done, "Run returned")
	wait(t, second.done, "the term was resigned at shutdown")
	if n := p.runs.Load(); n != 2 {
		t.Errorf("the job ran %d times, want 2 (one per term)", n)
	}
	if a, b := <-revs, <-revs; a != 1 || b != 2 {
		t.Errorf("the job saw the terms %d and %d, want 1 then 2 (TermOf)", a, b)
	}
}

// countingLeases is the real store, counting the renewals it is asked for.
type countingLeases struct {
	jobs.LeaseStore
	acquired chan struct{}
}

func (c *countingLeases) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	ok, err := c.LeaseStore.AcquireLease(ctx, name, holder, now, ttl)
	select {
	case c.acquired <- struct{}{}:
	default:
	}
	return ok, err
}

func TestLeaseKeepsAJobToOneRunner(t *testing.T) {
	store := openStore(t)
	clock := enrolltest.NewClock(time.Date(2026, 3, 12, 10, 0, 0, 0, time.UTC))
	leases := &countingLeases{LeaseStore: store, acquired: make(chan struct{})}
	const ttl = 300 * time.Millisecond
	a := jobs.Lease{Store: leases, Node: "node-a", TTL: ttl, Now: clock.Now}
	b := jobs.Lease{Store: store, Node: "node-b", TTL: ttl, Now: clock.Now}

	inside := make(chan struct{})
	proceed := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- a.Hold(t.Context(), "lockout", func(ctx context.Context) error {
			close(inside)
			<-proceed
			return nil
		})
	}()
	<-leases.acquired // the first acquisition
	wait(t, inside, "the job ran under its lease")

	ran := false
	for _, other := range []jobs.Lease{b, a} { // another node, and another run in the same process
		err := other.Hold(t.Context(), "lockout", func(context.Context) error { ran = true; return nil })
		if !errors.Is(err, jobs.ErrRunning) {
			t.Errorf("Hold by %s while node-a runs the job: %v, want ErrRunning", other.Node, err)
		}
	}
	if ran {
		t.Fatal("a second runner ran the job")
	}
	// Renewed while it runs: well past the first expiry, still held.
	for range 4 {
		clock.Advance(ttl / 2)
		<-leases.acquired
	}
	if err := b.Hold(t.Context(), "lockout", func(context.Context) error { return nil }); !errors.Is(err, jobs.ErrRunning) {
		t.Errorf("Hold by node-b two TTLs later, with the lease renewed: %v, want ErrRunning", err)
	}
	close(proceed)
	if err := <-held; err != nil {
		t.Fatalf("Hold: %v", err)
	}
	// Released when the job returned.
	if err := b.Hold(t.Context(), "lockout", func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("Hold by node-b after node-a's job returned: ran %v, %v; want it to run", ran, err)
	}
	if err := (jobs.Lease{}).Hold(t.Context(), "lockout", func(context.Context) error { return nil }); err == nil {
		t.Error("Hold without a store: nil error")
	}
}

// pausableLeases is the real store, whose renewals the test can hold up,
// as when the node is paused (SIGSTOP) or cut off.
type pausableLeases struct {
	jobs.LeaseStore
	mu sync.Mutex // held by the test while the node is paused
}

func (p *pausableLeases) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.LeaseStore.AcquireLease(ctx, name, holder, now, ttl)
}

func TestLeaseLostStopsTheJob(t *testing.T) {
	store := openStore(t)
	clock := enrolltest.NewClock(time.Date(2026, 3, 12, 10, 0, 0, 0, time.UTC))
	const ttl = 300 * time.Millisecond
	leases := &pausableLeases{LeaseStore: store}
	a := jobs.Lease{Store: leases, Node: "node-a", TTL: ttl, Now: clock.Now}
	inside := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- a.Hold(t.Context(), "reminders", func(ctx context.Context) error {
			close(inside)
			<-ctx.Done()
			return nil
		})
	}()
	wait(t, inside, "the job ran under its lease")
	// node-a is paused past its lease, and node-b takes it meanwhile.
	leases.mu.Lock()
	now := clock.Advance(2 * ttl)
	ok, err := store.AcquireLease(t.Context(), "reminders", "node-b/1", now, time.Hour)
	leases.mu.Unlock()
	if err != nil || !ok {
		t.Fatalf("AcquireLease by node-b after the expiry = %v, %v", ok, err)
	}
	select {
	case err := <-held:
		if !errors.Is(err, jobs.ErrLeaseLost) {
			t.Errorf("Hold after its lease was taken: %v, want ErrLeaseLost", err)
		}
	case <-time.After(hang):
		t.Fatal("the job went on after its lease was taken")
	}
	// node-b's lease is untouched by node-a's release.
	if ok, _ := store.AcquireLease(t.Context(), "reminders", "node-a/9", now, time.Hour); ok {
		t.Error("node-a's stop released node-b's lease")
	}
}

// TestLeaseNotRenewedStopsTheJob: a runner whose store fails stops its
// job before the lease it can no longer renew expires.
func TestLeaseNotRenewedStopsTheJob(t *testing.T) {
	store := openStore(t)
	clock := enrolltest.NewClock(time.Date(2026, 3, 12, 10, 0, 0, 0, time.UTC))
	const ttl = 300 * time.Millisecond
	a := jobs.Lease{Store: store, Node: "node-a", TTL: ttl, Now: clock.Now}
	inside := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- a.Hold(t.Context(), "lockout", func(ctx context.Context) error {
			close(inside)
			<-ctx.Done()
			return nil
		})
	}()
	wait(t, inside, "the job ran under its lease")
	if err := store.Close(); err != nil { // every renewal fails from now on
		t.Fatal(err)
	}
	clock.Advance(ttl)
	select {
	case err := <-held:
		if !errors.Is(err, jobs.ErrLeaseLost) || !errors.Is(err, enroll.ErrClosed) {
			t.Errorf("Hold with failing renewals: %v, want ErrLeaseLost with the store's error", err)
		}
	case <-time.After(hang):
		t.Fatal("the job went on with a lease it could not renew")
	}
}

func TestRunRetriesAJobHeldElsewhere(t *testing.T) {
	store := openStore(t)
	now := time.Now()
	if ok, err := store.AcquireLease(t.Context(), "lockout", "dead-node/1", now, time.Hour); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	lease := jobs.Lease{Store: store, Node: "node-a"}
	var tries atomic.Int32
	started := make(chan struct{})
	job := jobs.Job{Name: "lockout watch", Busy: time.Millisecond, Run: func(ctx context.Context) error {
		if tries.Add(1) == 3 {
			// The other holder goes away (its lease ends).
			if err := store.ReleaseLease(ctx, "lockout", "dead-node/1"); err != nil {
				return err
			}
		}
		return lease.Hold(ctx, "lockout", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		})
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { jobs.Run(ctx, jobs.NewSingleNode("node-a"), nil, job); close(done) }()
	wait(t, started, "the job started once its lease was free")
	cancel()
	wait(t, done, "Run returned")
	if n := tries.Load(); n < 3 {
		t.Errorf("%d tries, want at least 3", n)
	}
}

// flakyLeases is a lease store that is down for its first failures
// AcquireLease calls.
type flakyLeases struct {
	jobs.LeaseStore
	failures atomic.Int32
}

func (f *flakyLeases) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if f.failures.Add(-1) >= 0 {
		return false, errors.New("store unavailable")
	}
	return f.LeaseStore.AcquireLease(ctx, name, holder, now, ttl)
}

// TestRunRetriesAJobWhoseLeaseStoreFails: a store that cannot give the
// lease (down for a moment) does not stop the job for the rest of the
// term: it starts once the store answers again.
func TestRunRetriesAJobWhoseLeaseStoreFails(t *testing.T) {
	store := &flakyLeases{LeaseStore: openStore(t)}
	store.failures.Store(2)
	lease := jobs.Lease{Store: store, Node: "node-a"}
	var tries atomic.Int32
	started := make(chan struct{})
	job := jobs.Job{Name: "outbox", Busy: time.Millisecond, Run: func(ctx context.Context) error {
		tries.Add(1)
		return lease.Hold(ctx, "outbox-worker", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		})
	}}
	if err := lease.Hold(t.Context(), "probe", func(context.Context) error { return nil }); !errors.Is(err, jobs.ErrNoLease) {
		t.Fatalf("Hold with the store down = %v, want ErrNoLease", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { jobs.Run(ctx, jobs.NewSingleNode("node-a"), nil, job); close(done) }()
	wait(t, started, "the job started once the store answered")
	cancel()
	wait(t, done, "Run returned")
	if n := tries.Load(); n != 2 {
		t.Errorf("%d tries, want 2 (one refused by the store, then the run)", n)
	}
}

// TestRunRetriesAJobWhoseStoreIsDown: a job whose Run fails because the
// store does not answer (enroll.ErrUnavailable, after a quorum loss) is
// tried again rather than stopped for the rest of the term.
func TestRunRetriesAJobWhoseStoreIsDown(t *testing.T) {
	store := openStore(t)
	lease := jobs.Lease{Store: store, Node: "node-a"}
	var tries atomic.Int32
	started := make(chan struct{})
	job := jobs.Job{Name: "outbox", Busy: time.Millisecond, Run: func(ctx context.Context) error {
		if tries.Add(1) <= 2 {
			return fmt.Errorf("outbox: read due messages: %w", enroll.ErrUnavailable)
		}
		return lease.Hold(ctx, "outbox", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		})
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { jobs.Run(ctx, jobs.NewSingleNode("node-a"), nil, job); close(done) }()
	wait(t, started, "the job ran once the store answered")
	cancel()
	wait(t, done, "Run returned")
	if n := tries.Load(); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}
}
