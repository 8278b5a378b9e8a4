package twilio

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
)

// Delivery reports that are the service's problem, not the phone's. A
// final report whose error code the provider code table marks Alert
// (enroll.ProviderCodes: 30007 "filtered by the carrier", 30034, 30001,
// 30002, 21408) is audited (action "delivery_alert", outcome
// "carrier_filtered" or "provider_refused") and, for carrier filtering,
// mailed to the admins, at most once per code per alertWindow so that a
// carrier filtering every message sends one mail, not one per message.

// alertWindow is the time within which one code mails the admins once.
const alertWindow = time.Hour

// deliveryAlertTimeout bounds the admin mail, sent after Twilio got its answer.
const deliveryAlertTimeout = time.Minute

// CarrierFilterNotifier mails the admins about carrier filtering
// (AdminAlerts); it returns how many were told.
type CarrierFilterNotifier interface {
	NotifyCarrierFiltered(ctx context.Context, n notify.CarrierFilterNotice) (int, error)
}

var _ CarrierFilterNotifier = (*notify.AdminAlerts)(nil)

// AlertThrottle admits one alert per key and window (enroll.Store.Allow).
type AlertThrottle interface {
	Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error)
}

// alertDelivery audits, and mails when it is carrier filtering, the final
// report of m with error code, when the code table says the admins must
// know.
func (h *StatusHandler) alertDelivery(ctx context.Context, m enroll.OutboundMessage, code int) {
	pc, ok := enroll.LookupProviderCode(code)
	if !ok || !pc.Alert {
		return
	}
	outcome := "provider_refused"
	if pc.Reason == enroll.ReasonFiltered {
		outcome = "carrier_filtered"
	}
	now := h.now()
	h.log.WarnContext(ctx, "delivery report: the provider or the carrier refused the message",
		"message_id", m.ID, "provider_id", m.ProviderID, "purpose", m.Purpose, "error_code", code, "meaning", pc.Meaning)
	if h.set.Audit != nil {
		ev := enroll.Event{Time: now, Actor: "system", Action: "delivery_alert", Username: m.Username, Phone: m.To,
			Outcome: outcome, Detail: fmt.Sprintf("error %d (%s) for %s message %s", code, pc.Meaning, m.Purpose, m.ProviderID)}
		if _, err := h.set.Audit.AppendAudit(ctx, ev); err != nil {
			h.log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "err", err)
		}
	}
	if outcome != "carrier_filtered" || h.set.Alerts == nil {
		return
	}
	if h.set.Throttle != nil {
		first, err := h.set.Throttle.Allow(ctx, "delivery-alert:"+strconv.Itoa(code), now, alertWindow, 1)
		if err != nil || !first {
			return // told within the hour (or the store fails: no mail storm either)
		}
	}
	n := notify.CarrierFilterNotice{Username: m.Username, Phone: m.To, Code: code, At: now}
	h.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deliveryAlertTimeout)
		defer cancel()
		ev := enroll.Event{Time: h.now(), Actor: "system", Action: "delivery_alert_mail", Username: n.Username, Phone: n.Phone, Outcome: "ok"}
		sent, err := h.set.Alerts.NotifyCarrierFiltered(ctx, n)
		if err != nil {
			ev.Outcome, ev.Detail = notify.AlertOutcome(err), err.Error()
			h.log.Error("carrier filtering: admins could not be emailed", "err", err)
		} else {
			ev.Detail = fmt.Sprintf("error %d: %d admins emailed", n.Code, sent)
		}
		if h.set.Audit != nil {
			if _, err := h.set.Audit.AppendAudit(ctx, ev); err != nil {
				h.log.Error("audit write failed", "action", ev.Action, "err", err)
			}
		}
	})
}

// Close waits for the admin mails still being sent.
func (h *StatusHandler) Close() { h.background.Wait() }
