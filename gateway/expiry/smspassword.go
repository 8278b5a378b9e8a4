package expiry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
)

// Self-expiring SMS passwords (password.sms_password_ttl).
//
// A password texted back to a RESET must be changed at next logon. The
// reset (the SMS conversation, gateway) records a check in the store: username, DN, reset time and due
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

// SMSPasswordStore is what the self-expiry worker needs from the store;
// its leases keep the worker to one runner.
type SMSPasswordStore interface {
	DueSMSPasswordChecks(ctx context.Context, now time.Time, limit int) ([]enroll.SMSPasswordCheck, error)
	SMSPasswordCheck(ctx context.Context, username string) (enroll.SMSPasswordCheck, error)
	RescheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) (bool, error)
	FinishSMSPasswordCheck(ctx context.Context, username string, resetAt time.Time) (bool, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
	jobs.LeaseStore
}

// Directory is what the worker needs from the directory.
type Directory interface {
	FindUser(ctx context.Context, username string) (directory.User, error)
	SetPassword(ctx context.Context, u directory.User, password string, opt directory.SetPasswordOptions) error
}

// PasswordGenerator makes passwords that meet the directory's policy.
type PasswordGenerator interface {
	Generate(u directory.User) (string, error)
}

// SMSPasswordDeps are what the worker works with.
type SMSPasswordDeps struct {
	Store     SMSPasswordStore
	Directory Directory
	Generator PasswordGenerator
	Log       *slog.Logger // may be nil
	// Node is this process's node ID, the holder of the worker's lease
	// (default jobs.NodeID()).
	Node string
}

// smsPasswordLease is the name of the worker's lease in the store.
const smsPasswordLease = "sms-password-expiry"

// smsExpiryAction is the audit action of the worker (and of the schedule,
// in gateway).
const smsExpiryAction = "sms_password_expired"

// SMSPasswordOptions tune the worker; zero fields take the defaults.
type SMSPasswordOptions struct {
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

func (o *SMSPasswordOptions) defaults() {
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

// SMSPasswords is the worker that re-randomises unused SMS passwords.
// Only one runs per store at a time, whatever the number of instances: Run
// holds the store lease "sms-password-expiry".
type SMSPasswords struct {
	store SMSPasswordStore
	dir   Directory
	gen   PasswordGenerator
	log   *slog.Logger
	opt   SMSPasswordOptions
	lease jobs.Lease
}

// NewSMSPasswords wires the worker.
func NewSMSPasswords(d SMSPasswordDeps, opt SMSPasswordOptions) *SMSPasswords {
	opt.defaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &SMSPasswords{store: d.Store, dir: d.Directory, gen: d.Generator, log: d.Log, opt: opt,
		lease: jobs.Lease{Store: d.Store, Node: d.Node}}
}

// Run sweeps until ctx ends, then returns nil. It runs whatever the TTL:
// checks recorded while it was on are still carried out after it was
// turned off. While another run holds the worker's lease, in this process
// or another, Run returns an error wrapping jobs.ErrRunning at once.
func (x *SMSPasswords) Run(ctx context.Context) error {
	return x.lease.Hold(ctx, smsPasswordLease, x.run)
}

func (x *SMSPasswords) run(ctx context.Context) error {
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
		if !jobs.Sleep(ctx, wait) {
			return nil
		}
	}
}

// Sweep carries out the checks due now. It stops at the first directory
// outage or store failure and returns it; the checks not done stay due.
func (x *SMSPasswords) Sweep(ctx context.Context) error {
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
func (x *SMSPasswords) check(ctx context.Context, ch enroll.SMSPasswordCheck, now time.Time) error {
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
func (x *SMSPasswords) rerandomise(ctx context.Context, u directory.User) error {
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
func (x *SMSPasswords) finish(ctx context.Context, ch enroll.SMSPasswordCheck, now time.Time, outcome, detail string) error {
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
func (x *SMSPasswords) retry(ctx context.Context, ch enroll.SMSPasswordCheck, now time.Time, cause error) error {
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

func (x *SMSPasswords) audit(ctx context.Context, now time.Time, username, outcome, detail string) {
	ev := enroll.Event{Time: now, Actor: "system", Action: smsExpiryAction, Username: username, Outcome: outcome, Detail: detail}
	if _, err := x.store.AppendAudit(ctx, ev); err != nil {
		x.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "outcome", outcome, "err", err)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
