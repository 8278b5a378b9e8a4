package enroll

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The input rules every Store applies, kept here so that a second
// implementation (etcd) rejects exactly what BoltStore rejects.

// maxUsernameLen bounds a username in bytes; AD's sAMAccountName is at most
// 20 characters and LDAP uids are short, so this only stops abuse.
const maxUsernameLen = 256

// MaxKeyLen bounds the other free-form keys (MessageSid, rate-limit keys).
const MaxKeyLen = 512

// Invalidf returns an error wrapping ErrInvalid.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// UsernameKey validates username and returns the key it is stored under:
// directory usernames are case-insensitive, so the key is lower-cased and
// the record keeps the spelling it was given.
func UsernameKey(username string) (string, error) {
	switch {
	case username == "":
		return "", Invalidf("username is empty")
	case len(username) > maxUsernameLen:
		return "", Invalidf("username is longer than %d bytes", maxUsernameLen)
	case !utf8.ValidString(username):
		return "", Invalidf("username is not valid UTF-8")
	case strings.TrimSpace(username) != username:
		return "", Invalidf("username %q has leading or trailing spaces", username)
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		return "", Invalidf("username %q contains a control character", username)
	}
	return strings.ToLower(username), nil
}

// IsE164 reports whether s has the E.164 shape: "+", a non-zero digit, and
// at most 15 digits in all. It checks form only; NormalizePhone checks that
// the number exists in its country's plan.
func IsE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CheckPhone returns an ErrInvalid error unless phone is in E.164 form.
func CheckPhone(phone string) error {
	if !IsE164(phone) {
		return Invalidf("phone number %q is not in E.164 form (+ and country code, digits only)", phone)
	}
	return nil
}

// OwnsPhone reports whether e holds its phone in the phone index: only a
// verified enrollment (active or frozen) does, so a pending enrollment
// cannot squat on someone else's number.
func OwnsPhone(e Enrollment) bool {
	return e.Phone != "" && (e.State == StateActive || e.State == StateFrozen)
}

// CheckEnrollment validates e and returns its username key.
func CheckEnrollment(e Enrollment) (string, error) {
	key, err := UsernameKey(e.Username)
	if err != nil {
		return "", err
	}
	if !e.State.Valid() {
		return "", Invalidf("enrollment %s: unknown state %q", e.Username, e.State)
	}
	if e.Phone != "" {
		if err := CheckPhone(e.Phone); err != nil {
			return "", fmt.Errorf("enrollment %s: %w", e.Username, err)
		}
	} else if e.State == StateActive || e.State == StateFrozen {
		return "", Invalidf("enrollment %s: state %s needs a phone number", e.Username, e.State)
	}
	return key, nil
}

// CheckEvent validates an audit event before it is appended.
func CheckEvent(ev Event) error {
	switch {
	case ev.Action == "":
		return Invalidf("audit event has no action")
	case ev.Time.IsZero():
		return Invalidf("audit event %s has no time", ev.Action)
	}
	return nil
}

// CheckKey validates a MessageSid or rate-limit key.
func CheckKey(what, key string) error {
	switch {
	case key == "":
		return Invalidf("%s is empty", what)
	case len(key) > MaxKeyLen:
		return Invalidf("%s is longer than %d bytes", what, MaxKeyLen)
	}
	return nil
}

// CheckNow rejects the zero time: every "now" is given by the caller, and a
// zero one is a bug that would silently expire or keep everything.
func CheckNow(now time.Time) error {
	if now.IsZero() {
		return Invalidf("time is zero")
	}
	return nil
}
