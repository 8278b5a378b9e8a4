package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
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

// ReminderStore is what the reminders need from the store.
type ReminderStore interface {
	Enrollments(ctx context.Context) ([]enroll.Enrollment, error)
	OptedOut(ctx context.Context, phone string) (bool, error)
	RecordReminder(ctx context.Context, username string, expires time.Time, stage int, now time.Time) (bool, error)
	PurgeReminders(ctx context.Context, now time.Time) (int, error)
	EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

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
// may run per store.
type Reminders struct {
	days    []int // ascending
	dir     directory.PasswordExpiryReader
	store   ReminderStore
	sealer  BodySealer
	msgs    Catalog
	notify  func()
	log     *slog.Logger
	opt     ReminderOptions
	running atomic.Bool
}

// NewReminders wires the reminders; notify wakes the outbox worker and may
// be nil; log may be nil.
func NewReminders(cfg directory.RemindersConfig, dir directory.PasswordExpiryReader, store ReminderStore, sealer BodySealer,
	catalog Catalog, notify func(), log *slog.Logger, opt ReminderOptions) *Reminders {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if notify == nil {
		notify = func() {}
	}
	days := slices.Clone(cfg.Days)
	slices.Sort(days)
	return &Reminders{days: slices.Compact(days), dir: dir, store: store, sealer: sealer, msgs: catalog,
		notify: notify, log: log, opt: opt}
}

// reminderRetry is the wait after a failed scan (the directory was down).
const reminderRetry = 15 * time.Minute

var errRemindersRunning = errors.New("gateway: the expiry reminders are already running")

// Run scans at start and every ReminderOptions.Every, within the sending
// hours, until ctx ends; then it returns nil. With reminders.days empty it
// returns nil at once.
func (r *Reminders) Run(ctx context.Context) error {
	if len(r.days) == 0 {
		r.log.InfoContext(ctx, "expiry reminders: off (reminders.days is empty)")
		return nil
	}
	if !r.running.CompareAndSwap(false, true) {
		return errRemindersRunning
	}
	defer r.running.Store(false)
	for {
		wait := r.opt.Every
		if r.sendingHours(r.opt.Now()) {
			if err := r.Scan(ctx); err != nil && ctx.Err() == nil {
				wait = min(wait, reminderRetry)
				r.log.ErrorContext(ctx, "expiry reminders: scan failed; trying again", "err", err, "retry_in", wait)
			}
		}
		if !sleep(ctx, wait) {
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

// queue puts the reminder in the outbox at low priority and wakes the worker.
func (r *Reminders) queue(ctx context.Context, e enroll.Enrollment, pe directory.PasswordExpiry, left time.Duration, now time.Time) (uint64, error) {
	lang := cmp.Or(e.Language, r.opt.Language)
	days := int((left + 24*time.Hour - 1) / (24 * time.Hour)) // whole days, rounded up
	key, args := "sms.reminder.expiry", map[string]string{"username": pe.Username, "days": strconv.Itoa(days)}
	if days <= 1 {
		key = "sms.reminder.expiry_1day"
	}
	return queueSMS(ctx, r.store, r.sealer, r.notify, enroll.OutboundMessage{To: e.Phone, Language: lang,
		Purpose: reminderPurpose, Username: e.Username, Priority: enroll.PriorityLow}, r.msgs.Text(lang, key, args), now)
}

// messageQueue is where texts are queued (enroll.OutboxStore).
type messageQueue interface {
	EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error)
}

// queueSMS puts m, an SMS of text body, in the outbox, due now, and wakes
// the outbox worker; m gives the recipient, language, purpose, username
// and priority.
func queueSMS(ctx context.Context, store messageQueue, sealer BodySealer, notify func(), m enroll.OutboundMessage, body string, now time.Time) (uint64, error) {
	m.Kind, m.Status = enroll.KindSMS, enroll.StatusQueued
	m.Sealed = sealer.Seal([]byte(body), outboxSealPurpose)
	m.NextAttempt, m.CreatedAt, m.UpdatedAt = now, now, now
	id, err := store.EnqueueMessage(ctx, m)
	if err != nil {
		return 0, err
	}
	notify()
	return id, nil
}
