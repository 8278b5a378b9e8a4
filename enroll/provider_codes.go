package enroll

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
