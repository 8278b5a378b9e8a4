package enroll

import (
	"context"
	"errors"
	"slices"
)

// LineChecker asks the carrier what kind of line a number is (Twilio
// Lookup v2 line type intelligence, gateway.TwilioLookup). An error means
// the answer is unknown: the lookup service could not be asked.
type LineChecker interface {
	// LineType returns Twilio's name of the line type: mobile, landline,
	// fixedVoip, nonFixedVoip, tollFree, ... ("" when the carrier did
	// not say).
	LineType(ctx context.Context, phone string) (string, error)
}

// ErrPhoneNoSMS: the carrier says the number is a landline or a VoIP
// number, to which no code or password is texted; a voice call may still
// reach it. It comes as a *PhoneError (so it also matches ErrInvalid).
var ErrPhoneNoSMS = errors.New("the number is a landline or VoIP number, which gets no text messages")

// noSMSLineTypes are the line types refused for SMS: a landline cannot
// receive texts, and a VoIP number is too easily obtained or taken over to
// receive a password.
var noSMSLineTypes = []string{"landline", "fixedVoip", "nonFixedVoip"}

// LineRefusesSMS reports whether a number of Twilio line type lineType
// must not be used for SMS.
func LineRefusesSMS(lineType string) bool { return slices.Contains(noSMSLineTypes, lineType) }

// checkLine refuses, when the line type check is on, a number the carrier
// reports as landline or VoIP for every use but a voice call: the phone of
// an enrollment receives its passwords by SMS. When the lookup cannot be
// made the number is accepted (fail open): the code sent to it still
// proves possession, and the carrier risk check runs again before each
// password is texted.
func (s *Service) checkLine(ctx context.Context, username, phone, use string) error {
	if s.deps.LineChecker == nil || use == "voice" {
		return nil
	}
	lineType, err := s.deps.LineChecker.LineType(ctx, phone)
	if err != nil {
		s.deps.Log.Warn("enroll: carrier lookup unavailable; the number is accepted", "username", username, "err", err)
		return nil
	}
	if !LineRefusesSMS(lineType) {
		return nil
	}
	s.deps.Log.Info("enroll: number refused for SMS by its line type", "username", username, "line_type", lineType)
	s.audit(ctx, Event{Actor: "carrier_check", Action: "line_check", Username: username, Phone: phone,
		Outcome: "denied", Detail: "line type " + lineType + "; use: " + use})
	return &PhoneError{Reason: ErrPhoneNoSMS, Detail: "line type " + lineType}
}
