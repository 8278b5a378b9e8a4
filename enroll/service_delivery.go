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

// ProviderCode is what one of Twilio's error codes means for a message:
// for the user (the enrollment page's Reason and whether a voice call may
// still reach them), for the outbox (Final: retrying never helps) and for
// the admins (Alert: the service's problem, not the phone's). It is the one
// table of provider codes: the enrollment page, the outbox's retry rule
// and the delivery reports all read it. Codes from
// https://www.twilio.com/docs/api/errors.
type ProviderCode struct {
	Code    int
	Meaning string         // Twilio's name for it, for people (logs, audit)
	Reason  DeliveryReason // what the user is told about a code SMS that failed with it
	Final   bool           // at send time: the same message will never be accepted
	Voice   bool           // a voice call may still reach the person
	Alert   bool           // the admins are told: the carrier or the account refuses, not the phone
}

// ReasonFiltered: the carrier filtered the message (Twilio 30007, 30034):
// the phone is fine, so no voice call is offered as if it were off; the
// admins are told, since it is the sender's content or registration that
// the carrier refuses.
const ReasonFiltered DeliveryReason = "filtered"

// providerCodes is the table, one row per code handled.
var providerCodes = []ProviderCode{
	// Refusals at send time (REST API errors).
	{Code: 21211, Meaning: "invalid 'To' phone number", Reason: ReasonInvalidNumber, Final: true},
	{Code: 21408, Meaning: "sending to this region is not enabled (geographic permissions)", Reason: ReasonUndelivered, Final: true, Alert: true},
	{Code: 21610, Meaning: "the recipient opted out (replied STOP)", Reason: ReasonOptedOut, Final: true, Voice: true},
	{Code: 21612, Meaning: "the 'To' number cannot be reached by SMS", Reason: ReasonNotMobile, Final: true, Voice: true},
	{Code: 21614, Meaning: "the 'To' number is not a mobile number", Reason: ReasonNotMobile, Final: true, Voice: true},
	{Code: 13224, Meaning: "invalid phone number for a call", Reason: ReasonInvalidNumber, Final: true},
	// Errors of the whole account or service: never final, since fixing the
	// configuration or waiting fixes every queued message at once.
	{Code: 20003, Meaning: "authentication failed (account SID or auth token)", Reason: ReasonUndelivered},
	{Code: 20404, Meaning: "resource not found (account SID or api_base_url)", Reason: ReasonUndelivered},
	{Code: 20429, Meaning: "too many requests", Reason: ReasonUndelivered},
	// Delivery reports (status callbacks of undelivered and failed messages).
	{Code: 30001, Meaning: "queue overflow: sent faster than the number allows", Reason: ReasonUndelivered, Voice: true, Alert: true},
	{Code: 30002, Meaning: "the Twilio account is suspended", Reason: ReasonUndelivered, Voice: true, Alert: true},
	{Code: 30003, Meaning: "unreachable destination handset (off or out of coverage)", Reason: ReasonUndelivered, Voice: true},
	{Code: 30004, Meaning: "message blocked by the recipient or their carrier", Reason: ReasonUndelivered, Voice: true},
	{Code: 30005, Meaning: "unknown destination handset (the number does not exist)", Reason: ReasonInvalidNumber},
	{Code: 30006, Meaning: "landline or unreachable carrier", Reason: ReasonNotMobile, Voice: true},
	{Code: 30007, Meaning: "message filtered by the carrier (carrier violation)", Reason: ReasonFiltered, Alert: true},
	{Code: 30008, Meaning: "unknown error from the carrier", Reason: ReasonUndelivered, Voice: true},
	{Code: 30034, Meaning: "message filtered by the carrier: the sending number is not registered (US A2P 10DLC)", Reason: ReasonFiltered, Alert: true},
}

var providerCodeIndex = func() map[int]ProviderCode {
	m := make(map[int]ProviderCode, len(providerCodes))
	for _, c := range providerCodes {
		m[c.Code] = c
	}
	return m
}()

// LookupProviderCode returns the row of code; false for a code the table
// does not hold (0 included).
func LookupProviderCode(code int) (ProviderCode, bool) {
	c, ok := providerCodeIndex[code]
	return c, ok
}

// ProviderCodes returns a copy of the table, in its order.
func ProviderCodes() []ProviderCode { return append([]ProviderCode(nil), providerCodes...) }
