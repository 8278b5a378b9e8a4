// Package twilio owns everything said to and heard from Twilio outside the
// SMS conversation: the twilio-go Sender (SMS, voice calls, redaction), the
// account check of check-config, Lookup v2 (line type, SIM swap), the
// signed delivery reports and the demo's simulated phones.
package twilio
