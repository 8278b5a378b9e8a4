package lockout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
)

// What the watch does about storms (storm.go keeps their accounting):
// hold texts back, audit the start and the end, mail the admins.

// Alerter mails the admins (notify.AdminAlerts): AlertOnce sends mail
// name to every recipient not in done and returns those it told.
type Alerter interface {
	AlertOnce(ctx context.Context, name string, data map[string]string, done map[string]bool) ([]string, error)
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
	err := error(notify.ErrMailOff)
	if w.alerts != nil {
		sent, err = w.alerts.AlertOnce(ctx, templates.MailLockoutStorm, s.MailData, done)
	}
	s.MailDone = append(s.MailDone, sent...)
	s.MailTries++
	// Mail off and no one to tell are not mended by trying again.
	final := err == nil || notify.AlertOutcome(err) != "error" || s.MailTries >= maxStormMailTries
	switch {
	case err == nil:
		w.audit(ctx, enroll.Event{Time: now, Actor: "system", Action: "lockout_storm_mail", Outcome: "ok",
			Detail: fmt.Sprintf("%d admins emailed", len(s.MailDone))})
	case final:
		w.log.ErrorContext(ctx, "lockout watch: the admins could not be emailed about the lockout storm", "err", err)
		w.audit(ctx, enroll.Event{Time: now, Actor: "system", Action: "lockout_storm_mail",
			Outcome: notify.AlertOutcome(err), Detail: err.Error()})
	default:
		w.log.WarnContext(ctx, "lockout watch: storm mail failed; trying again at the next poll", "err", err, "tries", s.MailTries)
	}
	if final {
		s.MailPending, s.MailData, s.MailDone, s.MailTries = false, nil, nil, 0
	}
}
