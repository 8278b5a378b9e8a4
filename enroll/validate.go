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

// maxKeyLen bounds the other free-form keys (MessageSid, rate-limit keys).
const maxKeyLen = 512

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// usernameKey validates username and returns the key it is stored under:
// directory usernames are case-insensitive, so the key is lower-cased and
// the record keeps the spelling it was given.
func usernameKey(username string) (string, error) {
	switch {
	case username == "":
		return "", invalidf("username is empty")
	case len(username) > maxUsernameLen:
		return "", invalidf("username is longer than %d bytes", maxUsernameLen)
	case !utf8.ValidString(username):
		return "", invalidf("username is not valid UTF-8")
	case strings.TrimSpace(username) != username:
		return "", invalidf("username %q has leading or trailing spaces", username)
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		return "", invalidf("username %q contains a control character", username)
	}
	return strings.ToLower(username), nil
}

// isE164 reports whether s has the E.164 shape: "+", a non-zero digit, and
// at most 15 digits in all. It checks form only; NormalizePhone checks that
// the number exists in its country's plan.
func isE164(s string) bool {
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

// checkPhone returns an ErrInvalid error unless phone is in E.164 form.
func checkPhone(phone string) error {
	if !isE164(phone) {
		return invalidf("phone number %q is not in E.164 form (+ and country code, digits only)", phone)
	}
	return nil
}

// ownsPhone reports whether e holds its phone in the phone index: only a
// verified enrollment (active or frozen) does, so a pending enrollment
// cannot squat on someone else's number.
func ownsPhone(e Enrollment) bool {
	return e.Phone != "" && (e.State == StateActive || e.State == StateFrozen)
}

// checkEnrollment validates e and returns its username key.
func checkEnrollment(e Enrollment) (string, error) {
	key, err := usernameKey(e.Username)
	if err != nil {
		return "", err
	}
	if !e.State.Valid() {
		return "", invalidf("enrollment %s: unknown state %q", e.Username, e.State)
	}
	if e.Phone != "" {
		if err := checkPhone(e.Phone); err != nil {
			return "", fmt.Errorf("enrollment %s: %w", e.Username, err)
		}
	} else if e.State == StateActive || e.State == StateFrozen {
		return "", invalidf("enrollment %s: state %s needs a phone number", e.Username, e.State)
	}
	return key, nil
}

// checkEvent validates an audit event before it is appended.
func checkEvent(ev Event) error {
	switch {
	case ev.Action == "":
		return invalidf("audit event has no action")
	case ev.Time.IsZero():
		return invalidf("audit event %s has no time", ev.Action)
	}
	return nil
}

// checkKey validates a MessageSid or rate-limit key.
func checkKey(what, key string) error {
	switch {
	case key == "":
		return invalidf("%s is empty", what)
	case len(key) > maxKeyLen:
		return invalidf("%s is longer than %d bytes", what, maxKeyLen)
	}
	return nil
}

// checkNow rejects the zero time: every "now" is given by the caller, and a
// zero one is a bug that would silently expire or keep everything.
func checkNow(now time.Time) error {
	if now.IsZero() {
		return invalidf("time is zero")
	}
	return nil
}
