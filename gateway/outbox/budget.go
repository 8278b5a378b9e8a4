package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// Budget admits every SMS and call before it leaves (sms.allowed_countries
// and sms.budgets: gateway.SMSBudget, which the webhook's replies are
// charged to as well).
type Budget interface {
	// Admit charges one send. The ticket says whether it was refused; an
	// error means the store failed and nothing was charged.
	Admit(ctx context.Context, s Send) (Ticket, error)
	// Refund takes back an admitted send that did not leave.
	Refund(ctx context.Context, t Ticket)
}

// Send describes one SMS or call about to leave.
type Send struct {
	To       string // E.164
	Kind     string // enroll.KindSMS | enroll.KindCall
	Purpose  string
	Username string // for the audit trail; may be empty
}

// RefusedCountry is the refusal of a number outside
// sms.allowed_countries; a budget names the other reasons.
const RefusedCountry = "country_not_allowed"

// Ticket is the answer of Admit.
type Ticket struct {
	// Refused is "" when the send may leave, else the reason
	// (RefusedCountry, or the budget's own).
	Refused string
	// Budget is the configuration key of the refusing budget or setting.
	Budget string
	// At and Keys are what the budget charged, for its Refund.
	At   time.Time
	Keys []string
}

// admit asks the budget whether m, about to be claimed, may leave (a
// Prepaid message was charged when it was queued and always may). When it
// may not, the message ends with status over_budget and stop is true.
func (o *Outbox) admit(ctx context.Context, m enroll.OutboundMessage) (t Ticket, stop bool, oc outcome) {
	if o.opt.Budget == nil || m.Prepaid {
		return Ticket{}, false, outcomeDone
	}
	t, err := o.opt.Budget.Admit(ctx, Send{To: m.To, Kind: m.Kind, Purpose: m.Purpose, Username: m.Username})
	if err != nil {
		// Nothing is claimed: the message is tried again at the next pass.
		o.log.ErrorContext(ctx, "outbox: cannot check the SMS budget", o.attrs(m, "err", err)...)
		return Ticket{}, true, outcomeHeld
	}
	if t.Refused == "" {
		return t, false, outcomeDone
	}
	why := t.Budget + " reached"
	if t.Refused == RefusedCountry {
		why = "the number's country is not in sms.allowed_countries"
	}
	err = o.store.UpdateMessage(ctx, m.ID, func(c *enroll.OutboundMessage) error {
		if !c.Pending() || !c.SendStarted.Equal(m.SendStarted) {
			return errUnchanged // settled or claimed since it was read (admit comes before the claim)
		}
		c.Status, c.LastError, c.UpdatedAt = enroll.StatusOverBudget, why, o.opt.Now()
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return t, true, outcomeDone // a refused send charged nothing
	}
	if err != nil {
		o.log.ErrorContext(ctx, "outbox: cannot record a message refused by the budget", o.attrs(m, "err", err)...)
		return t, true, outcomeHeld
	}
	m.Status = enroll.StatusOverBudget
	o.log.WarnContext(ctx, "outbox: not sent", o.attrs(m, "reason", why)...)
	return t, true, outcomeDone
}

// refund takes back the budget of a send that did not leave.
func (o *Outbox) refund(ctx context.Context, t Ticket) {
	if o.opt.Budget != nil {
		o.opt.Budget.Refund(ctx, t)
	}
}
