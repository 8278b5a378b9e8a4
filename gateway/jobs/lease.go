package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LeaseStore is the part of the store that keeps the job leases
// (enroll.LeaseStore).
type LeaseStore interface {
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Lease errors, tested with errors.Is.
var (
	// ErrRunning: the job is already running, in this process or on
	// another node (another runner holds its lease).
	ErrRunning = errors.New("jobs: the job is already running")
	// ErrLeaseLost: the job's lease could not be renewed in time, or was
	// taken by another runner, so the job was stopped.
	ErrLeaseLost = errors.New("jobs: the job's lease was lost")
	// ErrNoLease: the store did not answer when the lease was to be
	// taken, so the job did not start (it is tried again).
	ErrNoLease = errors.New("jobs: the job's lease could not be taken")
)

// DefaultLeaseTTL is how long a job's lease lasts without renewal: a
// runner that dies holds its jobs that long at most. A lease is renewed
// every third of it while the job runs.
const DefaultLeaseTTL = 30 * time.Second

// releaseTimeout bounds giving a lease back when a job stops.
const releaseTimeout = 5 * time.Second

// Lease keeps one job to one runner at a time, across processes: the job
// runs only while its runner holds the lease of the job's name in the
// store. The zero TTL, Node and Now take the defaults.
type Lease struct {
	Store LeaseStore
	// Node is this process's node ID (default NodeID()); each run holds
	// the lease as Node plus a run number, so that two runs in one
	// process are kept apart too.
	Node string
	TTL  time.Duration    // default DefaultLeaseTTL
	Now  func() time.Time // default time.Now: lease times are wall-clock times
}

// runSeq numbers the runs of this process.
var runSeq atomic.Uint64

// Hold runs fn while holding the lease name, and returns what fn returns.
// It returns an error wrapping ErrRunning, without running fn, when
// another runner holds the lease; when the lease cannot be renewed before
// it expires, or another runner has taken it, fn's context is cancelled
// and Hold returns an error wrapping ErrLeaseLost. The lease is released
// when fn returns.
func (l Lease) Hold(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	if l.Store == nil {
		return fmt.Errorf("jobs: %s: no lease store", name)
	}
	ttl, now := l.TTL, l.Now
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if now == nil {
		now = time.Now
	}
	node := l.Node
	if node == "" {
		node = NodeID()
	}
	holder := node + "/" + strconv.FormatUint(runSeq.Add(1), 10)
	start := now()
	ok, err := l.Store.AcquireLease(ctx, name, holder, start, ttl)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNoLease, name, err)
	}
	if !ok {
		return fmt.Errorf("%w: %s (its lease is held by another runner)", ErrRunning, name)
	}
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		l.renew(jctx, cancel, name, holder, start, ttl, now)
	}()
	err = fn(jctx)
	lost := context.Cause(jctx)
	cancel(nil)
	<-renewed
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	// Giving the lease back is best effort: a lease not released (the
	// store closed or down) ends at its TTL or with the store, and nothing
	// ran twice, so it changes nothing of what fn returned.
	_ = l.Store.ReleaseLease(rctx, name, holder)
	if errors.Is(lost, ErrLeaseLost) {
		return errors.Join(lost, err)
	}
	return err
}

// renew renews the lease every ttl/3 until ctx ends; it cancels ctx with
// ErrLeaseLost when another runner took the lease, or when renewals failed
// until the lease was about to expire.
func (l Lease) renew(ctx context.Context, cancel context.CancelCauseFunc, name, holder string, held time.Time, ttl time.Duration, now func() time.Time) {
	every := max(ttl/3, time.Millisecond)
	for Sleep(ctx, every) {
		t := now()
		ok, err := l.Store.AcquireLease(ctx, name, holder, t, ttl)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && ok:
			held = t
		case err == nil:
			cancel(fmt.Errorf("%w: %s: another runner took it", ErrLeaseLost, name))
			return
		case t.Add(every).After(held.Add(ttl)):
			// The next renewal would come after the expiry.
			cancel(fmt.Errorf("%w: %s: not renewed in time: %w", ErrLeaseLost, name, err))
			return
		}
	}
}

var (
	nodeOnce sync.Once
	nodeID   string
)

// NodeID is this process's node ID: the host name, the process ID and a
// random part, so that no two processes, on one machine or on two, ever
// share one.
func NodeID() string {
	nodeOnce.Do(func() {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "node"
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		nodeID = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	})
	return nodeID
}
