package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// Self-expiring SMS passwords (password.sms_password_ttl).
//
// A password texted back to a RESET must be changed at next logon. The
// reset records a check in the store: username, DN, reset time and due
// time (reset + TTL), never the password. When the check is due, the
// worker reads the account afresh: a password still to be changed (AD
// pwdLastSet still 0, OpenLDAP pwdReset still TRUE: directory.User's
// MustChange) has not been used, and is replaced by a random one that is
// sent nowhere, so an SMS read late or by someone else is worthless. A user
// who changed the password in time is left alone. A new RESET replaces the
// pending check. While the directory is down the checks stay in the store
// and the worker tries again with backoff; the schedule survives restarts.
//
// A RESET texted in the very moment its previous password's check runs
// can lose the race (the check re-reads the store just before it writes
// the directory, which narrows the window to one LDAP write): the user
// then texts RESET again.

// SMSExpiryStore is what the self-expiry worker needs from the store.
type SMSExpiryStore interface {
	DueSMSPasswordChecks(ctx context.Context, now time.Time, limit int) ([]enroll.SMSPasswordCheck, error)
	SMSPasswordCheck(ctx context.Context, username string) (enroll.SMSPasswordCheck, error)
	RescheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) (bool, error)
	FinishSMSPasswordCheck(ctx context.Context, username string, resetAt time.Time) (bool, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

// smsPasswordScheduler is the part of the webhook's store that records a
// check after a reset (enroll.SMSPasswordStore).
type smsPasswordScheduler interface {
	ScheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) error
}

// smsExpiryAction is the audit action of the worker and of the schedule.
const smsExpiryAction = "sms_password_expired"

// scheduleTimeout bounds recording a check: it runs after the directory
// work, which may have used up the reply's budget.
const scheduleTimeout = 5 * time.Second

// scheduleExpiry records the check of the password just texted to u, when
// Settings.Password asks for one (a must-change password and a TTL).
func (c *conversation) scheduleExpiry(u directory.User) {
	ttl := c.w.set.SMSPasswordTTL
	if ttl <= 0 || !c.w.set.Password.MustChange {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), scheduleTimeout)
	defer cancel()
	err := errors.New("the store keeps no SMS password schedule")
	if s, ok := c.w.store.(smsPasswordScheduler); ok {
		err = s.ScheduleSMSPasswordCheck(ctx, enroll.SMSPasswordCheck{Username: u.Username, DN: u.DN,
			ResetAt: c.now, Due: c.now.Add(ttl)})
	}
	if err != nil {
		c.w.log.ErrorContext(ctx, "the texted password will not expire: its check could not be recorded",
			"username", u.Username, "err", err)
		c.audit(smsExpiryAction, u.Username, "error", "not scheduled: "+err.Error())
	}
}

// SMSExpiryOptions tune the worker; zero fields take the defaults.
type SMSExpiryOptions struct {
	Now func() time.Time // default time.Now
	// Poll is how often the schedule is read (default 30s).
	Poll time.Duration
	// BackoffMax is the longest wait between sweeps while the directory is
	// down; the wait doubles from Poll after each failed sweep (default 10m).
	BackoffMax time.Duration
	// RetryBase is the wait after a failed check of one account (the
	// directory answered but refused), doubled after each (default 1m);
	// after MaxAttempts failed checks it is given up (default 8).
	RetryBase   time.Duration
	MaxAttempts int
	// PolicyRetries is how many random passwords are tried when the
	// directory refuses one (default 3).
	PolicyRetries int
	// Batch is how many due checks one read of the store returns (default 100).
	Batch int
}

func (o *SMSExpiryOptions) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = 30 * time.Second
	}
	if o.BackoffMax < o.Poll {
		o.BackoffMax = max(10*time.Minute, o.Poll)
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.PolicyRetries <= 0 {
		o.PolicyRetries = 3
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
}

// SMSExpiry is the worker that re-randomises unused SMS passwords. Only
// one may run per store.
type SMSExpiry struct {
	store   SMSExpiryStore
	dir     Directory
	gen     PasswordGenerator
	log     *slog.Logger
	opt     SMSExpiryOptions
	running atomic.Bool
}

// NewSMSExpiry wires the worker; log may be nil.
func NewSMSExpiry(store SMSExpiryStore, dir Directory, gen PasswordGenerator, log *slog.Logger, opt SMSExpiryOptions) *SMSExpiry {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SMSExpiry{store: store, dir: dir, gen: gen, log: log, opt: opt}
}

var errSMSExpiryRunning = errors.New("gateway: the SMS password expiry worker is already running")

// Run sweeps until ctx ends, then returns nil. It runs whatever the TTL:
// checks recorded while it was on are still carried out after it was
// turned off.
func (x *SMSExpiry) Run(ctx context.Context) error {
	if !x.running.CompareAndSwap(false, true) {
		return errSMSExpiryRunning
	}
	defer x.running.Store(false)
	failures := 0
	for {
		err := x.Sweep(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := x.opt.Poll
		if err != nil {
			failures++
			wait = min(x.opt.Poll<<min(failures, 16), x.opt.BackoffMax)
			level := slog.LevelWarn
			if failures == 1 {
				level = slog.LevelError
			}
			x.log.Log(ctx, level, "SMS password expiry: sweep failed; the checks are kept and tried again",
				"err", err, "failures", failures, "retry_in", wait)
		} else if failures > 0 {
			x.log.InfoContext(ctx, "SMS password expiry: sweeping again", "after_failures", failures)
			failures = 0
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Sweep carries out the checks due now. It stops at the first directory
// outage or store failure and returns it; the checks not done stay due.
func (x *SMSExpiry) Sweep(ctx context.Context) error {
	now := x.opt.Now()
	for {
		due, err := x.store.DueSMSPasswordChecks(ctx, now, x.opt.Batch)
		if err != nil {
			return fmt.Errorf("read the SMS password schedule: %w", err)
		}
		for _, ch := range due {
			if err := x.check(ctx, ch, now); err != nil {
				return err
			}
		}
		if len(due) < x.opt.Batch {
			return nil
		}
	}
}

// unavailable reports a directory failure that says nothing about the
// account: the check is tried again later as it is.
func unavailable(ctx context.Context, err error) bool {
	return errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrTLS) || ctx.Err() != nil
}

// check carries out one due check; it returns an error only for a
// directory outage or a store failure. Every check it finishes is
// removed from the schedule (or moved on) before the next one.
func (x *SMSExpiry) check(ctx context.Context, ch enroll.SMSPasswordCheck, now time.Time) error {
	u, err := x.dir.FindUser(ctx, ch.Username)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return x.finish(ctx, ch, now, "error", "the account is no longer in the directory")
	case unavailable(ctx, err):
		return fmt.Errorf("look up %s: %w", ch.Username, err)
	case err != nil:
		return x.retry(ctx, ch, now, fmt.Errorf("look up: %w", err))
	case !strings.EqualFold(u.DN, ch.DN):
		return x.finish(ctx, ch, now, "error", "the account's DN changed since the reset (moved, renamed or replaced); left alone")
	case !u.MustChange:
		return x.finish(ctx, ch, now, "changed_in_time", "reset at "+stamp(ch.ResetAt))
	}
	// A new RESET may have replaced the check while the directory was read:
	// its password is the one in force now, and its own check will come.
	cur, err := x.store.SMSPasswordCheck(ctx, ch.Username)
	if errors.Is(err, enroll.ErrNotFound) || (err == nil && !cur.ResetAt.Equal(ch.ResetAt)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("re-read the SMS password check of %s: %w", ch.Username, err)
	}
	err = x.rerandomise(ctx, u)
	switch {
	case err == nil:
		return x.finish(ctx, ch, now, "ok", fmt.Sprintf("reset at %s, still unused after %s; replaced by a random password sent nowhere",
			stamp(ch.ResetAt), ch.Due.Sub(ch.ResetAt)))
	case errors.Is(err, directory.ErrPartial):
		// The random password is in force; only a follow-up flag failed.
		return x.finish(ctx, ch, now, "ok", "replaced by a random password sent nowhere, but: "+err.Error())
	case unavailable(ctx, err):
		return fmt.Errorf("re-randomise %s: %w", ch.Username, err)
	}
	return x.retry(ctx, ch, now, fmt.Errorf("re-randomise: %w", err))
}

// rerandomise sets a random password nobody learns, still to be changed at
// next logon, without unlocking the account.
func (x *SMSExpiry) rerandomise(ctx context.Context, u directory.User) error {
	for attempt := 1; ; attempt++ {
		password, err := x.gen.Generate(u)
		if err != nil {
			return fmt.Errorf("password generation: %w", err)
		}
		err = x.dir.SetPassword(ctx, u, password, directory.SetPasswordOptions{MustChange: true})
		if !errors.Is(err, directory.ErrPolicy) || attempt >= x.opt.PolicyRetries {
			return err
		}
	}
}

// finish removes the check and audits its outcome.
func (x *SMSExpiry) finish(ctx context.Context, ch enroll.SMSPasswordCheck, now time.Time, outcome, detail string) error {
	if _, err := x.store.FinishSMSPasswordCheck(ctx, ch.Username, ch.ResetAt); err != nil {
		return fmt.Errorf("finish the SMS password check of %s: %w", ch.Username, err)
	}
	x.audit(ctx, now, ch.Username, outcome, detail)
	if outcome == "error" {
		x.log.ErrorContext(ctx, "SMS password expiry: check given up", "username", ch.Username, "reason", detail)
	}
	return nil
}

// retry moves a failed check on with backoff, or gives it up after
// MaxAttempts.
func (x *SMSExpiry) retry(ctx context.Context, ch enroll.SMSPasswordCheck, now time.Time, cause error) error {
	ch.Attempts++
	if ch.Attempts >= x.opt.MaxAttempts {
		return x.finish(ctx, ch, now, "error", fmt.Sprintf("given up after %d attempts: %v", ch.Attempts, cause))
	}
	ch.Due = now.Add(x.opt.RetryBase << min(ch.Attempts-1, 16))
	if _, err := x.store.RescheduleSMSPasswordCheck(ctx, ch); err != nil {
		return fmt.Errorf("reschedule the SMS password check of %s: %w", ch.Username, err)
	}
	x.log.WarnContext(ctx, "SMS password expiry: check failed; trying again", "username", ch.Username,
		"attempt", ch.Attempts, "next", ch.Due, "err", cause)
	x.audit(ctx, now, ch.Username, "error", fmt.Sprintf("attempt %d: %v; next attempt at %s", ch.Attempts, cause, stamp(ch.Due)))
	return nil
}

func (x *SMSExpiry) audit(ctx context.Context, now time.Time, username, outcome, detail string) {
	ev := enroll.Event{Time: now, Actor: "system", Action: smsExpiryAction, Username: username, Outcome: outcome, Detail: detail}
	if _, err := x.store.AppendAudit(ctx, ev); err != nil {
		x.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "outcome", outcome, "err", err)
	}
}

// sleep waits d, or less when ctx ends first; false when it did.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
