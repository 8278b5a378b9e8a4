package twilio

import "github.com/replyreset/replyreset/gateway"

// Redaction at the provider, decided by the delivery reports. A message
// that carried a password or a code keeps its body in the provider's logs
// (Twilio's message log, its API) long after the user read it. Once its final status is known (delivered,
// undelivered or failed: Twilio refuses before), the status callback
// queues a KindRedact message naming its SID, and the outbox blanks the
// body there (Twilio: update the Message with an empty Body), retried with
// the same backoff and expiry as any send. The store queues one redaction
// per SID however many reports name it (EnqueueRedaction), so each message
// is redacted once; the job holds only the SID, never the body.
//
// Which messages are redacted (SMS only: a call's inline TwiML cannot be
// blanked through the API): outbox messages whose purpose is in
// secretPurposes, the new passwords of RESET and the verification codes. A
// code dies after code_ttl, but it is a secret until then and nobody needs
// it at the provider afterwards. No webhook reply carries a secret (a
// replayed or logged webhook answer must yield nothing); the status
// callback still honours ?redact=<purpose> on the callback URL, which the
// signature covers, for replies sent by earlier versions.

// secretPurposes are the outbox purposes whose SMS body is redacted at the
// provider after its final status.
var secretPurposes = map[string]bool{"code": true, gateway.PasswordPurpose: true}

// Redact purposes of webhook replies of earlier versions (the ?redact= of
// the callback URL).
const (
	redactPassword = "password"
	redactCode     = "code"
)
