package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/notify"
)

// MailStore is what the mail queue needs from the store.
type MailStore interface {
	EnqueueMail(ctx context.Context, m enroll.QueuedMail) (uint64, error)
	DueMail(ctx context.Context, now time.Time, limit int) ([]enroll.QueuedMail, error)
	UpdateMail(ctx context.Context, id uint64, fn func(*enroll.QueuedMail) error) error
	Auditor
	jobs.LeaseStore // one worker at a time
}

// MailQueueConfig wires a MailQueue; zero tuning fields take the defaults.
type MailQueueConfig struct {
	Store  MailStore
	Sealer Sealer
	// Transport delivers a mail: the SMTP mailer, or the demo's mailbox.
	Transport notify.Mailer
	Log       *slog.Logger
	// Node is this process's node ID for the worker's lease (default
	// jobs.NodeID()).
	Node string

	MaxAttempts int           // sends tried before a mail fails for good (default 15, about 5 hours)
	BackoffBase time.Duration // wait after the first failure, doubled after each (default 30s)
	BackoffMax  time.Duration // longest wait between attempts (default 30m)
	Poll        time.Duration // how often the queue is read when nothing wakes the worker (default 30s)
	SendTimeout time.Duration // bounds one SMTP session (default mailer.DefaultTimeout)
	Now         func() time.Time
}

func (c *MailQueueConfig) defaults() {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 15
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 30 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Minute
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffBase)
	if c.Poll <= 0 {
		c.Poll = 30 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = mailer.DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// MailQueue is the one way mail leaves the product. As an notify.Mailer
// its Send only seals the mail and stores it (a store write, never an
// SMTP session), so no SMS reply, page or audit event waits on a mail
// server; Run delivers the queue through the Transport, retrying with
// exponential backoff up to MaxAttempts. Every step is audited (action
// "mail": queued, sent, retry with the error class, failed), never with
// the subject or the body.
//
// Delivery is at least once: an attempt is claimed in the store (counted,
// next try moved past a backoff) before the SMTP session, so a process
// killed mid-send sends the mail again after that delay.
type MailQueue struct {
	cfg    MailQueueConfig
	loop   loop        // wakes Run; one Run (or Flush) at a time, under the lease
	queued atomic.Bool // Send queued a mail (Flush)
}

var _ notify.Mailer = (*MailQueue)(nil)

// NewMailQueue returns the queue; cfg.Store, cfg.Sealer and cfg.Transport
// are required.
func NewMailQueue(cfg MailQueueConfig) *MailQueue {
	cfg.defaults()
	return &MailQueue{cfg: cfg, loop: newLoop(mailQueueLease, "mail", cfg.Store, cfg.Node)}
}

// sealedMail is what is sealed: everything a person could read.
type sealedMail struct {
	Subject string `json:"s"`
	Text    string `json:"t"`
	HTML    string `json:"h,omitempty"`
}

// Send queues m and wakes the worker. It fails only when the store does:
// a caller whose context ends (a client that hung up) still has its mail
// queued.
func (q *MailQueue) Send(ctx context.Context, m notify.Mail) error {
	ctx = context.WithoutCancel(ctx)
	plain, err := json.Marshal(sealedMail{Subject: m.Subject, Text: m.Text, HTML: m.HTML})
	if err != nil {
		return err
	}
	kind := m.Kind
	if kind == "" {
		kind = "mail"
	}
	now := q.cfg.Now()
	qm := enroll.QueuedMail{Kind: kind, To: m.To, Username: m.Username, Sealed: q.cfg.Sealer.Seal(plain, mailSealPurpose),
		State: enroll.MailQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now}
	if qm.ID, err = q.cfg.Store.EnqueueMail(ctx, qm); err != nil {
		return fmt.Errorf("queue the %s mail: %w", kind, err)
	}
	q.audit(ctx, qm, "")
	q.queued.Store(true)
	q.Notify()
	return nil
}

// Notify wakes Run at once. It never blocks.
func (q *MailQueue) Notify() { q.loop.notify() }

// Run delivers due mail until ctx ends, then returns nil once the send in
// progress, if any, is recorded. It returns an error wrapping
// jobs.ErrRunning while another runner holds the worker's lease.
func (q *MailQueue) Run(ctx context.Context) error { return q.loop.run(ctx, q.pass) }

// Flush makes one pass over the due mail when this MailQueue queued any,
// for a command run without a server; what fails stays queued for the
// server to retry.
func (q *MailQueue) Flush(ctx context.Context) {
	if q.queued.Load() {
		q.loop.once(ctx, q.pass)
	}
}

// pass delivers what is due and returns how long to sleep. After a failed
// attempt it stops: the mail server is likely down, and the next pass,
// after a pause, tries the next mail.
func (q *MailQueue) pass(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		due, err := q.cfg.Store.DueMail(ctx, q.cfg.Now(), 20)
		if err != nil {
			if ctx.Err() == nil {
				q.cfg.Log.ErrorContext(ctx, "mail queue: cannot read due mail", "err", err)
			}
			return q.cfg.BackoffBase
		}
		for _, m := range due {
			if ctx.Err() != nil {
				return 0
			}
			if !q.deliver(ctx, m) {
				return min(q.cfg.BackoffBase, q.cfg.Poll)
			}
		}
		if len(due) < 20 {
			break
		}
	}
	return q.cfg.Poll
}

// deliver claims m, sends it and records the result; false when the
// attempt failed and the pass should pause.
func (q *MailQueue) deliver(ctx context.Context, m enroll.QueuedMail) bool {
	// Once claimed, finish the mail even if ctx ends: a send cut short
	// would only be repeated after a restart.
	ctx = context.WithoutCancel(ctx)
	now := q.cfg.Now()
	var claimed enroll.QueuedMail
	err := q.cfg.Store.UpdateMail(ctx, m.ID, func(c *enroll.QueuedMail) error {
		if !c.Pending() || c.NextAttempt.After(now) {
			return errUnchanged // settled or claimed since DueMail
		}
		c.Attempts++
		c.NextAttempt, c.UpdatedAt = now.Add(q.cfg.SendTimeout+retryDelay(q.cfg.BackoffBase, q.cfg.BackoffMax, c.Attempts)), now
		claimed = *c
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return true
	case err != nil:
		q.cfg.Log.ErrorContext(ctx, "mail queue: cannot claim mail", "mail_id", m.ID, "err", err)
		return false
	}
	var sm sealedMail
	plain, err := q.cfg.Sealer.Open(claimed.Sealed, mailSealPurpose)
	if err == nil {
		err = json.Unmarshal(plain, &sm)
	}
	if err != nil {
		return q.record(ctx, claimed, &mailer.Error{Step: mailer.StepCompose,
			Err: err}, "the mail cannot be opened (was the key file replaced?)")
	}
	sctx, cancel := context.WithTimeout(ctx, q.cfg.SendTimeout)
	defer cancel()
	err = q.cfg.Transport.Send(sctx, notify.Mail{To: claimed.To, Subject: sm.Subject, Text: sm.Text, HTML: sm.HTML,
		Kind: claimed.Kind, Username: claimed.Username})
	if err != nil {
		text := Scrub(Scrub(Scrub(err.Error(), sm.Text), sm.HTML), sm.Subject)
		return q.record(ctx, claimed, err, text)
	}
	return q.record(ctx, claimed, nil, "")
}

// record stores the outcome of an attempt and audits it: sent; failed for
// good (a mail that cannot be built or a recipient refused for good, or
// the last attempt); else retry after a backoff. A settled mail's sealed
// subject and bodies are dropped.
func (q *MailQueue) record(ctx context.Context, m enroll.QueuedMail, sendErr error, text string) bool {
	now := q.cfg.Now()
	class := mailErrorClass(sendErr)
	var stored enroll.QueuedMail
	err := q.cfg.Store.UpdateMail(ctx, m.ID, func(c *enroll.QueuedMail) error {
		c.UpdatedAt = now
		switch {
		case sendErr == nil:
			c.State, c.Sealed, c.LastError = enroll.MailSent, nil, ""
		case mailErrorFinal(sendErr) || c.Attempts >= q.cfg.MaxAttempts:
			c.State, c.Sealed, c.LastError = enroll.MailFailed, nil, limitText(text)
		default:
			c.State, c.LastError = enroll.MailRetry, limitText(text)
			c.NextAttempt = now.Add(retryDelay(q.cfg.BackoffBase, q.cfg.BackoffMax, c.Attempts))
		}
		stored = *c
		return nil
	})
	if err != nil {
		q.cfg.Log.ErrorContext(ctx, "mail queue: cannot record an attempt", "mail_id", m.ID, "err", err)
		return false
	}
	q.audit(ctx, stored, class)
	attrs := []any{"mail_id", stored.ID, "kind", stored.Kind, "attempts", stored.Attempts, "state", stored.State}
	switch stored.State {
	case enroll.MailSent:
		q.cfg.Log.InfoContext(ctx, "mail queue: sent", attrs...)
		return true
	case enroll.MailFailed:
		q.cfg.Log.ErrorContext(ctx, "mail queue: mail failed for good", append(attrs, "class", class, "err", stored.LastError)...)
		return sendErr == nil || mailErrorFinal(sendErr)
	default:
		q.cfg.Log.WarnContext(ctx, "mail queue: send failed, will retry",
			append(attrs, "class", class, "next_attempt", stored.NextAttempt, "err", stored.LastError)...)
		return false
	}
}

// audit records m's state: action "mail", outcome the state.
func (q *MailQueue) audit(ctx context.Context, m enroll.QueuedMail, class string) {
	detail := fmt.Sprintf("%s mail %d to %s", m.Kind, m.ID, m.To)
	switch m.State {
	case enroll.MailRetry:
		detail += fmt.Sprintf("; attempt %d failed (%s); next try %s", m.Attempts, class, m.NextAttempt.UTC().Format(time.RFC3339))
	case enroll.MailFailed:
		detail += fmt.Sprintf("; attempt %d failed (%s); given up", m.Attempts, class)
	case enroll.MailSent:
		detail += fmt.Sprintf("; attempt %d", m.Attempts)
	}
	ev := enroll.Event{Time: q.cfg.Now(), Actor: "system", Action: "mail", Username: m.Username, Outcome: m.State, Detail: detail}
	if _, err := q.cfg.Store.AppendAudit(context.WithoutCancel(ctx), ev); err != nil {
		q.cfg.Log.ErrorContext(ctx, "audit write failed", "action", ev.Action, "err", err)
	}
}

// mailErrorClass names a failure without its text: the SMTP step, the
// reply code, and "timeout" when the server did not answer in time.
func mailErrorClass(err error) string {
	if err == nil {
		return ""
	}
	class := "error"
	var me *mailer.Error
	if errors.As(err, &me) {
		class = string(me.Step)
		if me.Code != 0 {
			class += fmt.Sprintf(" %d", me.Code)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		class += " timeout"
	}
	return class
}

// mailErrorFinal: trying again cannot help (a mail that cannot be built,
// a recipient the server refuses for good with a 5xx reply).
func mailErrorFinal(err error) bool {
	var me *mailer.Error
	return errors.As(err, &me) && (me.Step == mailer.StepCompose || (me.Step == mailer.StepSend && me.Code >= 500))
}

// limitText keeps an error text short enough for a record and a page.
func limitText(s string) string {
	const n = 500
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
