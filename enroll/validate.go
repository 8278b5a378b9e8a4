package enroll

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The input rules every Store applies, kept here so that a second
// implementation (etcd) rejects exactly what the bbolt store rejects.

// maxUsernameLen bounds a username in bytes; AD's sAMAccountName is at most
// 20 characters and LDAP uids are short, so this only stops abuse.
const maxUsernameLen = 256

// maxKeyLen bounds the other free-form keys (MessageSid, rate-limit keys).
const maxKeyLen = 512

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

// CheckPhone returns an ErrInvalid error unless phone is in E.164 form.
func CheckPhone(phone string) error {
	if !isE164(phone) {
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
	case len(key) > maxKeyLen:
		return Invalidf("%s is longer than %d bytes", what, maxKeyLen)
	}
	return nil
}

// CheckFingerprint validates a sealing-key fingerprint (SealKeyStore):
// 16 to 128 lower-case hex digits.
func CheckFingerprint(fp string) error {
	if len(fp) < 16 || len(fp) > 128 {
		return Invalidf("sealing key fingerprint: want 16 to 128 hex digits, not %d characters", len(fp))
	}
	for _, r := range fp {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return Invalidf("sealing key fingerprint: not lower-case hex")
		}
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

// CheckActivation validates a and returns its username key.
func CheckActivation(a Activation) (string, error) {
	if err := CheckKey("activation token hash", a.TokenHash); err != nil {
		return "", err
	}
	key, err := UsernameKey(a.Username)
	if err != nil {
		return "", err
	}
	switch {
	case a.CreatedAt.IsZero():
		return "", Invalidf("activation of %s has no creation time", a.Username)
	case a.ExpiresAt.IsZero():
		return "", Invalidf("activation of %s has no expiry", a.Username)
	case a.CodeAttempts < 0:
		return "", Invalidf("activation of %s: negative code attempts", a.Username)
	}
	if a.Phone != "" {
		if err := CheckPhone(a.Phone); err != nil {
			return "", fmt.Errorf("activation of %s: %w", a.Username, err)
		}
	}
	return key, nil
}

// CheckMessage validates an outbound message; the ID is the store's and
// is not checked.
func CheckMessage(m OutboundMessage) error {
	if m.Kind == KindRedact {
		if err := checkRedaction(m); err != nil {
			return err
		}
	}
	switch {
	case m.Kind != KindSMS && m.Kind != KindCall && m.Kind != KindRedact:
		return Invalidf("outbound message: unknown kind %q", m.Kind)
	case m.Kind != KindRedact && !isE164(m.To):
		return Invalidf("outbound message: recipient %q is not in E.164 form", m.To)
	case !validStatus(m.Status):
		return Invalidf("outbound message: unknown status %q", m.Status)
	case m.Priority < PriorityHigh || m.Priority > PriorityLow:
		return Invalidf("outbound message: priority %d is not in %d..%d", m.Priority, PriorityHigh, PriorityLow)
	case len(m.Sealed) == 0 && m.Kind != KindRedact:
		return Invalidf("outbound message has no body")
	case m.Attempts < 0:
		return Invalidf("outbound message: negative attempts")
	case m.CreatedAt.IsZero():
		return Invalidf("outbound message has no creation time")
	case m.Pending() && m.NextAttempt.IsZero():
		return Invalidf("pending outbound message has no next attempt time")
	case len(m.ProviderID) > maxKeyLen:
		return Invalidf("outbound message: provider ID is longer than %d bytes", maxKeyLen)
	}
	return nil
}

func validStatus(s string) bool {
	switch s {
	case StatusQueued, StatusRetry, StatusSent, StatusDelivered, StatusUndelivered,
		StatusFailed, StatusRejected, StatusExpired, StatusOverBudget, StatusHeld, StatusCanceled, StatusUnknown:
		return true
	}
	return false
}

// redactTarget is the shape of a message SID Twilio can redact.
var redactTarget = regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`)

// checkRedaction validates a KindRedact message: a target, and neither a
// recipient nor a body, since a redaction carries nothing secret.
func checkRedaction(m OutboundMessage) error {
	switch {
	case !redactTarget.MatchString(m.Target):
		return Invalidf("redaction: target %q is not a message SID", m.Target)
	case m.To != "" || len(m.Sealed) != 0:
		return Invalidf("redaction of %s: carries a recipient or a body", m.Target)
	}
	return nil
}

// maxSealedMail bounds the sealed body of a queued mail: a mail is a few
// kilobytes, and a networked store (etcd) refuses values over about a
// megabyte.
const maxSealedMail = 256 << 10

// CheckQueuedMail validates a queued mail; the ID is the store's.
func CheckQueuedMail(m QueuedMail) error {
	switch {
	case m.Kind == "" || len(m.Kind) > 64:
		return Invalidf("queued mail: kind %q is empty or too long", m.Kind)
	case m.State != MailQueued && m.State != MailRetry && m.State != MailSent && m.State != MailFailed:
		return Invalidf("queued mail: unknown state %q", m.State)
	case m.Pending() && len(m.Sealed) == 0:
		return Invalidf("pending queued mail has no body")
	case len(m.Sealed) > maxSealedMail:
		return Invalidf("queued mail: body of %d bytes is over %d", len(m.Sealed), maxSealedMail)
	case m.Attempts < 0:
		return Invalidf("queued mail: negative attempts")
	case m.CreatedAt.IsZero():
		return Invalidf("queued mail has no creation time")
	case m.Pending() && m.NextAttempt.IsZero():
		return Invalidf("pending queued mail has no next attempt time")
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return Invalidf("queued mail: recipient %q is not a mail address", m.To)
	}
	return nil
}

// CheckSMSPasswordCheck validates c and returns its username key.
func CheckSMSPasswordCheck(c SMSPasswordCheck) (string, error) {
	userKey, err := UsernameKey(c.Username)
	if err != nil {
		return "", err
	}
	switch {
	case c.DN == "" || len(c.DN) > maxKeyLen:
		return "", Invalidf("SMS password check of %s: the DN is empty or longer than %d bytes", c.Username, maxKeyLen)
	case c.ResetAt.IsZero() || c.Due.IsZero():
		return "", Invalidf("SMS password check of %s: reset or due time is zero", c.Username)
	case c.Attempts < 0:
		return "", Invalidf("SMS password check of %s: negative attempts", c.Username)
	}
	return userKey, nil
}

// CheckAPIToken validates a new token t whose secret hashes to hash and
// returns it with its scopes in canonical form.
func CheckAPIToken(t APIToken, hash string) (APIToken, error) {
	switch {
	case t.ID == "" || len(t.ID) > maxKeyLen:
		return APIToken{}, Invalidf("API token ID must be 1 to %d bytes", maxKeyLen)
	case t.CreatedAt.IsZero():
		return APIToken{}, Invalidf("API token %s has no creation time", t.Name)
	case t.Revoked():
		return APIToken{}, Invalidf("API token %s is already revoked", t.Name)
	}
	if err := CheckAPITokenName(t.Name); err != nil {
		return APIToken{}, err
	}
	if err := CheckKey("API token owner", t.Owner); err != nil {
		return APIToken{}, err
	}
	scopes, err := checkScopes(t.Scopes)
	if err != nil {
		return APIToken{}, err
	}
	t.Scopes = scopes
	if err := CheckKey("API token hash", hash); err != nil {
		return APIToken{}, err
	}
	return t, nil
}

// CheckAllow checks the arguments of RateLimitStore.Allow.
func CheckAllow(key string, now time.Time, window time.Duration, limit int) error {
	if err := CheckKey("rate-limit key", key); err != nil {
		return err
	}
	if err := CheckNow(now); err != nil {
		return err
	}
	if window <= 0 || limit <= 0 {
		return Invalidf("rate limit %d per %s: limit and window must be positive", limit, window)
	}
	return nil
}

// CheckSpend checks the arguments of BudgetStore.SpendBudget.
func CheckSpend(now time.Time, window time.Duration, limits []BudgetLimit) error {
	if err := CheckNow(now); err != nil {
		return err
	}
	if window <= 0 {
		return Invalidf("budget window %s is not positive", window)
	}
	for _, l := range limits {
		if err := CheckKey("budget key", l.Key); err != nil {
			return err
		}
		if l.Limit <= 0 {
			return Invalidf("budget %s: limit %d is not positive", l.Key, l.Limit)
		}
	}
	return nil
}

// CheckRefundBudget checks the arguments of BudgetStore.RefundBudget.
func CheckRefundBudget(keys []string, at time.Time) error {
	if err := CheckNow(at); err != nil {
		return err
	}
	for _, k := range keys {
		if err := CheckKey("budget key", k); err != nil {
			return err
		}
	}
	return nil
}

// CheckBudgetHits checks the arguments of BudgetStore.BudgetHits.
func CheckBudgetHits(key string, now time.Time, window time.Duration) error {
	if err := CheckKey("budget key", key); err != nil {
		return err
	}
	if err := CheckNow(now); err != nil {
		return err
	}
	if window <= 0 {
		return Invalidf("budget window %s is not positive", window)
	}
	return nil
}

// CheckAttempt checks the arguments of GuardStore.Attempt.
func CheckAttempt(key string, now time.Time, window time.Duration, limit int, block time.Duration) error {
	if err := CheckKey("guard key", key); err != nil {
		return err
	}
	if err := CheckNow(now); err != nil {
		return err
	}
	if window <= 0 || limit <= 0 || block <= 0 {
		return Invalidf("guard %d attempts per %s, block %s: all must be positive", limit, window, block)
	}
	return nil
}

// CheckRefund checks the arguments of GuardStore.RefundAttempt.
func CheckRefund(key string, at, now time.Time) error {
	if err := CheckKey("guard key", key); err != nil {
		return err
	}
	if err := CheckNow(at); err != nil {
		return err
	}
	return CheckNow(now)
}
