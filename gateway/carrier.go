package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
)

// CarrierCheck is the carrier risk check made before a password is texted
// (sms.lookup). With a nil Lookup, or both checks off, nothing is asked.
//
// What happens when Twilio Lookup cannot answer (an error status, a
// timeout) is decided per check:
//   - line type: fail open. The number proved possession when it was
//     enrolled; a lookup outage must not stop every reset.
//   - SIM swap: fail closed. It is the defence against the takeover that
//     makes SMS risky; no password is texted while it cannot be made, and
//     the user is told to try later.
//
// A lookup that answers but has no SIM swap data for the number (a carrier
// or country Twilio does not cover, or the package not enabled) counts as
// no recent swap: the reset goes on, audited with the reason.
type CarrierCheck struct {
	Lookup        CarrierLookup
	LineType      bool          // refuse landline and VoIP numbers (enroll.LineRefusesSMS)
	SIMSwapMaxAge time.Duration // block resets after a swap more recent than this; 0 = off
	// Alerts mails the admins about a blocked reset (AdminAlerts); may be
	// nil. One alert per user and SIM swap.
	Alerts SIMSwapNotifier
}

// CarrierReport is what Twilio Lookup v2 said about a number.
type CarrierReport struct {
	// LineType is line_type_intelligence.type: mobile, landline,
	// fixedVoip, nonFixedVoip, tollFree, ...; "" when not asked or when
	// the carrier did not say.
	LineType string
	SIMSwap  SIMSwap // when asked
}

// SIMSwap is the sim_swap package's answer.
type SIMSwap struct {
	// Known: the carrier gave SIM swap data (a date or a period answer).
	// Numbers of carriers or countries Twilio does not cover are unknown.
	Known bool
	// At is last_sim_swap_date; zero when the carrier only says whether
	// the SIM changed within Period.
	At       time.Time
	InPeriod bool   // swapped_in_period
	Period   string // swapped_period, e.g. "PT48H"
	// ErrorCode is the package's error_code (e.g. 60606: not enabled on
	// the account), 0 when none.
	ErrorCode int
}

// CarrierLookup asks the carrier about a number (twilio.Lookup).
type CarrierLookup interface {
	Lookup(ctx context.Context, phone string, lineType, simSwap bool) (CarrierReport, error)
}

func (cc CarrierCheck) on() bool {
	return cc.Lookup != nil && (cc.LineType || cc.SIMSwapMaxAge > 0)
}

// SIMSwapNotifier alerts the admins of a blocked reset.
type SIMSwapNotifier interface {
	NotifySIMSwap(ctx context.Context, n notify.SIMSwapNotice) (int, error)
}

var _ SIMSwapNotifier = (*notify.AdminAlerts)(nil)

// simSwapAlertTimeout bounds the admin mail, sent after the reply left.
const simSwapAlertTimeout = time.Minute

// carrierCheck runs the carrier risk check of a RESET; ok is false when
// the reset must stop, with the reply to send.
func (c *conversation) carrierCheck(ctx context.Context) (reply string, ok bool, err error) {
	cc := c.w.set.Carrier
	if !cc.on() {
		return "", true, nil
	}
	username := c.enr.Username
	r, lerr := cc.Lookup.Lookup(ctx, c.phone, cc.LineType, cc.SIMSwapMaxAge > 0)
	if lerr != nil {
		if cc.SIMSwapMaxAge > 0 {
			c.w.log.WarnContext(ctx, "carrier lookup unavailable: no password is texted", "err", lerr)
			c.audit(ctx, "reset", username, "lookup_unavailable", "SIM swap check not possible (fail closed): "+lerr.Error())
			return c.text("sms.reset.lookup_down", nil), false, nil
		}
		c.w.log.WarnContext(ctx, "carrier lookup unavailable: line type not checked", "err", lerr)
		c.audit(ctx, "carrier_check", username, "lookup_unavailable", "line type not checked (fail open): "+lerr.Error())
		return "", true, nil
	}
	if cc.LineType && enroll.LineRefusesSMS(r.LineType) {
		c.audit(ctx, "reset", username, "line_type", "no password texted to a "+r.LineType+" number")
		return c.text("sms.reset.line_type", nil), false, nil
	}
	if cc.SIMSwapMaxAge <= 0 {
		return "", true, nil
	}
	sw := r.SIMSwap
	var recent bool
	switch {
	case !sw.Known:
		c.audit(ctx, "carrier_check", username, "no_sim_swap_data",
			fmt.Sprintf("the carrier gave no SIM swap data (error code %d); reset allowed", sw.ErrorCode))
		return "", true, nil
	case !sw.At.IsZero():
		recent = c.now.Sub(sw.At) < cc.SIMSwapMaxAge
	default:
		recent = sw.InPeriod // only Twilio's configured period is known
	}
	if !recent {
		return "", true, nil
	}
	detail := "SIM changed within " + sw.Period
	if !sw.At.IsZero() {
		detail = "SIM changed " + sw.At.UTC().Format(time.RFC3339) + ", less than " + cc.SIMSwapMaxAge.String() + " ago"
	}
	c.audit(ctx, "reset", username, "sim_swap", detail+"; SMS resets blocked")
	if err := c.alertSIMSwap(ctx, sw.At); err != nil {
		return "", false, err
	}
	return c.text("sms.reset.sim_swap", nil), false, nil
}

// alertSIMSwap mails the admins, in the background, once per user and SIM
// swap (the next RESET is refused without a second mail), and audits what
// became of it.
func (c *conversation) alertSIMSwap(ctx context.Context, swappedAt time.Time) error {
	cc := c.w.set.Carrier
	if cc.Alerts == nil {
		return nil
	}
	username := c.enr.Username
	key := "simswap-alert:" + username + ":" + swappedAt.UTC().Format(time.RFC3339)
	if swappedAt.IsZero() {
		key = "simswap-alert:" + username + ":period"
	}
	first, err := c.w.store.Allow(ctx, key, c.now, cc.SIMSwapMaxAge, 1)
	if err != nil {
		return fmt.Errorf("SIM swap alert: %w", err)
	}
	if !first {
		return nil
	}
	n := notify.SIMSwapNotice{Username: username, Phone: c.phone, SwappedAt: swappedAt, At: c.now}
	if u, err := c.w.dir.FindUser(ctx, username); err == nil {
		n.DisplayName = u.DisplayName
	}
	w, actor := c.w, "sms:"+c.phone
	w.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), simSwapAlertTimeout)
		defer cancel()
		ev := enroll.Event{Time: w.now(), Actor: actor, Action: "sim_swap_alert", Username: username, Phone: n.Phone, Outcome: "ok"}
		sent, err := cc.Alerts.NotifySIMSwap(ctx, n)
		if err != nil {
			ev.Outcome, ev.Detail = notify.AlertOutcome(err), err.Error()
			w.log.Error("SIM swap: admins could not be emailed", "username", username, "err", err)
		} else {
			ev.Detail = fmt.Sprintf("%d admins emailed", sent)
		}
		if _, err := w.store.AppendAudit(ctx, ev); err != nil {
			w.log.Error("audit write failed", "action", ev.Action, "err", err)
		}
	})
	return nil
}
