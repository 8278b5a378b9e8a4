package enroll

import (
	"context"
	"strings"
	"time"
)

// DeliveryStatus is what became of the newest code message (SMS or call)
// sent to the number being verified, as the enrollment page tells it.
type DeliveryStatus string

const (
	DeliveryNone      DeliveryStatus = ""          // no code message found (none sent, or an app set-up)
	DeliveryPending   DeliveryStatus = "pending"   // queued, or waiting for a retry
	DeliverySent      DeliveryStatus = "sent"      // the provider accepted it; no final report yet
	DeliveryDelivered DeliveryStatus = "delivered" // the phone got the SMS, or the call was answered
	DeliveryFailed    DeliveryStatus = "failed"    // refused, undelivered, or never sent: see Reason
)

// DeliveryReason says why a code message failed, in terms of what the user
// can do about it.
type DeliveryReason string

const (
	// ReasonInvalidNumber: the provider says the number does not exist or
	// is malformed (Twilio 21211, 30005): enter the number again.
	ReasonInvalidNumber DeliveryReason = "invalid-number"
	// ReasonOptedOut: the number replied STOP to the company number
	// (Twilio 21610): text START to it first, or take a voice call.
	ReasonOptedOut DeliveryReason = "opted-out"
	// ReasonNotMobile: the number cannot receive SMS, such as a landline
	// (Twilio 21614, 21612, 30006): take a voice call.
	ReasonNotMobile DeliveryReason = "not-mobile"
	// ReasonUndelivered: anything else that kept the code from the phone
	// (undelivered, failed, no answer, not sent in time): try a voice call
	// or check the number.
	ReasonUndelivered DeliveryReason = "undelivered"
)

// DeliveryState is the delivery of the newest code message for the
// activation's user and number (Page.Delivery).
type DeliveryState struct {
	Status    DeliveryStatus
	Reason    DeliveryReason // set when Status is DeliveryFailed
	Method    string         // "sms" or "voice": how that code went
	ErrorCode int            // the provider's error code, 0 when none (for people who debug, not shown)
	Updated   time.Time      // when the outbox last recorded a change
	// StartNumber is where an opted-out user texts START (ServiceSettings.
	// SMSNumber); "" when unknown.
	StartNumber string
}

// Failed reports whether the newest code did not reach the phone.
func (d DeliveryState) Failed() bool { return d.Status == DeliveryFailed }

// deliveryScan is how many of the user's newest messages to the number are
// read to find the newest code: other messages to the same user and number
// (reset replies, lockout alerts of an earlier enrollment) may come in
// between.
const deliveryScan = 10

// deliveryLookupTimeout bounds the outbox read: the page is shown without
// a delivery state rather than late.
const deliveryLookupTimeout = 2 * time.Second

// delivery finds the newest code message the service queued for a (purpose
// "code", to a.Phone, for a.Username, created since the activation) and
// says what became of it. A store failure is logged and shows no state:
// the page works without it.
func (s *Service) delivery(ctx context.Context, a Activation) DeliveryState {
	if a.Phone == "" || a.CodeSentAt.IsZero() {
		return DeliveryState{}
	}
	ctx, cancel := context.WithTimeout(ctx, deliveryLookupTimeout)
	defer cancel()
	msgs, err := s.deps.Store.Messages(ctx, OutboxFilter{To: a.Phone, Username: a.Username, Limit: deliveryScan})
	if err != nil {
		s.deps.Log.Warn("enroll: reading the code's delivery for the enrollment page failed",
			"username", a.Username, "err", err)
		return DeliveryState{}
	}
	for _, m := range msgs { // newest first
		if m.CreatedAt.Before(a.CreatedAt) {
			break // older than this activation: not about its codes
		}
		if m.Purpose != "code" {
			continue
		}
		d := deliveryOf(m)
		if d.Reason == ReasonOptedOut {
			d.StartNumber = normalizeSMSNumber(s.set.SMSNumber)
		}
		return d
	}
	return DeliveryState{}
}

// deliveryOf maps an outbox message to what the page says about it.
func deliveryOf(m OutboundMessage) DeliveryState {
	d := DeliveryState{Method: "sms", ErrorCode: m.ErrorCode, Updated: m.UpdatedAt}
	if m.Kind == KindCall {
		d.Method = "voice"
	}
	switch m.Status {
	case StatusQueued, StatusRetry:
		d.Status = DeliveryPending
	case StatusSent:
		d.Status = DeliverySent
	case StatusDelivered:
		d.Status = DeliveryDelivered
	case StatusUndelivered, StatusFailed, StatusRejected, StatusExpired, StatusOverBudget:
		d.Status, d.Reason = DeliveryFailed, failureReason(m.Kind, m.ErrorCode)
	default:
		// A status this code does not know: say nothing rather than guess.
		return DeliveryState{}
	}
	return d
}

// failureReason maps a provider error code to what the user can do
// (providerCodes). STOP, landlines and carrier filtering concern texts: a
// call that failed with such a code is plainly undelivered.
func failureReason(kind string, code int) DeliveryReason {
	pc, ok := LookupProviderCode(code)
	switch {
	case !ok:
		return ReasonUndelivered
	case kind != KindSMS && pc.Reason != ReasonInvalidNumber:
		return ReasonUndelivered
	}
	return pc.Reason
}

// normalizeSMSNumber keeps a configured company number only when it looks
// like one a person can text (E.164), so a messaging service SID never
// shows up on a page.
func normalizeSMSNumber(n string) string {
	n = strings.TrimSpace(n)
	if !isE164(n) {
		return ""
	}
	return n
}
