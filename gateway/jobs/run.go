package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// Job is one singleton job.
type Job struct {
	Name string // for logs: "lockout watch"
	// Run does the job until ctx ends, then returns nil. It returns an
	// error wrapping ErrRunning when the job's lease is held by another
	// runner, one wrapping ErrLeaseLost when its lease was taken away, and
	// one wrapping ErrNoLease when the store could not give it the lease:
	// Run tries again after Busy. One wrapping enroll.ErrFenced (a store
	// write refused because this node no longer leads) stops every job of
	// the term, and Run campaigns again. One wrapping enroll.ErrUnavailable
	// (the store did not answer) is tried again after Busy: the job comes
	// back with the store. Any other error stops the job for
	// the rest of the term (it is logged); nil before ctx ends means the
	// job has nothing to do (it is off).
	Run func(ctx context.Context) error
	// Busy is the wait before trying again a job held elsewhere (default
	// 2s: a new term's job takes the lease soon after the one its previous
	// term could not release, while the store was down, runs out).
	Busy time.Duration
}

// campaignRetry is the wait after a failed campaign (the election's store
// unreachable).
const campaignRetry = 5 * time.Second

// resignTimeout bounds giving the leadership up at shutdown.
const resignTimeout = 5 * time.Second

// fencedRetry is the wait before campaigning again after a job was fenced.
const fencedRetry = time.Second

// Status tells whether this process leads the jobs now, for /healthz:
// Status.Run keeps it. The zero Status is ready (not leading).
type Status struct {
	leading atomic.Bool
}

// Leading reports whether this process leads (its jobs run) now.
func (s *Status) Leading() bool { return s.leading.Load() }

// Run runs jobs while this process leads (see Status.Run), without a
// Status to report it.
func Run(ctx context.Context, leader Leader, log *slog.Logger, jobs ...Job) {
	new(Status).Run(ctx, leader, log, jobs...)
}

// Run runs jobs while this process leads, until ctx ends: it campaigns,
// starts every job when the leadership is won and stops them (cancelling
// their context and waiting for them) when it is lost, or when a job was
// fenced (a store write refused with enroll.ErrFenced), then campaigns
// again. Each job runs with the term in its context (TermOf) and, when the
// term has one, the term's fence (enroll.WithFence). When ctx ends it
// stops the jobs, resigns and returns. s says meanwhile whether this
// process leads. log may be nil.
func (s *Status) Run(ctx context.Context, leader Leader, log *slog.Logger, jobs ...Job) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		term, err := leader.Campaign(ctx)
		if ctx.Err() != nil {
			if err == nil {
				resign(ctx, term, log)
			}
			return
		}
		if err != nil {
			log.ErrorContext(ctx, "jobs: campaign for leadership failed; trying again", "err", err, "retry_in", campaignRetry)
			if !Sleep(ctx, campaignRetry) {
				return
			}
			continue
		}
		log.DebugContext(ctx, "jobs: leading; jobs started", "leader", term.Leader(), "term", term.Revision(), "jobs", len(jobs))
		s.leading.Store(true)
		fenced := runTerm(ctx, term, log, jobs, &s.leading)
		if ctx.Err() != nil {
			resign(ctx, term, log)
			return
		}
		if fenced {
			// The store says another node leads: give up what is left of
			// this term, so that the election agrees at once.
			log.WarnContext(ctx, "jobs: fenced (another node leads); jobs stopped", "leader", term.Leader(), "term", term.Revision())
			resign(ctx, term, log)
			if !Sleep(ctx, fencedRetry) {
				return
			}
			continue
		}
		log.WarnContext(ctx, "jobs: leadership lost; jobs stopped", "leader", term.Leader(), "term", term.Revision())
	}
}

func resign(ctx context.Context, term Term, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resignTimeout)
	defer cancel()
	if err := term.Resign(rctx); err != nil {
		log.WarnContext(rctx, "jobs: cannot resign the leadership; it ends with its session", "err", err)
	}
}

// termKey is the context key of the term a job runs in.
type termKey struct{}

// TermOf returns the term the job whose context is ctx runs in, for the
// job's writes to be made conditional on it (fencing): Run puts it in the
// context of every job it starts.
func TermOf(ctx context.Context) (Term, bool) {
	t, ok := ctx.Value(termKey{}).(Term)
	return t, ok
}

// runTerm runs every job until the term or ctx ends, or a job is fenced,
// and waits for them; it clears leading once the term is over, and
// reports whether a job was fenced.
func runTerm(ctx context.Context, term Term, log *slog.Logger, jobs []Job, leading *atomic.Bool) (fenced bool) {
	jctx := context.WithValue(ctx, termKey{}, term)
	if f := term.Fence(); f.Key != "" {
		jctx = enroll.WithFence(jctx, f)
	}
	tctx, cancel := context.WithCancel(jctx)
	defer cancel()
	fence := make(chan struct{})
	var fenceOnce sync.Once
	onFenced := func() { fenceOnce.Do(func() { close(fence) }) }
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { runJob(tctx, j, log, onFenced) })
	}
	select {
	case <-term.Done():
	case <-ctx.Done():
	case <-fence:
		fenced = true
	}
	leading.Store(false)
	cancel()
	wg.Wait()
	return fenced
}

// runJob runs j until ctx ends, again after Busy while it is held
// elsewhere; it calls fenced and returns when j was fenced.
func runJob(ctx context.Context, j Job, log *slog.Logger, fenced func()) {
	busy := j.Busy
	if busy <= 0 {
		busy = 2 * time.Second
	}
	for {
		err := j.Run(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, enroll.ErrFenced):
			log.WarnContext(ctx, j.Name+": fenced: this node no longer leads", "err", err)
			fenced()
			return
		case errors.Is(err, ErrRunning) || errors.Is(err, ErrLeaseLost):
			log.InfoContext(ctx, j.Name+": held by another runner; trying again", "err", err, "retry_in", busy)
			if !Sleep(ctx, busy) {
				return
			}
		case errors.Is(err, ErrNoLease) || errors.Is(err, enroll.ErrUnavailable):
			// The store is down: the job must come back with it.
			log.ErrorContext(ctx, j.Name+": cannot take its lease; trying again", "err", err, "retry_in", busy)
			if !Sleep(ctx, busy) {
				return
			}
		case err != nil:
			log.ErrorContext(ctx, j.Name+" stopped", "err", err)
			return
		default:
			return
		}
	}
}

// Sleep waits d, or less when ctx ends first; false when it did.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
