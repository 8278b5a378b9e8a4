package outbox

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
)

// Store is what the outbox worker needs from the store.
type Store interface {
	DueMessages(ctx context.Context, now time.Time, limit int) ([]enroll.OutboundMessage, error)
	UpdateMessage(ctx context.Context, id uint64, fn func(*enroll.OutboundMessage) error) error
	jobs.LeaseStore // one worker at a time
}

// Options tune the worker; zero fields take the defaults.
type Options struct {
	Batch       int           // messages read per pass (default 20)
	MaxAttempts int           // sends tried before a message expires (default 12)
	MaxAge      time.Duration // age after which an unsent message expires (default 24h)
	BackoffBase time.Duration // wait after the first failure, doubled after each (default 5s)
	BackoffMax  time.Duration // longest wait between attempts (default 10m)
	// RatePerSecond paces low-priority messages (sms.rate_per_second);
	// high-priority ones are never held back. 0 means no pacing.
	RatePerSecond float64
	// Poll is how often the queue is read when nothing wakes the worker,
	// which catches retries scheduled before a restart (default 15s).
	Poll time.Duration
	// SendTimeout bounds one provider call (default 30s).
	SendTimeout time.Duration
	Now         func() time.Time
	// Budget, when set, admits every SMS and call before it is sent
	// (sms.allowed_countries and sms.budgets); a refused one ends with
	// status over_budget.
	Budget Budget
	// Redactor blanks provider messages (KindRedact); when nil, the sender
	// is used if it can (twilio.Sender, LocalSender).
	Redactor Redactor
	// Audit, when set, records every redaction (action "redact").
	Audit Auditor
	// Node is this process's node ID for the worker's lease (default
	// jobs.NodeID()).
	Node string
}

func (o *Options) defaults() {
	if o.Batch <= 0 {
		o.Batch = 20
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 5 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 10 * time.Minute
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.Poll <= 0 {
		o.Poll = 15 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Outbox is the durable outbox worker: it sends the queued messages, in
// priority order, and records what became of each.
//
// Before calling the provider the worker claims the message in the store:
// one more attempt counted, the next attempt moved past a backoff delay, a
// send mark set (SendStarted), status still queued or retry. If the worker
// stops during the call (the process dies, or the leader is paused and
// deposed, so its write is fenced), the claim runs out with the mark still
// set, and the next worker does not send it again blindly: it asks the
// provider (SentFinder) whether the message left, and when the provider
// cannot say, only codes and passwords are sent again (a second code is
// harmless, a lost one locks the user out), while a lockout alert or a
// notice ends unknown rather than be texted twice (settleUnknown).
//
// Only one Run is active per store: it runs while it holds the worker's
// lease in the store, so a second Run (in this process or on another
// node) waits for it (jobs.ErrRunning).
type Outbox struct {
	store  Store
	opener BodyOpener
	sender Sender
	log    *slog.Logger
	opt    Options

	loop loop // wakes Run; one Run at a time, under the lease

	// Owned by the Run goroutine.
	retries      []time.Time // retry times scheduled by this process, to wake for
	failures     int         // provider failures in a row, for the worker's own pause
	providerDown bool        // a probe failed since the last recovery (probeRecovery)
	nextLow      time.Time   // earliest send of the next low-priority message
}

// New wires the worker; log may be nil.
func New(store Store, opener BodyOpener, sender Sender, log *slog.Logger, opt Options) *Outbox {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{store: store, opener: opener, sender: sender, log: log, opt: opt, loop: newLoop(outboxLease, "outbox", store, opt.Node)}
}

// Notify wakes Run at once, after a message was queued. It never blocks.
func (o *Outbox) Notify() { o.loop.notify() }

// Run sends due messages until ctx ends, then returns nil once the send in
// progress, if any, is recorded. It returns an error wrapping
// jobs.ErrRunning while another runner holds the worker's lease.
func (o *Outbox) Run(ctx context.Context) error { return o.loop.run(ctx, o.pass) }

// probeRecovery runs while the provider is failing (the sender is a
// Prober): once the provider answers a probe again, every message waiting
// on a backoff is made due now, so an outage is followed by delivery at
// the next pass, not by each message's own (growing) backoff. It returns
// false while the provider still fails.
func (o *Outbox) probeRecovery(ctx context.Context) bool {
	if err := o.sender.(Prober).Probe(ctx); err != nil {
		o.providerDown = true
		return false
	}
	if !o.providerDown {
		// Sends fail but the provider answers: a problem of the messages,
		// not an outage; their own backoffs stand.
		return true
	}
	o.retryWaitingNow(ctx)
	return true
}

// retryWaitingNow makes every message waiting on a backoff due now, after
// the provider came back from an outage.
func (o *Outbox) retryWaitingNow(ctx context.Context) {
	o.providerDown = false
	now := o.opt.Now()
	waiting, err := o.store.DueMessages(ctx, now.Add(o.opt.MaxAge+o.opt.BackoffMax), 1000)
	if err != nil {
		return
	}
	n := 0
	for _, m := range waiting {
		if m.Status != enroll.StatusRetry || !m.NextAttempt.After(now) {
			continue
		}
		err := o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
			if c.Status == enroll.StatusRetry && c.NextAttempt.After(now) {
				c.NextAttempt = now
			}
			return nil
		})
		if err != nil {
			return
		}
		n++
	}
	o.retries = nil
	if n > 0 {
		o.log.InfoContext(ctx, "outbox: the provider answers again; retrying the waiting messages now", "messages", n)
	}
}

// outcome is what became of one message.
type outcome int

const (
	outcomeDone  outcome = iota // sent, or settled for good (rejected, expired, skipped)
	outcomeRetry                // the provider failed; the message waits
	outcomeHeld                 // store trouble: stop the pass
)

// pass sends what is due and returns how long to sleep.
func (o *Outbox) pass(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		now := o.opt.Now()
		msgs, err := o.store.DueMessages(ctx, now, o.opt.Batch)
		if err != nil {
			if ctx.Err() == nil {
				o.log.ErrorContext(ctx, "outbox: cannot read due messages", "err", err)
			}
			return o.opt.BackoffBase
		}
		for _, m := range msgs {
			if ctx.Err() != nil {
				return 0
			}
			if m.Priority > enroll.PriorityHigh && o.opt.RatePerSecond > 0 {
				// Messages come by priority: the rest of the batch is low too.
				if now := o.opt.Now(); now.Before(o.nextLow) {
					return o.nextLow.Sub(now)
				}
				o.nextLow = o.opt.Now().Add(time.Duration(float64(time.Second) / o.opt.RatePerSecond))
			}
			switch o.deliver(ctx, m) {
			case outcomeRetry:
				// The provider is failing: pause the queue rather than
				// hammer it with the rest of the batch, and probe it at
				// least every Poll to notice when it is back.
				o.failures++
				return min(o.backoff(o.failures), o.opt.Poll)
			case outcomeHeld:
				return o.opt.BackoffBase
			default:
				if o.failures > 0 {
					// A send went through: the provider is back.
					o.failures = 0
					o.retryWaitingNow(ctx)
				}
			}
		}
		if len(msgs) == 0 && o.failures > 0 {
			// Everything waits on a backoff after failures: ask the
			// provider whether it is back rather than wait them out.
			if _, ok := o.sender.(Prober); ok {
				if !o.probeRecovery(ctx) {
					o.failures++
					return min(o.backoff(o.failures), o.opt.Poll)
				}
				o.failures = 0
				continue
			}
		}
		if len(msgs) < o.opt.Batch {
			break
		}
	}
	return o.idle()
}

// idle is the sleep when nothing is due: until the earliest retry this
// process scheduled, at most Poll.
func (o *Outbox) idle() time.Duration {
	now := o.opt.Now()
	o.retries = slices.DeleteFunc(o.retries, func(t time.Time) bool { return !t.After(now) })
	wait := o.opt.Poll
	for _, t := range o.retries {
		wait = min(wait, t.Sub(now))
	}
	return wait
}

// backoff is the wait before attempt n+1 after n failures: BackoffBase
// doubled n-1 times, at most BackoffMax, with up to half of it taken off at
// random so that retries spread out.
func (o *Outbox) backoff(n int) time.Duration {
	return retryDelay(o.opt.BackoffBase, o.opt.BackoffMax, n)
}

// retryDelay is the wait before attempt n+1 after n failures: base
// doubled n-1 times, at most ceiling, with up to half of it taken off at
// random so that retries spread out.
func retryDelay(base, ceiling time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d - rand.N(d/2+1)
}
