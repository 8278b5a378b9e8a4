package lockout

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/templates"
)

// Store is what the lockout watch needs from the store; its leases keep
// the watch to one runner.
type Store interface {
	RecordLockout(ctx context.Context, username string, lockedAt, now time.Time) (bool, error)
	PurgeLockouts(ctx context.Context, now time.Time) (int, error)
	MonitorCursor(ctx context.Context, name string) ([]byte, error)
	SetMonitorCursor(ctx context.Context, name string, cursor []byte) error
	Enrollment(ctx context.Context, username string) (enroll.Enrollment, error)
	OptedOut(ctx context.Context, phone string) (bool, error)
	EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
	jobs.LeaseStore
}

// Sealer seals message bodies for the outbox (enroll.Sealer).
type Sealer interface {
	Seal(plain []byte, purpose string) []byte
}

// Catalog is the message catalog (templates.Catalog): the alert texts
// and the wording of the storm window.
type Catalog interface {
	Text(lang, key string, args map[string]string) string
	Plural(lang, key string, n int, args map[string]string) string
}

// Alerter mails the admins (gateway.AdminAlerts): AlertOnce sends mail
// name to every recipient not in done and returns those it told.
type Alerter interface {
	AlertOnce(ctx context.Context, name string, data map[string]string, done map[string]bool) ([]string, error)
}

// Deps are what the watch works with.
type Deps struct {
	Scanner directory.LockoutScanner
	Store   Store
	Sealer  Sealer
	Catalog Catalog
	// Alerts mail the admins about a storm; nil means mail is off
	// (storms are then only audited and logged).
	Alerts Alerter
	// Notify wakes the outbox worker; may be nil.
	Notify func()
	Log    *slog.Logger // may be nil
	// Node is this process's node ID, the holder of the watch's lease
	// (default jobs.NodeID()).
	Node string
}

// Options tune the watch; zero fields take the defaults.
type Options struct {
	Now func() time.Time // default time.Now
	// FullSweepEvery is how often a full sweep replaces the incremental
	// scan, which catches anything an incremental scan could miss
	// (default 1h). The first scan is a full one when there is no cursor.
	FullSweepEvery time.Duration
	// MaxAge: a lockout that happened longer ago than this when it is
	// first seen is recorded and audited ("lockout", outcome "stale") but
	// neither texted nor counted for storms, so that a first start, or a
	// start after a long outage, does not text about old lockouts
	// (default 1h).
	MaxAge time.Duration
	// Language of the admin mails and of texts to enrollments without one
	// (default "en": the `language` setting).
	Language string
	// Location is the time zone of the times in texts and mails
	// (default the server's).
	Location *time.Location
}

// lockoutCursorName is the store key of the directory scan cursor.
const lockoutCursorName = "lockout"

// leaseName is the name of the watch's lease in the store.
const leaseName = "lockout-watch"

// lockoutPurpose is the outbox purpose of lockout alerts.
const lockoutPurpose = "lockout"

// Watch is the lockout monitor: every lockout.poll_interval it asks
// the directory for accounts locked since the last scan, and texts each
// enrolled, active user one alert per lockout event ("Your account jdoe was
// locked at 10:42. Reply UNLOCK ..."), unless a lockout storm holds the
// texts back (lockout_storm.go), in which case the admins are emailed once.
//
// Each event is handled once, also across restarts: RecordLockout, checked
// before anything is sent, remembers the events, and the scan cursor is
// stored once the events it covers are handled. An event is recorded just
// before its text is queued, so a crash between the two loses that one
// text rather than sending it twice.
//
// Only one watch runs per store at a time, whatever the number of
// instances: Run holds the store lease "lockout-watch" while it polls.
type Watch struct {
	cfg     Config
	scanner directory.LockoutScanner
	store   Store
	sealer  Sealer
	alerts  Alerter
	msgs    Catalog
	notify  func()
	log     *slog.Logger
	opt     Options
	lease   jobs.Lease

	mu       sync.Mutex // one poll at a time; guards the fields below
	loaded   bool
	cursor   []byte
	lastFull time.Time
	storm    stormState
}

// NewWatch wires the watch.
func NewWatch(cfg Config, d Deps, opt Options) *Watch {
	def := DefaultConfig()
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = def.PollInterval
	}
	if cfg.StormThreshold < 1 {
		cfg.StormThreshold = def.StormThreshold
	}
	if cfg.StormWindow <= 0 {
		cfg.StormWindow = def.StormWindow
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.FullSweepEvery <= 0 {
		opt.FullSweepEvery = time.Hour
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = time.Hour
	}
	if opt.Language == "" {
		opt.Language = "en"
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Notify == nil {
		d.Notify = func() {}
	}
	return &Watch{cfg: cfg, scanner: d.Scanner, store: d.Store, sealer: d.Sealer, alerts: d.Alerts, msgs: d.Catalog,
		notify: d.Notify, log: d.Log, opt: opt, lease: jobs.Lease{Store: d.Store, Node: d.Node}}
}

// Run polls until ctx ends, then returns nil; with lockout.enabled off it
// returns nil at once. A failed poll (directory or store trouble) is
// logged and tried again at the next interval. While another run holds
// the watch's lease, in this process or another, Run returns an error
// wrapping jobs.ErrRunning at once.
func (w *Watch) Run(ctx context.Context) error {
	if !w.cfg.Enabled {
		w.log.InfoContext(ctx, "lockout watch: off (lockout.enabled is false)")
		return nil
	}
	return w.lease.Hold(ctx, leaseName, w.run)
}

func (w *Watch) run(ctx context.Context) error {
	failures := 0
	for {
		err := w.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			// The first failure is an error; while it lasts, warnings.
			level := slog.LevelWarn
			if failures == 1 {
				level = slog.LevelError
			}
			w.log.Log(ctx, level, "lockout watch: poll failed; trying again at the next interval",
				"err", err, "failures", failures, "interval", w.cfg.PollInterval)
		} else if failures > 0 {
			w.log.InfoContext(ctx, "lockout watch: polling again", "after_failures", failures)
			failures = 0
		}
		t := time.NewTimer(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Poll runs one poll, which Run does every poll interval: scan, handle the
// new lockouts, store the cursor, end a quiet storm, send a pending storm
// mail. On error the cursor is not advanced, so the next poll sees the
// same lockouts again (those already handled are recognised).
func (w *Watch) Poll(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.opt.Now()
	if !w.loaded {
		if err := w.load(ctx, now); err != nil {
			return err
		}
	}
	full := w.cursor == nil || now.Sub(w.lastFull) >= w.opt.FullSweepEvery
	events, next, stats, err := w.scanner.ScanLockouts(ctx, w.cursor, full)
	if err != nil {
		return fmt.Errorf("scan the directory for lockouts: %w", err)
	}
	w.log.DebugContext(ctx, "lockout watch: scanned", "full", stats.Full, "entries_read", stats.EntriesRead,
		"took", stats.Took, "events", len(events))
	before := w.storm.encode()
	handleErr := w.handle(ctx, events, now)
	ended, endedCount := w.storm.quiet(now, w.cfg.StormWindow)
	if ended {
		w.stormEnded(ctx, now, endedCount)
	}
	if w.storm.MailPending {
		w.sendStormMail(ctx, now)
	}
	if after := w.storm.encode(); !bytes.Equal(before, after) {
		if err := w.store.SetMonitorCursor(ctx, stormStateName, after); err != nil {
			return errors.Join(handleErr, fmt.Errorf("store the storm state: %w", err))
		}
	}
	if handleErr != nil {
		return handleErr
	}
	if !bytes.Equal(next, w.cursor) {
		if err := w.store.SetMonitorCursor(ctx, lockoutCursorName, next); err != nil {
			return fmt.Errorf("store the scan cursor: %w", err)
		}
		w.cursor = next
	}
	if full {
		w.lastFull = now
		if n, err := w.store.PurgeLockouts(ctx, now); err != nil {
			w.log.WarnContext(ctx, "lockout watch: cannot purge old lockout events", "err", err)
		} else if n > 0 {
			w.log.DebugContext(ctx, "lockout watch: purged old lockout events", "count", n)
		}
	}
	return nil
}

// load reads the cursor and the storm state kept by an earlier run.
func (w *Watch) load(ctx context.Context, now time.Time) error {
	cursor, err := w.store.MonitorCursor(ctx, lockoutCursorName)
	if err != nil {
		return fmt.Errorf("read the scan cursor: %w", err)
	}
	raw, err := w.store.MonitorCursor(ctx, stormStateName)
	if err != nil {
		return fmt.Errorf("read the storm state: %w", err)
	}
	storm, err := decodeStorm(raw)
	if err != nil {
		// Unreadable state must not stop the alerts: start afresh.
		w.log.ErrorContext(ctx, "lockout watch: the stored storm state is unreadable; starting afresh", "err", err)
	}
	w.cursor, w.storm, w.loaded = cursor, storm, true
	// A stored cursor means a full sweep ran before: the next one is due
	// FullSweepEvery from now.
	w.lastFull = now
	return nil
}

// news is one lockout seen for the first time, and what to do about it.
type news struct {
	ev       directory.LockoutEvent
	at       time.Time // LockedAt, no later than the poll
	enr      *enroll.Enrollment
	optedOut bool
	stale    bool
	held     bool // held back by a storm
}

// handle records the events and acts on the new ones. On a store failure
// it still acts on the events it recorded, then returns the error.
func (w *Watch) handle(ctx context.Context, events []directory.LockoutEvent, now time.Time) error {
	// Read first, so that a failed read leaves the events unrecorded, to be
	// seen again by the next poll.
	var cands []news
	for _, ev := range events {
		if ev.User.Username == "" || ev.LockedAt.IsZero() {
			w.log.WarnContext(ctx, "lockout watch: the scanner reported a lockout without an account or a time; ignored",
				"dn", ev.User.DN)
			continue
		}
		n := news{ev: ev, at: ev.LockedAt}
		if n.at.After(now) {
			n.at = now // the directory's clock is ahead
		}
		n.stale = now.Sub(n.at) > w.opt.MaxAge
		e, err := w.store.Enrollment(ctx, ev.User.Username)
		switch {
		case errors.Is(err, enroll.ErrNotFound):
		case err != nil:
			return fmt.Errorf("look up the enrollment of %s: %w", ev.User.Username, err)
		default:
			n.enr = &e
			if e.State == enroll.StateActive {
				if n.optedOut, err = w.store.OptedOut(ctx, e.Phone); err != nil {
					return fmt.Errorf("read the opt-out of %s: %w", ev.User.Username, err)
				}
			}
		}
		cands = append(cands, n)
	}
	var fresh []news
	var recordErr error
	for _, n := range cands {
		first, err := w.store.RecordLockout(ctx, n.ev.User.Username, n.ev.LockedAt, now)
		if err != nil {
			recordErr = fmt.Errorf("record the lockout of %s: %w", n.ev.User.Username, err)
			break
		}
		if first {
			fresh = append(fresh, n)
		}
	}
	w.account(ctx, fresh, now)
	for _, n := range fresh {
		w.act(ctx, n, now)
	}
	return recordErr
}

// account runs the storm accounting over the new lockouts of one scan, in
// the order they happened, and marks those a storm holds back.
func (w *Watch) account(ctx context.Context, fresh []news, now time.Time) {
	order := make([]int, 0, len(fresh))
	for i, n := range fresh {
		if !n.stale {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return fresh[a].at.Compare(fresh[b].at) })
	for _, i := range order {
		n := &fresh[i]
		r := w.storm.add(stormEntry{Username: n.ev.User.Username, DisplayName: n.ev.User.DisplayName, At: n.at, batch: i},
			now, w.cfg.StormThreshold, w.cfg.StormWindow)
		if r.ended {
			w.stormEnded(ctx, now, r.endedCount)
		}
		n.held = r.suppressed
		for _, j := range r.held {
			fresh[j].held = true
		}
		if r.started {
			w.stormStarted(ctx, now)
		}
	}
	// The scan is accounted for: the storm's accounts are known, and every
	// retry of the mail will list the same ones.
	if w.storm.MailPending && w.storm.MailData == nil {
		w.storm.MailData = w.storm.mailData(w.msgs, w.opt.Language, w.opt.Location, w.cfg.StormWindow)
	}
	for i := range w.storm.Recent {
		w.storm.Recent[i].batch = -1
	}
	for i := range w.storm.Accounts {
		w.storm.Accounts[i].batch = -1
	}
}

// act texts, or audits why not, one new lockout.
func (w *Watch) act(ctx context.Context, n news, now time.Time) {
	u := n.ev.User
	ev := enroll.Event{Time: now, Actor: "system", Username: u.Username,
		Detail: "locked at " + n.ev.LockedAt.UTC().Format(time.RFC3339)}
	if n.enr != nil {
		ev.Phone = n.enr.Phone
	}
	switch {
	case n.stale:
		ev.Action, ev.Outcome = "lockout", "stale"
	case n.held:
		ev.Action, ev.Outcome = "lockout_storm_suppressed", "suppressed"
	case n.enr == nil:
		ev.Action, ev.Outcome = "lockout", "not_enrolled"
	case n.enr.State != enroll.StateActive:
		ev.Action, ev.Outcome = "lockout", "not_active"
		ev.Detail += "; enrollment " + string(n.enr.State)
	case n.optedOut:
		ev.Action, ev.Outcome = "lockout_alert", "opted_out"
	default:
		ev.Action, ev.Outcome = "lockout_alert", "ok"
		id, err := w.queueAlert(ctx, *n.enr, n.ev, now)
		if err != nil {
			ev.Outcome = "error"
			ev.Detail += "; " + err.Error()
			w.log.ErrorContext(ctx, "lockout watch: cannot queue the alert", "username", u.Username, "err", err)
		} else {
			ev.Detail += fmt.Sprintf("; message %d", id)
		}
	}
	w.audit(ctx, ev)
}

// queueAlert puts the alert text in the outbox and wakes the worker.
func (w *Watch) queueAlert(ctx context.Context, e enroll.Enrollment, ev directory.LockoutEvent, now time.Time) (uint64, error) {
	lang := cmp.Or(e.Language, w.opt.Language)
	body := w.msgs.Text(lang, "sms.lockout.alert", map[string]string{
		"username": ev.User.Username,
		"time":     ev.LockedAt.In(w.opt.Location).Format("15:04"),
	})
	return gateway.QueueSMS(ctx, w.store, w.sealer, w.notify, enroll.OutboundMessage{To: e.Phone, Language: lang,
		Purpose: lockoutPurpose, Username: e.Username, Priority: enroll.PriorityHigh}, body, now)
}

func (w *Watch) audit(ctx context.Context, ev enroll.Event) {
	if _, err := w.store.AppendAudit(ctx, ev); err != nil {
		w.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "outcome", ev.Outcome, "err", err)
	}
}

// maxAuditAccounts bounds the accounts named in a storm's audit detail.
const maxAuditAccounts = 50

func (w *Watch) stormStarted(ctx context.Context, now time.Time) {
	s := &w.storm
	names := make([]string, 0, min(len(s.Accounts), maxAuditAccounts))
	for _, a := range s.Accounts[:min(len(s.Accounts), maxAuditAccounts)] {
		names = append(names, a.Username)
	}
	list := strings.Join(names, ", ")
	if len(s.Accounts) > maxAuditAccounts {
		list += ", …"
	}
	w.log.WarnContext(ctx, "lockout watch: lockout storm; lockout texts paused", "accounts", s.Count,
		"window", w.cfg.StormWindow, "threshold", w.cfg.StormThreshold)
	w.audit(ctx, enroll.Event{Time: now, Actor: "system", Action: "lockout_storm", Outcome: "started",
		Detail: fmt.Sprintf("more than %d accounts locked within %s; lockout texts paused: %s",
			w.cfg.StormThreshold, w.cfg.StormWindow, list)})
}

func (w *Watch) stormEnded(ctx context.Context, now time.Time, count int) {
	w.log.InfoContext(ctx, "lockout watch: lockout storm over; lockout texts resume", "lockouts", count)
	w.audit(ctx, enroll.Event{Time: now, Actor: "system", Action: "lockout_storm_ended", Outcome: "ok",
		Detail: fmt.Sprintf("%d lockouts during the storm; no new lockout for %s; lockout texts resume", count, w.cfg.StormWindow)})
}

// sendStormMail tries the pending storm mail: each admin gets it once,
// and an admin not reached is tried again at the next polls.
func (w *Watch) sendStormMail(ctx context.Context, now time.Time) {
	s := &w.storm
	if s.MailData == nil { // cannot happen: set when the storm starts
		s.MailData = s.mailData(w.msgs, w.opt.Language, w.opt.Location, w.cfg.StormWindow)
	}
	done := make(map[string]bool, len(s.MailDone))
	for _, a := range s.MailDone {
		done[a] = true
	}
	var sent []string
	err := error(gateway.ErrMailOff)
	if w.alerts != nil {
		sent, err = w.alerts.AlertOnce(ctx, templates.MailLockoutStorm, s.MailData, done)
	}
	s.MailDone = append(s.MailDone, sent...)
	s.MailTries++
	// Mail off and no one to tell are not mended by trying again.
	final := err == nil || gateway.AlertOutcome(err) != "error" || s.MailTries >= maxStormMailTries
	switch {
	case err == nil:
		w.audit(ctx, enroll.Event{Time: now, Actor: "system", Action: "lockout_storm_mail", Outcome: "ok",
			Detail: fmt.Sprintf("%d admins emailed", len(s.MailDone))})
	case final:
		w.log.ErrorContext(ctx, "lockout watch: the admins could not be emailed about the lockout storm", "err", err)
		w.audit(ctx, enroll.Event{Time: now, Actor: "system", Action: "lockout_storm_mail",
			Outcome: gateway.AlertOutcome(err), Detail: err.Error()})
	default:
		w.log.WarnContext(ctx, "lockout watch: storm mail failed; trying again at the next poll", "err", err, "tries", s.MailTries)
	}
	if final {
		s.MailPending, s.MailData, s.MailDone, s.MailTries = false, nil, nil, 0
	}
}
