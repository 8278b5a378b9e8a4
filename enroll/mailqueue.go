package enroll

import (
	"context"
	"time"
)

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
