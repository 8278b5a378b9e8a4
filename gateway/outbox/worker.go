package outbox

import (
	"context"
	"time"

	"github.com/replyreset/replyreset/gateway/jobs"
)

// Lease names of the two workers in the store: one runner each, across
// processes and nodes (jobs.Lease).
const (
	outboxLease    = "outbox-worker"
	mailQueueLease = "mail-queue-worker"
)

// loop is what the outbox and the mail queue workers share: Run calls pass
// until ctx ends, sleeping what pass returns unless notify wakes it first,
// and runs only while it holds the worker's lease in the store, so that two
// runners (two nodes, or two runs in one process) never send one queue at
// once.
type loop struct {
	wake  chan struct{}
	name  string // the worker's lease
	queue string // the queue's name for DueNotifier
	lease jobs.Lease
}

// DueNotifier is a store shared by several nodes (etcd) that tells the
// runner when any node queues a due message, so that a message queued by
// a node that does not run the worker is sent at once rather than at the
// next poll. A store of one process (bbolt) needs none: notify wakes the
// worker there.
type DueNotifier interface {
	// WatchDue calls wake, which never blocks, each time a message of
	// queue ("outbox" or "mail") is queued, until ctx ends; it returns at
	// once.
	WatchDue(ctx context.Context, queue string, wake func())
}

func newLoop(name, queue string, store jobs.LeaseStore, node string) loop {
	return loop{wake: make(chan struct{}, 1), name: name, queue: queue, lease: jobs.Lease{Store: store, Node: node}}
}

// notify wakes run at once. It never blocks.
func (l *loop) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run calls pass until ctx ends, then returns nil once the pass in
// progress, if any, is done. While another runner holds the lease it
// returns an error wrapping jobs.ErrRunning; when the lease is lost, pass's
// context ends and it returns one wrapping jobs.ErrLeaseLost.
func (l *loop) run(ctx context.Context, pass func(context.Context) time.Duration) error {
	return l.lease.Hold(ctx, l.name, func(ctx context.Context) error {
		if n, ok := l.lease.Store.(DueNotifier); ok {
			n.WatchDue(ctx, l.queue, l.notify)
		}
		for {
			wait := pass(ctx)
			if ctx.Err() != nil {
				return nil
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-l.wake:
				t.Stop()
			case <-t.C:
			}
		}
	})
}

// once calls pass one time while holding the lease, and reports whether it
// did (false: another runner holds it, or the store failed).
func (l *loop) once(ctx context.Context, pass func(context.Context) time.Duration) bool {
	err := l.lease.Hold(ctx, l.name, func(ctx context.Context) error {
		pass(ctx)
		return nil
	})
	return err == nil
}
