package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// Held-message recovery: a RESET writes its SMS held, sets the password,
// then releases the message (webhook_password.go). A node that dies in
// between leaves the message held, never sent. The recovery, a leader
// job, finishes such messages once they are older than any RESET still
// in flight could be (HeldGrace), asking the directory when the user's
// password was last set (directory.PasswordSetReader):
//
//   - set at or after the message was written (HeldClockSkew allowed):
//     the password is in force and the user needs it, so the message is
//     released as written (audit reset_held_sent);
//   - not set since: the reset did not happen; the body is replaced by
//     sms.reset.incomplete, in the message's language, and released, so
//     the user is told (audit reset_held_incomplete);
//   - a newer RESET message of the user exists, released or itself the
//     recovery's (not canceled, not a RESET still at work): that one
//     carries what the user needs; this one is canceled, its body wiped
//     (audit reset_held_superseded);
//   - the directory does not answer, or cannot tell: the message stays
//     held for the next pass, and the pass says so once in the log. The
//     recovery never guesses.
//
// Each action is taken once, whatever races it: the outbox changes a
// message only while it is still held, in the store's transaction
// (outbox.ErrNotHeld otherwise, which the recovery takes as "finished by
// someone else": the RESET itself, another pass, or a deposed leader's).
// A deposed leader's writes are refused by the term's fence. The audit
// event follows the change (a node that dies between the two leaves that
// one change unaudited, the message's status still says it); no audit
// event holds the password.

// HeldClockSkew is how much earlier than the held message the directory
// may date the password and still count as setting it after the message
// was written: the directory keeps the time to the second (cut, not
// rounded), and its clock and this node's may differ a little (NTP keeps
// AD members well within a second; Kerberos fails beyond 5 minutes). Two
// seconds covers the cut and a second of drift. A directory clock behind
// by more makes the recovery say "did not finish" for a password that was
// set: the user texts RESET again. One ahead by more, or a password set
// by someone else (the user, an admin) in the seconds around the RESET,
// can make it send a password that is not in force: the user's logon
// fails and they text RESET again. Neither leaves a password in force
// that the user cannot get.
const HeldClockSkew = 2 * time.Second

// heldRecoveryLease is the name of the recovery's lease in the store.
const heldRecoveryLease = "held-recovery"

// HeldGrace is the age after which a held message is the recovery's: no
// RESET can still be working on it. A RESET's directory work ends within
// the webhook's reply budget (Settings.ReplyBudget); a directory
// operation started just before that ends may run its own timeout
// (directory.timeout) on top; the release then has heldTimeout; one
// minute more covers a slow store and the clocks of two nodes.
func HeldGrace(replyBudget, directoryTimeout time.Duration) time.Duration {
	return replyBudget + directoryTimeout + heldTimeout + time.Minute
}

// ReplyBudget is the webhook's reply budget (Settings.ReplyBudget, after
// its default), for HeldGrace.
func (w *Webhook) ReplyBudget() time.Duration { return w.set.ReplyBudget }

// HeldQueue is the outbox's side of the recovery (outbox.Queue): each
// call changes a message only while it is held, else wraps
// outbox.ErrNotHeld.
type HeldQueue interface {
	Release(ctx context.Context, id uint64) error
	Replace(ctx context.Context, id uint64, body string) error
	Cancel(ctx context.Context, id uint64, why string) error
}

// HeldStore is what the recovery reads and writes in the store.
type HeldStore interface {
	Messages(ctx context.Context, f enroll.OutboxFilter) ([]enroll.OutboundMessage, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
	jobs.LeaseStore
}

// HeldDirectory is what the recovery asks the directory: when a
// password was set, and (for the SMS password expiry) who the user is.
type HeldDirectory interface {
	directory.PasswordSetReader
	FindUser(ctx context.Context, username string) (directory.User, error)
}

// HeldRecoveryDeps are what the recovery works with; Log may be nil.
type HeldRecoveryDeps struct {
	Store     HeldStore
	Queue     HeldQueue
	Directory HeldDirectory
	Catalog   Catalog
	Log       *slog.Logger
	// Node is this process's node ID, the holder of the lease (default
	// jobs.NodeID()).
	Node string
}

// HeldRecoveryOptions tune the recovery.
type HeldRecoveryOptions struct {
	// Grace is the age of a held message before the recovery takes it
	// (HeldGrace of the configuration); required.
	Grace time.Duration
	Poll  time.Duration    // how often a pass runs (default 30s)
	Now   func() time.Time // default time.Now
	// SMSPasswordTTL is the webhook's (Settings.SMSPasswordTTL, set only
	// with must-change passwords): a password the recovery sends gets the
	// check a RESET records, due that long after it was sent. 0: none.
	SMSPasswordTTL time.Duration
}

// HeldRecovery finishes the held RESET messages a dead node left.
type HeldRecovery struct {
	d     HeldRecoveryDeps
	opt   HeldRecoveryOptions
	lease jobs.Lease

	mu sync.Mutex
	// seen is the watermark: no message with an ID at or below it waits
	// for the recovery (each was read by a pass and is not held, or was
	// finished). Messages never become held after they are written, and
	// IDs grow in commit order, so a watermark stays true; 0 before the
	// first pass.
	seen uint64
}

// heldPage is the first page a pass reads from the newest message down;
// the page doubles until it reaches the watermark.
const heldPage = 64

// NewHeldRecovery wires the recovery.
func NewHeldRecovery(d HeldRecoveryDeps, opt HeldRecoveryOptions) (*HeldRecovery, error) {
	if opt.Grace <= 0 {
		return nil, fmt.Errorf("held recovery: grace %s is not positive", opt.Grace)
	}
	if opt.Poll <= 0 {
		opt.Poll = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &HeldRecovery{d: d, opt: opt, lease: jobs.Lease{Store: d.Store, Node: d.Node}}, nil
}

// Run runs a pass every Poll until ctx ends, holding the lease
// "held-recovery"; it returns the error of a pass that was fenced (this
// node no longer leads), and logs the others.
func (h *HeldRecovery) Run(ctx context.Context) error {
	return h.lease.Hold(ctx, heldRecoveryLease, func(ctx context.Context) error {
		for {
			if err := h.Pass(ctx); errors.Is(err, enroll.ErrFenced) {
				return err
			} else if err != nil && ctx.Err() == nil {
				h.d.Log.ErrorContext(ctx, "held recovery: pass failed; trying again", "err", err, "retry_in", h.opt.Poll)
			}
			if !jobs.Sleep(ctx, h.opt.Poll) {
				return nil
			}
		}
	})
}

// heldOutcome is what a pass did with one held message.
type heldOutcome int

const (
	heldSent heldOutcome = iota
	heldIncomplete
	heldSuperseded
)

// pass is one pass's record: what was left, and why, for one log line.
type pass struct {
	now      time.Time
	left     int
	firstErr error
	dirDown  bool // the directory did not answer: ask it no more this pass
}

// Pass finishes every held RESET message older than the grace. The
// store has no index of held messages: the first pass of the process
// reads the whole outbox (the etcd backend in ranges of 500 keys, bbolt
// in one read transaction), which is acceptable once; later passes read
// pages from the newest message down to the watermark, so a pass every
// 30 s reads what came since the last one (and the held messages still
// waiting). It returns a store error (one wrapping enroll.ErrFenced when
// this node no longer leads); messages it could not finish stay held for
// the next pass.
func (h *HeldRecovery) Pass(ctx context.Context) error {
	h.mu.Lock()
	floor := h.seen
	h.mu.Unlock()
	msgs, err := h.list(ctx, floor)
	if err != nil {
		return fmt.Errorf("held recovery: list the outbox: %w", err)
	}
	p := &pass{now: h.opt.Now()}
	newest := h.newestResets(msgs, p.now)
	next := floor
	if len(msgs) > 0 {
		next = max(floor, msgs[0].ID)
	}
	var firstStoreErr error
	// Oldest first: msgs is newest first.
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.ID <= floor || m.Purpose != PasswordPurpose || m.Status != enroll.StatusHeld {
			continue
		}
		if p.now.Sub(m.CreatedAt) < h.opt.Grace {
			next = min(next, m.ID-1) // a later pass takes it
			continue
		}
		left, err := h.recover(ctx, p, m, newest[strings.ToLower(m.Username)])
		if errors.Is(err, enroll.ErrFenced) || ctx.Err() != nil {
			return err
		}
		if err != nil && firstStoreErr == nil {
			firstStoreErr = err
		}
		if left || err != nil {
			next = min(next, m.ID-1)
		}
	}
	if p.left > 0 {
		h.d.Log.WarnContext(ctx, "held recovery: held RESET messages left for the next pass; the directory did not say whether their password was set",
			"messages", p.left, "err", p.firstErr, "retry_in", h.opt.Poll)
	}
	h.mu.Lock()
	h.seen = max(h.seen, next) // another pass's watermark is as true
	h.mu.Unlock()
	return firstStoreErr
}

// list reads the outbox newest first down to the message after floor
// (the whole outbox when floor is 0), in pages that double.
func (h *HeldRecovery) list(ctx context.Context, floor uint64) ([]enroll.OutboundMessage, error) {
	if floor == 0 {
		return h.d.Store.Messages(ctx, enroll.OutboxFilter{})
	}
	for limit := heldPage; ; limit *= 2 {
		msgs, err := h.d.Store.Messages(ctx, enroll.OutboxFilter{Limit: limit})
		if err != nil || len(msgs) < limit || msgs[len(msgs)-1].ID <= floor {
			return msgs, err
		}
	}
}

// newestResets maps each username (lower case) to the ID of its newest
// RESET message that supersedes older ones: released (queued or on its
// way), or held and the recovery's too. A canceled one set no password; a
// held one younger than the grace belongs to a RESET still at work, which
// may yet set nothing.
func (h *HeldRecovery) newestResets(msgs []enroll.OutboundMessage, now time.Time) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range msgs {
		if m.Purpose != PasswordPurpose || m.Status == enroll.StatusCanceled ||
			(m.Status == enroll.StatusHeld && now.Sub(m.CreatedAt) < h.opt.Grace) {
			continue
		}
		if u := strings.ToLower(m.Username); m.ID > out[u] {
			out[u] = m.ID
		}
	}
	return out
}

// recover finishes held message m (newest is the ID of the user's newest
// RESET message in the pass's listing), or leaves it held (left) while
// the directory does not tell; it returns only store errors.
func (h *HeldRecovery) recover(ctx context.Context, p *pass, m enroll.OutboundMessage, newest uint64) (left bool, err error) {
	if newest > m.ID {
		return false, h.finish(ctx, p, m, heldSuperseded, fmt.Sprintf("message %d held since %s, superseded by message %d", m.ID, stamp(m.CreatedAt), newest))
	}
	if p.dirDown {
		p.left++
		return true, nil
	}
	setAt, err := h.d.Directory.PasswordSetAt(ctx, m.Username)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return false, h.finish(ctx, p, m, heldIncomplete, fmt.Sprintf("message %d held since %s; the account is not in the directory", m.ID, stamp(m.CreatedAt)))
	case err != nil:
		if errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrTLS) {
			p.dirDown = true
		}
		p.left++
		if p.firstErr == nil {
			p.firstErr = err
		}
		return true, nil
	}
	// The user may have texted RESET again while the directory was read.
	if n, err := h.newerReset(ctx, m, p.now); err != nil {
		return false, err
	} else if n != 0 {
		return false, h.finish(ctx, p, m, heldSuperseded, fmt.Sprintf("message %d held since %s, superseded by message %d", m.ID, stamp(m.CreatedAt), n))
	}
	detail := fmt.Sprintf("message %d held since %s; password last set %s", m.ID, stamp(m.CreatedAt), stamp(setAt))
	if setAt.Add(HeldClockSkew).Before(m.CreatedAt) {
		return false, h.finish(ctx, p, m, heldIncomplete, detail)
	}
	return false, h.finish(ctx, p, m, heldSent, detail)
}

// newerReset returns the ID of a RESET message of m's user newer than m
// that supersedes it (newestResets), or 0.
func (h *HeldRecovery) newerReset(ctx context.Context, m enroll.OutboundMessage, now time.Time) (uint64, error) {
	msgs, err := h.d.Store.Messages(ctx, enroll.OutboxFilter{Username: m.Username})
	if err != nil {
		return 0, fmt.Errorf("held recovery: list the messages of %s: %w", m.Username, err)
	}
	if n := h.newestResets(msgs, now)[strings.ToLower(m.Username)]; n > m.ID {
		return n, nil
	}
	return 0, nil
}

// finish takes outcome for m in the outbox and, when this call was the
// one that took it, audits it.
func (h *HeldRecovery) finish(ctx context.Context, p *pass, m enroll.OutboundMessage, outcome heldOutcome, detail string) error {
	var err error
	var action string
	switch outcome {
	case heldSent:
		action = enroll.ActionHeldSent
		err = h.d.Queue.Release(ctx, m.ID)
	case heldIncomplete:
		action = enroll.ActionHeldIncomplete
		body := h.d.Catalog.Text(m.Language, "sms.reset.incomplete", map[string]string{"username": m.Username})
		err = h.d.Queue.Replace(ctx, m.ID, body)
	case heldSuperseded:
		action = enroll.ActionHeldSuperseded
		err = h.d.Queue.Cancel(ctx, m.ID, "superseded by a newer RESET (held recovery)")
	}
	if errors.Is(err, outbox.ErrNotHeld) {
		h.d.Log.DebugContext(ctx, "held recovery: message finished by someone else", "message_id", m.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("held recovery: message %d: %w", m.ID, err)
	}
	h.d.Log.InfoContext(ctx, "held recovery: held RESET message finished", "message_id", m.ID, "action", action, "username", m.Username)
	if _, err := h.d.Store.AppendAudit(ctx, enroll.Event{Time: p.now, Actor: "system", Action: action, Username: m.Username,
		Phone: m.To, Outcome: "ok", Detail: detail}); err != nil {
		return fmt.Errorf("held recovery: audit message %d (%s, done): %w", m.ID, action, err)
	}
	if outcome == heldSent {
		return h.scheduleExpiry(ctx, m)
	}
	return nil
}

// scheduleExpiry records the SMS password check of the password m
// carries, as the RESET would have after its release (webhook_expiry.go),
// due SMSPasswordTTL after now: the user receives it now. It returns only
// a fenced write; other failures are logged and audited.
func (h *HeldRecovery) scheduleExpiry(ctx context.Context, m enroll.OutboundMessage) error {
	if h.opt.SMSPasswordTTL <= 0 {
		return nil
	}
	now := h.opt.Now()
	u, err := h.d.Directory.FindUser(ctx, m.Username)
	if err == nil {
		err = errors.New("the store keeps no SMS password schedule")
		if s, ok := h.d.Store.(smsPasswordScheduler); ok {
			err = s.ScheduleSMSPasswordCheck(ctx, enroll.SMSPasswordCheck{Username: u.Username, DN: u.DN,
				ResetAt: now, Due: now.Add(h.opt.SMSPasswordTTL)})
		}
	}
	if errors.Is(err, enroll.ErrFenced) {
		return fmt.Errorf("held recovery: schedule the SMS password check of %s: %w", m.Username, err)
	}
	if err != nil {
		h.d.Log.ErrorContext(ctx, "held recovery: the texted password will not expire: its check could not be recorded",
			"username", m.Username, "err", err)
		if _, aerr := h.d.Store.AppendAudit(ctx, enroll.Event{Time: now, Actor: "system", Action: smsExpiryAction,
			Username: m.Username, Phone: m.To, Outcome: "error", Detail: "not scheduled: " + err.Error()}); aerr != nil {
			h.d.Log.ErrorContext(ctx, "held recovery: cannot audit", "err", aerr)
		}
	}
	return nil
}

// stamp is a time for an audit detail.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
