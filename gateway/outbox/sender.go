package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Sender hands one SMS or voice call to the provider. The body and the
// spoken text may hold a code or a password: an implementation must never
// put them in an error, a log line or anything else it keeps.
type Sender interface {
	// SendSMS sends body to the E.164 number to.
	SendSMS(ctx context.Context, to, body string) (Receipt, error)
	// Call phones to and reads sayText aloud, twice, in language (en | fr).
	Call(ctx context.Context, to, sayText, language string) (Receipt, error)
}

// Prober is a Sender that can tell, without sending anything, whether the
// provider answers again (twilio.Sender.Probe).
type Prober interface {
	Probe(ctx context.Context) error
}

// Redactor blanks the body of a provider message (twilio.Sender).
type Redactor interface {
	Redact(ctx context.Context, sid string) error
}

// Receipt is the provider's acknowledgement of an accepted message.
type Receipt struct {
	ProviderID string // Twilio SM…/CA… SID; status callbacks name it
	Status     string // the provider's status at acceptance (queued, accepted, sent)
}

// SendError is a provider refusal or failure. Final errors will never
// succeed however often they are retried (opted-out or invalid numbers);
// the others (network errors, timeouts, 5xx, 429) may succeed later.
// It never holds the message body.
type SendError struct {
	Final   bool
	Code    int    // provider error code (21610, 21211, ...); 0 when there is none
	Status  int    // HTTP status; 0 when no answer came
	Message string // the provider's explanation, or what went wrong on the way
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("sms provider: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if e.Code != 0 {
			fmt.Fprintf(&b, ", error %d", e.Code)
		}
		b.WriteString(": ")
	} else if e.Code != 0 {
		fmt.Fprintf(&b, "error %d: ", e.Code)
	}
	b.WriteString(e.Message)
	if e.Final {
		b.WriteString(" (final)")
	}
	return b.String()
}

// Scrub removes secret (a body, a token) from s, so that no provider or
// library message that happens to echo it can carry it into a log or the
// data file.
func Scrub(s, secret string) string {
	if secret == "" || !strings.Contains(s, secret) {
		return s
	}
	return strings.ReplaceAll(s, secret, "[body]")
}

// LocalSender is the "outbox" provider of sms.provider: it sends nothing.
// Messages stay in the data file, where the demo phone simulator reads
// them; it serves demos and dry runs.
type LocalSender struct{}

var (
	_ Sender   = LocalSender{}
	_ Redactor = LocalSender{}
)

// SendSMS accepts the message without sending it.
func (LocalSender) SendSMS(context.Context, string, string) (Receipt, error) {
	return Receipt{ProviderID: localID(), Status: "sent"}, nil
}

// Redact has nothing to blank: LocalSender sends nothing.
func (LocalSender) Redact(context.Context, string) error { return nil }

// Call accepts the call without placing it.
func (LocalSender) Call(context.Context, string, string, string) (Receipt, error) {
	return Receipt{ProviderID: localID(), Status: "sent"}, nil
}

// localID is "OB" and 32 hex digits, shaped like a Twilio SID so that every
// screen and index treats it alike.
func localID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return "OB" + hex.EncodeToString(b[:])
}
