package enroll

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Summary is what the admin dashboard shows.
type Summary struct {
	At time.Time `json:"at"` // the "now" the figures are counted to
	// Enrollments counts enrollments by state; every state is present.
	Enrollments map[State]int `json:"enrollments"`
	// Resets counts successful resets (action "reset", outcome "ok").
	Resets Counts `json:"resets"`
	// ResetsFailed counts reset requests with any other outcome (refused,
	// rate limited, wrong authenticator code, directory error, ...).
	ResetsFailed Counts `json:"resets_failed"`
	// WebResets counts what the reset page did (action "reset_web",
	// outcome "ok" or "partial": an unlock or a new password), apart from
	// the SMS resets.
	WebResets Counts `json:"web_resets"`
	// Lockouts counts distinct lockouts the lockout watch saw (actions
	// "lockout", "lockout_alert" and "lockout_storm_suppressed", any
	// outcome), one per account and lockout time.
	Lockouts Counts `json:"lockouts"`
	// Recent are the newest audit events, newest first.
	Recent []Event `json:"recent"`
}

// Counts are figures over the last 24 hours and the last 7 days.
type Counts struct {
	Day  int `json:"day"`
	Week int `json:"week"`
}

func (c *Counts) add(t, day, week time.Time) {
	if !t.Before(week) {
		c.Week++
		if !t.Before(day) {
			c.Day++
		}
	}
}

// summaryRecent is how many events Summary.Recent holds.
const summaryRecent = 20

// summarySlack is how far back of the 7-day window Summary keeps reading:
// the trail is in append order, and an event's time may run a little behind
// one appended before it (each writer stamps its own "now").
const summarySlack = time.Hour

// Summary counts enrollments by state, and resets and lockouts over the
// 24 hours and 7 days before now, and returns the newest audit events. It
// reads the audit trail newest first and stops a little past the 7-day
// window, so its cost follows the last week's activity, not the trail's
// length.
func (s *Service) Summary(ctx context.Context, now time.Time) (Summary, error) {
	if now.IsZero() {
		now = s.deps.Now()
	}
	sum := Summary{At: now, Enrollments: map[State]int{}, Recent: []Event{}}
	for _, st := range []State{StatePending, StateActive, StateFrozen, StateDeactivated} {
		sum.Enrollments[st] = 0
	}
	list, err := s.deps.Store.Enrollments(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("enroll: summary: %w", err)
	}
	for _, e := range list {
		sum.Enrollments[e.State]++
	}

	day, week := now.Add(-24*time.Hour), now.Add(-7*24*time.Hour)
	stop := week.Add(-summarySlack)
	type lockout struct{ user, at string }
	seen := map[lockout]bool{}
	err = s.deps.Store.WalkAudit(ctx, AuditFilter{Newest: true}, func(ev Event) bool {
		if len(sum.Recent) < summaryRecent {
			sum.Recent = append(sum.Recent, ev)
		}
		if ev.Time.Before(stop) {
			return len(sum.Recent) < summaryRecent
		}
		if ev.Time.Before(week) || ev.Time.After(now) {
			return true // in the slack, or after now (a summary of the past)
		}
		switch ev.Action {
		case "reset":
			if ev.Outcome == "ok" {
				sum.Resets.add(ev.Time, day, week)
			} else {
				sum.ResetsFailed.add(ev.Time, day, week)
			}
		case "reset_web":
			if ev.Outcome == "ok" || ev.Outcome == "partial" {
				sum.WebResets.add(ev.Time, day, week)
			}
		case "lockout", "lockout_alert", "lockout_storm_suppressed":
			// One event per lockout; should one be audited twice, the
			// account and lock time (the detail's "locked at ...") name it.
			at, _, _ := strings.Cut(ev.Detail, ";")
			k := lockout{strings.ToLower(ev.Username), at}
			if !seen[k] {
				seen[k] = true
				sum.Lockouts.add(ev.Time, day, week)
			}
		}
		return true
	})
	if err != nil {
		return Summary{}, fmt.Errorf("enroll: summary: %w", err)
	}
	return sum, nil
}
