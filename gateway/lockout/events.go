package lockout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// What the watch does with the lockouts a scan reports: record each, and
// text, hold back or audit the new ones.

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

// queueAlert puts the alert text in the outbox, due now.
func (w *Watch) queueAlert(ctx context.Context, e enroll.Enrollment, ev directory.LockoutEvent, now time.Time) (uint64, error) {
	lang := cmp.Or(e.Language, w.opt.Language)
	body := w.msgs.Text(lang, "sms.lockout.alert", map[string]string{
		"username": ev.User.Username,
		"time":     ev.LockedAt.In(w.opt.Location).Format("15:04"),
	})
	return w.outbox.Enqueue(ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: e.Phone, Language: lang,
		Purpose: lockoutPurpose, Username: e.Username, Priority: enroll.PriorityHigh, CreatedAt: now}, body)
}

func (w *Watch) audit(ctx context.Context, ev enroll.Event) {
	if _, err := w.store.AppendAudit(ctx, ev); err != nil {
		w.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "outcome", ev.Outcome, "err", err)
	}
}
