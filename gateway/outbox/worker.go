package outbox

import (
	"context"
	"sync/atomic"
	"time"
)

// loop is what the outbox and the mail queue workers share: Run calls pass
// until ctx ends, sleeping what pass returns unless notify wakes it first,
// and refuses to run twice at once in this process.
type loop struct {
	wake    chan struct{}
	running atomic.Bool
}

func newLoop() loop { return loop{wake: make(chan struct{}, 1)} }

// notify wakes run at once. It never blocks.
func (l *loop) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run calls pass until ctx ends, then returns nil once the pass in
// progress, if any, is done; a second concurrent run returns busy.
func (l *loop) run(ctx context.Context, pass func(context.Context) time.Duration, busy error) error {
	if !l.running.CompareAndSwap(false, true) {
		return busy
	}
	defer l.running.Store(false)
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
}
