package enroll

import (
	"context"
	"time"
)

// Outbound message kinds.
const (
	KindSMS  = "sms"
	KindCall = "call" // a voice call reading the body aloud
	// KindRedact blanks the body of the provider message Target, once it
	// reached a final status: it has no recipient and no body.
	KindRedact = "redact"
)

// Outbound message statuses. Queued and retry are waiting to be sent; sent
// means the provider accepted it; delivered, undelivered and failed are
// final provider reports; rejected is a final refusal at send time (such as
// Twilio 21610 opted out or 21211 invalid number); expired means the retry
// budget ran out. Held is a message written but not yet released to be
// sent (a new password, queued before it is set, so that no password is
// ever set whose message was not durably queued first); canceled is a held
// message that was never released (the password was not set), its body
// wiped. Unknown is a send whose outcome was never recorded (see
// OutboundMessage.SendStarted): it is final, never sent again.
const (
	StatusQueued      = "queued"
	StatusRetry       = "retry"
	StatusSent        = "sent"
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
	StatusFailed      = "failed"
	StatusRejected    = "rejected"
	StatusExpired     = "expired"
	// StatusOverBudget: not sent, because an sms.budgets limit was reached
	// or the number is outside sms.allowed_countries (LastError says which).
	StatusOverBudget = "over_budget"
	StatusHeld       = "held"
	StatusCanceled   = "canceled"
	// StatusUnknown: a worker claimed the message and may have handed it
	// to the provider, then stopped (killed, paused, deposed) before it
	// recorded what happened, and the provider could not say; the message
	// is not sent again (gateway/outbox decides which purposes are).
	StatusUnknown = "unknown"
)

// Outbound priorities: lower runs first.
const (
	PriorityHigh = 0 // codes, resets, alerts
	PriorityLow  = 9 // reminders
)

// OutboundMessage is one SMS or call in the durable outbox. The body may
// hold a code or a password, so it is stored sealed (Sealer) and opened only
// to send it.
type OutboundMessage struct {
	ID   uint64 `json:"id"` // assigned by the store, increasing
	Kind string `json:"kind"`
	To   string `json:"to"` // E.164
	// Sealed is the body sealed for purpose "outbox": the SMS text, or for a
	// call the text to read aloud (the sender wraps it in TwiML <Say>).
	Sealed      []byte    `json:"sealed"`
	Language    string    `json:"language"` // en | fr: the voice of a call
	Purpose     string    `json:"purpose"`  // "code", "enrolled", "lockout", ...: for people and metrics
	Username    string    `json:"username,omitempty"`
	Priority    int       `json:"priority"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	ProviderID  string    `json:"provider_id,omitempty"` // Twilio SM…/CA… SID once accepted
	Target      string    `json:"target,omitempty"`      // KindRedact: the SID of the message to blank
	ErrorCode   int       `json:"error_code,omitempty"`  // provider error code (21610, 21211, 30003, ...)
	// Prepaid: the SMS budgets were charged when the message was queued
	// (a RESET's password, charged before the password was set, since a
	// password that could not be texted must not be set); the outbox does
	// not charge it again.
	Prepaid   bool   `json:"prepaid,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// SendStarted is set by the claim that precedes a send and cleared
	// when that send's outcome is recorded: a pending message that still
	// has it once its claim ran out was perhaps accepted by the provider
	// (the worker stopped between the send and the record), so it must
	// not be sent again blindly. An unknown message keeps it: the time of
	// the send in doubt.
	SendStarted time.Time `json:"send_started,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Pending reports whether the message still waits to be sent.
func (m OutboundMessage) Pending() bool {
	return m.Status == StatusQueued || m.Status == StatusRetry
}

// OutboxFilter selects outbox messages; zero fields match everything.
type OutboxFilter struct {
	To       string
	Username string
	Limit    int // newest first when set
}

// OutboxStore keeps the durable outbox.
type OutboxStore interface {
	// EnqueueMessage stores m with the next ID (m.ID is ignored) and returns it.
	EnqueueMessage(ctx context.Context, m OutboundMessage) (uint64, error)
	// DueMessages returns up to limit pending messages whose NextAttempt is
	// not after now, by priority then ID.
	DueMessages(ctx context.Context, now time.Time, limit int) ([]OutboundMessage, error)
	// UpdateMessage reads message id, lets fn change it and writes it back
	// in one transaction; it keeps a provider-ID index in step.
	UpdateMessage(ctx context.Context, id uint64, fn func(*OutboundMessage) error) error
	// MessageByProviderID finds a message by its provider SID.
	MessageByProviderID(ctx context.Context, providerID string) (OutboundMessage, error)
	// Messages lists messages, newest first.
	Messages(ctx context.Context, f OutboxFilter) ([]OutboundMessage, error)
}

// RedactionStore queues the blanking of a message's body at the provider
// (a KindRedact message in the outbox), once per provider message.
type RedactionStore interface {
	// EnqueueRedaction queues, at high priority, the blanking of the body
	// of provider message sid, unless one was queued before for sid: the
	// check and the insert are atomic, so a message is redacted once.
	// purpose and username say, for people, what the message was. It
	// returns the redaction's ID and whether it was queued now.
	EnqueueRedaction(ctx context.Context, sid, purpose, username string, now time.Time) (uint64, bool, error)
}

// Queued mail states. Queued and retry wait to be sent; sent means the
// SMTP server took the message; failed means the attempts ran out, or the
// message could not be built (a bad address): it is never tried again.
const (
	MailQueued = "queued"
	MailRetry  = "retry"
	MailSent   = "sent"
	MailFailed = "failed"
)

// QueuedMail is one email in the durable mail queue: every mail the
// product sends goes through it, so that no request waits on SMTP and a
// mail server outage loses nothing. The subject and bodies may hold a
// secret (an activation link carries its token), so they are kept sealed
// (Sealer) and dropped once the mail is sent or has failed for good.
type QueuedMail struct {
	ID   uint64 `json:"id"`   // assigned by the store, increasing
	Kind string `json:"kind"` // the template: activation, enrolled, not_me, ...
	To   string `json:"to"`   // the recipient's address
	// Username is the account the mail is about, if any.
	Username string `json:"username,omitempty"`
	// Sealed holds the subject, text and HTML, sealed for purpose "mail";
	// empty once the mail is settled.
	Sealed      []byte    `json:"sealed,omitempty"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	// LastError is the last failure, with the SMTP step and reply code;
	// it never holds the body or the SMTP password.
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Pending reports whether the mail still waits to be sent.
func (m QueuedMail) Pending() bool { return m.State == MailQueued || m.State == MailRetry }

// MailQueueStore keeps the mail queue: one record per mail.
type MailQueueStore interface {
	// EnqueueMail stores m under the next ID (m.ID is ignored) and returns it.
	EnqueueMail(ctx context.Context, m QueuedMail) (uint64, error)
	// DueMail returns up to limit pending mails whose NextAttempt is not
	// after now, earliest NextAttempt first (then by ID).
	DueMail(ctx context.Context, now time.Time, limit int) ([]QueuedMail, error)
	// UpdateMail reads mail id, lets fn change it and writes it back in one
	// transaction (ErrNotFound for an unknown id); fn's error changes
	// nothing. fn may run more than once and must only change its argument.
	UpdateMail(ctx context.Context, id uint64, fn func(*QueuedMail) error) error
	// QueuedMails lists up to limit mails (0: all), newest first.
	QueuedMails(ctx context.Context, limit int) ([]QueuedMail, error)
}
