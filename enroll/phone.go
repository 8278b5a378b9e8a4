package enroll

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Why NormalizePhone rejected a number; a *PhoneError matches one of these
// and ErrInvalid with errors.Is.
var (
	ErrPhoneEmpty     = errors.New("phone number is empty")
	ErrPhoneNotNumber = errors.New("not a phone number")
	ErrPhoneInvalid   = errors.New("not a valid phone number")
)

// PhoneError explains a rejected phone number. It never repeats the input:
// errors end up in logs and a phone number is personal data.
type PhoneError struct {
	Reason error  // ErrPhoneEmpty, ErrPhoneNotNumber or ErrPhoneInvalid
	Region string // for ErrPhoneInvalid: ISO 3166 code of the country whose plan it fails
	Detail string // optional, e.g. "unexpected character 'x'"
}

func (e *PhoneError) Error() string {
	msg := "enroll: " + e.Reason.Error()
	if e.Region != "" {
		msg += " for " + e.Region
		if cc := phonenumbers.GetCountryCodeForRegion(e.Region); cc != 0 {
			msg += fmt.Sprintf(" (+%d)", cc)
		}
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap lets errors.Is match both the reason and ErrInvalid.
func (e *PhoneError) Unwrap() []error { return []error{e.Reason, ErrInvalid} }

// maxPhoneRunes bounds the input; the longest sane form ("tel:" + IDD +
// 15 digits + separators) is far shorter.
const maxPhoneRunes = 50

// NormalizePhone turns a phone number typed in any common national or
// international format into E.164 ("+33612345678"). It accepts spaces, dashes,
// dots, slashes and parentheses as separators, a leading "+", "00" or the
// region's own international prefix, a "tel:" prefix, the "(0)" of
// "+44 (0)20 …" and full-width or Arabic-Indic digits. defaultRegion (an ISO
// 3166 code such as "US"; case-insensitive) is the country of numbers typed
// without a country code; with "" such numbers are rejected.
//
// The number must be valid in its country's numbering plan. Its type is not
// checked: a landline is accepted (it can take a voice call).
func NormalizePhone(input, defaultRegion string) (string, error) {
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	if region != "" && !KnownRegion(region) {
		return "", fmt.Errorf("enroll: unknown default region %q", defaultRegion)
	}
	cleaned, err := cleanPhone(input)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(cleaned, "+") && region == "" {
		return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: "no country code (start with + and the country code)"}
	}
	num, err := phonenumbers.Parse(cleaned, region)
	if strings.HasPrefix(cleaned, "00") && (err != nil || !phonenumbers.IsValidNumber(num)) {
		// "00" is the international prefix of most of the world, even
		// where the region's own is another (011 in the US).
		if n2, err2 := phonenumbers.Parse("+"+cleaned[2:], region); err2 == nil && phonenumbers.IsValidNumber(n2) {
			num, err = n2, nil
		}
	}
	if err != nil {
		return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: parseDetail(err)}
	}
	if !phonenumbers.IsValidNumber(num) {
		r := region
		if strings.HasPrefix(cleaned, "+") || r == "" {
			r = regionOfCode(int(num.GetCountryCode()))
		}
		if r == "" {
			return "", &PhoneError{Reason: ErrPhoneInvalid, Detail: fmt.Sprintf("unknown country code +%d", num.GetCountryCode())}
		}
		return "", &PhoneError{Reason: ErrPhoneInvalid, Region: r}
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if !isE164(out) {
		// libphonenumber accepts some national numbers (German ones) longer
		// than E.164's 15 digits; no SMS can reach them.
		return "", &PhoneError{Reason: ErrPhoneInvalid, Detail: "more than 15 digits"}
	}
	return out, nil
}

// cleanPhone checks input's characters and returns it reduced to ASCII
// digits, with a leading "+" if it had one.
func cleanPhone(input string) (string, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return "", &PhoneError{Reason: ErrPhoneEmpty}
	}
	if !utf8.ValidString(s) {
		return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: "not valid UTF-8"}
	}
	if utf8.RuneCountInString(s) > maxPhoneRunes {
		return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: "too long"}
	}
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s = strings.TrimSpace(s[4:])
	}
	// The "(0)" of "+44 (0)20 7946 0958" is the trunk prefix, dialled only
	// nationally; libphonenumber strips a national prefix after a country
	// code, so dropping the parentheses is enough.
	var b strings.Builder
	b.Grow(len(s))
	digits := 0
	for _, r := range s {
		switch {
		case r == '+' || r == '＋':
			if b.Len() > 0 {
				return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: "\"+\" is only allowed at the start"}
			}
			b.WriteByte('+')
		case asciiDigit(r) >= 0:
			digits++
			b.WriteByte(byte('0' + asciiDigit(r)))
		case isPhoneSeparator(r):
		default:
			return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	switch {
	case digits == 0:
		return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: "no digits"}
	case digits > 20: // 15 (E.164) + the longest international prefixes
		return "", &PhoneError{Reason: ErrPhoneNotNumber, Detail: "too many digits"}
	}
	return b.String(), nil
}

// asciiDigit returns the value of an ASCII, full-width or Arabic-Indic
// digit, or -1.
func asciiDigit(r rune) int {
	for _, zero := range []rune{'0', '０', '٠', '۰'} {
		if r >= zero && r <= zero+9 {
			return int(r - zero)
		}
	}
	return -1
}

// isPhoneSeparator reports whether r is punctuation people put in phone
// numbers: spaces, dashes, dots, slashes, parentheses and brackets.
func isPhoneSeparator(r rune) bool {
	if unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) {
		return true
	}
	switch r {
	case '.', '/', '(', ')', '[', ']', '−', '．', '／', '（', '）', '［', '］', '\u200b', '\u2060', '\u00ad':
		return true
	}
	return false
}

// parseDetail turns a libphonenumber parse error into words for the user.
func parseDetail(err error) string {
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return "unknown country code"
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return "too short"
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return "too long"
	}
	return ""
}

// regionOfCode returns the main region of a country calling code, or "" for
// an unknown or non-geographic (+800, +882, …) code.
func regionOfCode(cc int) string {
	r := phonenumbers.GetRegionCodeForCountryCode(cc)
	if r == phonenumbers.UNKNOWN_REGION || r == "001" {
		return ""
	}
	return r
}

// PhoneCountry returns the ISO 3166 region code ("US", "FR", …) of an
// E.164 number, telling apart regions that share a calling code (+1 US/CA),
// or "" when it has none (not E.164, unknown or non-geographic code).
func PhoneCountry(e164 string) string {
	if !isE164(e164) {
		return ""
	}
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	if r := phonenumbers.GetRegionCodeForNumber(num); r != "" && r != phonenumbers.UNKNOWN_REGION && r != "001" {
		return r
	}
	return regionOfCode(int(num.GetCountryCode()))
}

// KnownRegion reports whether code (upper-case ISO 3166, e.g. "GB") is a
// region NormalizePhone knows, for validating sms.default_region and
// sms.allowed_countries.
func KnownRegion(code string) bool {
	return phonenumbers.GetSupportedRegions()[code]
}

// LineChecker asks the carrier what kind of line a number is (Twilio
// Lookup v2 line type intelligence, twilio.Lookup). An error means
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
