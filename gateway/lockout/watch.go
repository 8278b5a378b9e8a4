package lockout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/outbox"
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
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
	jobs.LeaseStore
}

// Outbox queues the alert texts (outbox.Queue: it seals the body and
// wakes the worker).
type Outbox interface {
	Enqueue(ctx context.Context, m enroll.OutboundMessage, body string) (uint64, error)
}

var _ Outbox = (*outbox.Queue)(nil)

// Catalog is the message catalog (templates.Catalog): the alert texts
// and the wording of the storm window.
type Catalog interface {
	Text(lang, key string, args map[string]string) string
	Plural(lang, key string, n int, args map[string]string) string
}

// Deps are what the watch works with.
type Deps struct {
	Scanner directory.LockoutScanner
	Store   Store
	Outbox  Outbox
	Catalog Catalog
	// Alerts mail the admins about a storm; nil means mail is off
	// (storms are then only audited and logged).
	Alerts Alerter
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
// texts back (storm.go), in which case the admins are emailed once.
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
	outbox  Outbox
	alerts  Alerter
	msgs    Catalog
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
	return &Watch{cfg: cfg, scanner: d.Scanner, store: d.Store, outbox: d.Outbox, alerts: d.Alerts, msgs: d.Catalog,
		log: d.Log, opt: opt, lease: jobs.Lease{Store: d.Store, Node: d.Node}}
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
