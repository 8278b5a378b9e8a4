package expiry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// Password-expiry reminders (reminders.days).
//
// A scan, at start and then every few hours within the sending hours, reads
// the expiry of every active enrollment's password from the directory and
// texts the user when the password expires within one of the configured
// days: the smallest such stage only (a first scan 2 days before expiry
// sends the 3-day reminder, not also the 7- and 14-day ones). Each stage
// goes out once per user and expiry date, remembered in the store, so a
// restart does not repeat it; a new password has a new expiry date and
// starts the stages again. The reminder is recorded just before it is
// queued, so a crash between the two loses it rather than sending it twice.
// Reminders queue at low priority, behind resets, codes and alerts, and
// the outbox paces them at sms.rate_per_second. Opted-out (STOP) phones,
// non-active enrollments, passwords that never expire or must be changed
// anyway, and passwords already expired get nothing.

// ReminderStore is what the reminders need from the store; its leases
// keep the reminders to one runner.
type ReminderStore interface {
	Enrollments(ctx context.Context) ([]enroll.Enrollment, error)
	OptedOut(ctx context.Context, phone string) (bool, error)
	RecordReminder(ctx context.Context, username string, expires time.Time, stage int, now time.Time) (bool, error)
	PurgeReminders(ctx context.Context, now time.Time) (int, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
	jobs.LeaseStore
}

// Outbox queues the reminder texts (outbox.Queue: it seals the body and
// wakes the worker).
type Outbox interface {
	Enqueue(ctx context.Context, m enroll.OutboundMessage, body string) (uint64, error)
}

var _ Outbox = (*outbox.Queue)(nil)

// Catalog is the message catalog (templates.Catalog).
type Catalog interface {
	Text(lang, key string, args map[string]string) string
}

// ReminderDeps are what the reminders work with.
type ReminderDeps struct {
	Directory directory.PasswordExpiryReader
	Store     ReminderStore
	Outbox    Outbox
	Catalog   Catalog
	Log       *slog.Logger // may be nil
	// Node is this process's node ID, the holder of the reminders' lease
	// (default jobs.NodeID()).
	Node string
}

// reminderLease is the name of the reminders' lease in the store.
const reminderLease = "expiry-reminders"

// reminderPurpose is the outbox purpose and the audit action of reminders.
const reminderPurpose = "reminder"

// ReminderOptions tune the reminders; zero fields take the defaults.
type ReminderOptions struct {
	Now func() time.Time // default time.Now
	// Every is the time between scans (default 4h).
	Every time.Duration
	// SendFrom and SendUntil bound the time of day, in Location, at which
	// Run scans, so that nobody is texted at night (default 9:00 to 20:00;
	// both zero means the default).
	SendFrom, SendUntil time.Duration
	// Location is the time zone of the sending hours (default the server's).
	Location *time.Location
	// Language of texts to enrollments without one (default "en").
	Language string
}

func (o *ReminderOptions) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every <= 0 {
		o.Every = 4 * time.Hour
	}
	if o.SendFrom == 0 && o.SendUntil == 0 {
		o.SendFrom, o.SendUntil = 9*time.Hour, 20*time.Hour
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Language == "" {
		o.Language = "en"
	}
}

// Reminders texts users before their directory password expires. Only one
// runs per store at a time, whatever the number of instances: Run holds
// the store lease "expiry-reminders".
type Reminders struct {
	days   []int // ascending
	dir    directory.PasswordExpiryReader
	store  ReminderStore
	outbox Outbox
	msgs   Catalog
	log    *slog.Logger
	opt    ReminderOptions
	lease  jobs.Lease
}

// NewReminders wires the reminders.
func NewReminders(cfg RemindersConfig, d ReminderDeps, opt ReminderOptions) *Reminders {
	opt.defaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	days := slices.Clone(cfg.Days)
	slices.Sort(days)
	return &Reminders{days: slices.Compact(days), dir: d.Directory, store: d.Store, outbox: d.Outbox, msgs: d.Catalog,
		log: d.Log, opt: opt, lease: jobs.Lease{Store: d.Store, Node: d.Node}}
}

// reminderRetry is the wait after a failed scan (the directory was down).
const reminderRetry = 15 * time.Minute

// Run scans at start and every ReminderOptions.Every, within the sending
// hours, until ctx ends; then it returns nil. With reminders.days empty it
// returns nil at once. While another run holds the reminders' lease, in
// this process or another, Run returns an error wrapping jobs.ErrRunning
// at once.
func (r *Reminders) Run(ctx context.Context) error {
	if len(r.days) == 0 {
		r.log.InfoContext(ctx, "expiry reminders: off (reminders.days is empty)")
		return nil
	}
	return r.lease.Hold(ctx, reminderLease, r.run)
}

func (r *Reminders) run(ctx context.Context) error {
	for {
		wait := r.opt.Every
		if r.sendingHours(r.opt.Now()) {
			if err := r.Scan(ctx); err != nil && ctx.Err() == nil {
				wait = min(wait, reminderRetry)
				r.log.ErrorContext(ctx, "expiry reminders: scan failed; trying again", "err", err, "retry_in", wait)
			}
		}
		if !jobs.Sleep(ctx, wait) {
			return nil
		}
	}
}

func (r *Reminders) sendingHours(now time.Time) bool {
	local := now.In(r.opt.Location)
	y, m, d := local.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, r.opt.Location)
	of := local.Sub(midnight)
	return of >= r.opt.SendFrom && of < r.opt.SendUntil
}

// Scan texts the reminders due now, whatever the time of day. A reminder
// that cannot be queued is audited as an error and not tried again.
func (r *Reminders) Scan(ctx context.Context) error {
	now := r.opt.Now()
	all, err := r.store.Enrollments(ctx)
	if err != nil {
		return fmt.Errorf("list enrollments: %w", err)
	}
	active := make(map[string]enroll.Enrollment)
	var usernames []string
	for _, e := range all {
		if e.State == enroll.StateActive {
			active[strings.ToLower(e.Username)] = e
			usernames = append(usernames, e.Username)
		}
	}
	if len(usernames) == 0 {
		return nil
	}
	expiries, err := r.dir.PasswordExpiries(ctx, usernames)
	if err != nil {
		return fmt.Errorf("read password expiry: %w", err)
	}
	var errs []error
	for _, pe := range expiries {
		e, ok := active[strings.ToLower(pe.Username)]
		if !ok {
			continue
		}
		if err := r.remind(ctx, e, pe, now); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if n, err := r.store.PurgeReminders(ctx, now); err != nil {
		r.log.WarnContext(ctx, "expiry reminders: cannot purge old reminders", "err", err)
	} else if n > 0 {
		r.log.DebugContext(ctx, "expiry reminders: purged old reminders", "count", n)
	}
	return errors.Join(errs...)
}

// stage is the reminder due for a password expiring in left: the smallest
// configured number of days it is within, or 0 for none.
func (r *Reminders) stage(left time.Duration) int {
	if left <= 0 {
		return 0 // already expired: the logon asks for a new password
	}
	for _, d := range r.days {
		if left <= time.Duration(d)*24*time.Hour {
			return d
		}
	}
	return 0
}

// remind sends e the reminder due for pe, if any and not sent yet; it
// returns an error only when the store fails.
func (r *Reminders) remind(ctx context.Context, e enroll.Enrollment, pe directory.PasswordExpiry, now time.Time) error {
	if pe.MustChange || pe.Expires.IsZero() {
		return nil
	}
	left := pe.Expires.Sub(now)
	stage := r.stage(left)
	if stage == 0 {
		return nil
	}
	first, err := r.store.RecordReminder(ctx, e.Username, pe.Expires, stage, now)
	if err != nil || !first {
		return err
	}
	ev := enroll.Event{Time: now, Actor: "system", Action: reminderPurpose, Username: e.Username, Phone: e.Phone,
		Outcome: "ok", Detail: fmt.Sprintf("stage %d days; password expires %s", stage, stamp(pe.Expires))}
	optedOut, err := r.store.OptedOut(ctx, e.Phone)
	switch {
	case err != nil:
		ev.Outcome, ev.Detail = "error", ev.Detail+"; read the opt-out: "+err.Error()
	case optedOut:
		ev.Outcome = "opted_out"
	default:
		if id, err := r.queue(ctx, e, pe, left, now); err != nil {
			ev.Outcome, ev.Detail = "error", ev.Detail+"; "+err.Error()
			r.log.ErrorContext(ctx, "expiry reminders: cannot queue the reminder", "username", e.Username, "err", err)
		} else {
			ev.Detail += fmt.Sprintf("; message %d", id)
		}
	}
	if _, err := r.store.AppendAudit(ctx, ev); err != nil {
		r.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "outcome", ev.Outcome, "err", err)
	}
	return nil
}

// queue puts the reminder in the outbox at low priority, due now.
func (r *Reminders) queue(ctx context.Context, e enroll.Enrollment, pe directory.PasswordExpiry, left time.Duration, now time.Time) (uint64, error) {
	lang := cmp.Or(e.Language, r.opt.Language)
	days := int((left + 24*time.Hour - 1) / (24 * time.Hour)) // whole days, rounded up
	key, args := "sms.reminder.expiry", map[string]string{"username": pe.Username, "days": strconv.Itoa(days)}
	if days <= 1 {
		key = "sms.reminder.expiry_1day"
	}
	return r.outbox.Enqueue(ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: e.Phone, Language: lang,
		Purpose: reminderPurpose, Username: e.Username, Priority: enroll.PriorityLow, CreatedAt: now}, r.msgs.Text(lang, key, args))
}
