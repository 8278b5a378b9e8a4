package enroll

import (
	"context"
	"errors"
	"io"
	"time"
)

// Store errors, tested with errors.Is.
var (
	ErrNotFound   = errors.New("enroll: not found")
	ErrPhoneTaken = errors.New("enroll: phone number already belongs to another active enrollment")
	ErrClosed     = errors.New("enroll: store closed")
	// ErrInvalid wraps every input a store (or NormalizePhone) rejects:
	// an empty username, a phone not in E.164 form, an unknown State, ...
	// Nothing is changed when it is returned.
	ErrInvalid = errors.New("enroll: invalid input")
	// ErrUnavailable wraps every error that says the store could not be
	// reached in time (an etcd cluster without its quorum): the caller
	// answers "try again in a few minutes" and acts on nothing.
	ErrUnavailable = errors.New("enroll: the store is unavailable")
)

// Store is the one storage contract of the product: everything that must
// survive a restart, or be shared by the nodes of a cluster, goes through
// it. It is made of one small interface per aggregate, and callers take
// the smallest one they need. enroll/store/bolt implements it on one bbolt
// data file; every implementation must pass enroll/store/storetest, which
// covers each method.
//
// Common rules: usernames match case-insensitively (the record keeps the
// spelling last written); phone numbers are E.164 (see NormalizePhone);
// every "now" comes from the caller and must not be zero. Bad input gives an
// error wrapping ErrInvalid (the rules are in validate.go), a done ctx gives
// ctx.Err() (wrapped), a closed store ErrClosed; none of these changes
// anything. A "check-and-..." method is atomic: of concurrent callers,
// exactly one wins.
type Store interface {
	EnrollmentStore
	AuditStore
	MessageStore
	OptOutStore
	RateLimitStore
	GuardStore
	BudgetStore
	ActivationStore
	EndedLinkStore
	OutboxStore
	RedactionStore
	MailQueueStore
	TokenStore
	LockoutStore
	SMSPasswordStore
	ReminderStore
	SessionStore
	LeaseStore
	SealKeyStore
	Backupper
	ObservedStore
	Lifecycle
}

// EnrollmentStore keeps the enrollments and their phone index.
type EnrollmentStore interface {
	// PutEnrollment creates or replaces the enrollment for e.Username and
	// keeps the phone index in step in the same transaction: an active or
	// frozen enrollment owns its phone; a phone owned by another username
	// gives ErrPhoneTaken and changes nothing.
	// An active or frozen enrollment needs a phone; a pending or
	// deactivated one may keep one without owning it.
	PutEnrollment(ctx context.Context, e Enrollment) error
	// Enrollment returns the enrollment for username or ErrNotFound.
	Enrollment(ctx context.Context, username string) (Enrollment, error)
	// EnrollmentByPhone returns the enrollment that owns phone (E.164):
	// only an active or frozen one does; otherwise ErrNotFound.
	EnrollmentByPhone(ctx context.Context, phone string) (Enrollment, error)
	// Enrollments lists all enrollments ordered by username, case-insensitively.
	Enrollments(ctx context.Context) ([]Enrollment, error)
	// UpdateEnrollment reads the enrollment, lets fn change it and writes it
	// back with its phone index in one transaction; fn's error (or
	// ErrPhoneTaken) changes nothing. fn must not change the username.
	UpdateEnrollment(ctx context.Context, username string, fn func(*Enrollment) error) error
	// DeleteEnrollment removes the enrollment and its phone index entry;
	// ErrNotFound if there is none.
	DeleteEnrollment(ctx context.Context, username string) error
}

// AuditStore keeps the append-only audit trail.
type AuditStore interface {
	// Auditor's AppendAudit stores ev with the next sequence number and
	// returns it; ev.Seq is ignored. ev needs an Action and a Time.
	Auditor
	// Audit returns matching events in sequence order, or newest first
	// when f.Newest (Username matches case-insensitively, Action exactly);
	// Limit keeps the first matches in that order.
	Audit(ctx context.Context, f AuditFilter) ([]Event, error)
	// WalkAudit calls fn with the events Audit would return, in the same
	// order, one at a time, until fn returns false: a long trail is read
	// without holding it all in memory, and a reader that has seen enough
	// stops early. fn runs inside a read transaction: it must not write to
	// the store.
	WalkAudit(ctx context.Context, f AuditFilter, fn func(Event) bool) error
}

// MessageStore remembers the webhook MessageSids already handled, so that
// a message Twilio retries is answered once.
type MessageStore interface {
	// MarkMessage records a webhook MessageSid; it returns false if the
	// SID was already recorded and has not expired (it expires at now+ttl,
	// and counts as absent from then on). Check-and-insert is atomic.
	MarkMessage(ctx context.Context, sid string, now time.Time, ttl time.Duration) (first bool, err error)
}

// OptOutStore keeps the STOP and START of each phone number.
type OptOutStore interface {
	// SetOptOut records STOP (true) or START (false) for a phone number.
	SetOptOut(ctx context.Context, phone string, optedOut bool, now time.Time) error
	OptedOut(ctx context.Context, phone string) (bool, error)
}

// RateLimitStore counts hits per key in a sliding window.
type RateLimitStore interface {
	// Allow is a sliding-window rate limiter: it records a hit for key and
	// returns true if key had fewer than limit hits within window before now,
	// that is in (now-window, now]. A refused hit is not recorded.
	// Check-and-record is atomic.
	Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error)
}

// GuardStore counts the attempts at a guessable thing (an admin sign-in,
// per account and per source address) and blocks its key for a while once
// too many came too fast. An attempt is counted before it is tried, in the
// transaction that checks the block, so that "limit failures, then block"
// holds under any concurrency: at most limit attempts get through per
// window, however many run at once. Keys are opaque (at most 512 bytes); the caller picks them, for
// example "admin-login:user:jdoe" and "admin-login:ip:192.0.2.7".
type GuardStore interface {
	// Attempt counts an attempt of key at now, before the caller tries it.
	// When key is blocked at now the attempt is refused (allowed false, the
	// end of the block returned) and not counted; a refused attempt never
	// extends the block. Otherwise it is counted and allowed; when it is the
	// limit-th counted within (now-window, now], the key is blocked from
	// now until now+block (this attempt itself is allowed, and the end of
	// the block is returned), else the zero time is returned. Once a block
	// has ended, the attempts counted before it are forgotten (counting
	// starts afresh). Check-and-count is atomic.
	Attempt(ctx context.Context, key string, now time.Time, window time.Duration, limit int, block time.Duration) (allowed bool, blockedUntil time.Time, err error)
	// RefundAttempt takes back, at now, one attempt of key counted at at
	// (the now of its Attempt) that turned out not to be a failure (the
	// directory did not answer, say), and lifts the key's block, which that
	// attempt helped start. Without such an attempt (purged, cleared, or
	// its block ended by now) nothing changes.
	RefundAttempt(ctx context.Context, key string, at, now time.Time) error
	// Blocked reports whether key is blocked at now, and until when.
	Blocked(ctx context.Context, key string, now time.Time) (until time.Time, blocked bool, err error)
	// ClearFailures forgets key's attempts and lifts its block, if any (a
	// successful sign-in clears its account's failures).
	ClearFailures(ctx context.Context, key string) error
}

// BudgetLimit is one counter a send is charged to: at most Limit hits per
// window under Key. The caller picks the keys.
type BudgetLimit struct {
	Key   string
	Limit int
}

// BudgetStore counts the SMS sent against the budgets (sms.budgets), in
// the rate-limit windows' keyspace.
type BudgetStore interface {
	// SpendBudget charges one hit at now to every limit, in one
	// transaction, if each has fewer than its Limit hits within
	// (now-window, now]. When one is full, nothing is recorded anywhere
	// and its index is returned; otherwise -1. A send therefore never uses
	// up one budget while another refuses it.
	SpendBudget(ctx context.Context, now time.Time, window time.Duration, limits []BudgetLimit) (int, error)
	// RefundBudget takes back a hit SpendBudget recorded at at (a send
	// that did not leave after all): one hit at exactly that time is
	// removed from each key that has one.
	RefundBudget(ctx context.Context, keys []string, at time.Time) error
	// BudgetHits counts the hits recorded under key (by SpendBudget or
	// Allow) within (now-window, now], without recording one.
	BudgetHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
}

// LockoutRetention is how long a handled lockout event is remembered. An
// event whose lockout time is this old is no longer news: RecordLockout
// never reports it as first, and PurgeLockouts removes it.
const LockoutRetention = 30 * 24 * time.Hour

// LockoutStore keeps what the lockout monitor must not forget across
// restarts: the lockout events already handled, so each is alerted once,
// and the monitor's opaque state (the directory scan cursor, the storm
// window).
type LockoutStore interface {
	// RecordLockout records the event (username, lockedAt) and reports
	// whether it is new. Check-and-insert is atomic: of any number of
	// concurrent calls for one event exactly one gets true. Events are
	// told apart by the exact lockedAt, so a later lockout of the same
	// account is a new event. An event whose lockedAt is LockoutRetention
	// or more before now is never first, and is not recorded.
	RecordLockout(ctx context.Context, username string, lockedAt, now time.Time) (first bool, err error)
	// PurgeLockouts forgets the events whose lockedAt is LockoutRetention
	// or more before now and returns how many it removed.
	PurgeLockouts(ctx context.Context, now time.Time) (int, error)

	// MonitorCursor returns the state stored under name (a copy), or nil
	// when there is none.
	MonitorCursor(ctx context.Context, name string) ([]byte, error)
	// SetMonitorCursor stores cursor under name, replacing what was there;
	// a nil or empty cursor deletes it.
	SetMonitorCursor(ctx context.Context, name string, cursor []byte) error
}

// SMSPasswordCheck is one entry of the self-expiry schedule of passwords
// texted by SMS (password.sms_password_ttl): when Due comes, a password
// still unused (still to be changed at next logon) is re-randomised. It
// never holds the password.
type SMSPasswordCheck struct {
	Username string    `json:"username"`
	DN       string    `json:"dn"`
	ResetAt  time.Time `json:"reset_at"` // when the texted password was set
	Due      time.Time `json:"due"`      // ResetAt + the TTL; later after a failed check
	Attempts int       `json:"attempts,omitempty"`
}

// SMSPasswordStore keeps the self-expiry schedule: at most one entry per
// username, the latest reset's.
type SMSPasswordStore interface {
	// ScheduleSMSPasswordCheck stores c, replacing the entry of c.Username
	// if there is one: a new reset restarts the TTL.
	ScheduleSMSPasswordCheck(ctx context.Context, c SMSPasswordCheck) error
	// SMSPasswordCheck returns the entry of username or ErrNotFound.
	SMSPasswordCheck(ctx context.Context, username string) (SMSPasswordCheck, error)
	// DueSMSPasswordChecks returns up to limit entries (0: all) whose Due
	// is not after now, earliest Due first.
	DueSMSPasswordChecks(ctx context.Context, now time.Time, limit int) ([]SMSPasswordCheck, error)
	// RescheduleSMSPasswordCheck sets Due and Attempts of the entry of
	// c.Username if it is still the one of the reset at c.ResetAt, and
	// reports whether it was (a newer reset's entry is left alone).
	RescheduleSMSPasswordCheck(ctx context.Context, c SMSPasswordCheck) (bool, error)
	// FinishSMSPasswordCheck deletes the entry of username if it is still
	// the one of the reset at resetAt, and reports whether it did.
	FinishSMSPasswordCheck(ctx context.Context, username string, resetAt time.Time) (bool, error)
}

// ReminderRetention is how long after a password's expiry its reminders
// are remembered; PurgeReminders forgets older ones.
const ReminderRetention = 30 * 24 * time.Hour

// ReminderStore remembers the password-expiry reminders sent, so that each
// stage goes out once per user and expiry date, also across restarts.
type ReminderStore interface {
	// RecordReminder records the reminder of stage (days before expiry,
	// 1-365) for username's password expiring at expires, and reports
	// whether it is new. Check-and-insert is atomic. Another expiry (a new
	// password) starts a new series. A reminder of a password that expired
	// ReminderRetention or more before now is never new and not recorded.
	RecordReminder(ctx context.Context, username string, expires time.Time, stage int, now time.Time) (first bool, err error)
	// PurgeReminders forgets the reminders of passwords that expired
	// ReminderRetention or more before now and returns how many.
	PurgeReminders(ctx context.Context, now time.Time) (int, error)
}

// SealKeyStore records which sealing key the store's secrets are sealed
// with (Sealer.Fingerprint), so that a node started with another key file
// refuses to start instead of writing secrets the other nodes cannot open.
type SealKeyStore interface {
	// SealKey records fingerprint when the store has none yet and returns
	// it; when one is recorded it returns that one, changing nothing. The
	// caller compares: a recorded fingerprint other than its own means
	// another key. Check-and-record is atomic: of concurrent first callers
	// with different fingerprints exactly one fingerprint is recorded, and
	// every caller gets that one. A fingerprint is 16 to 128 lower-case hex
	// digits (CheckFingerprint); anything else gives ErrInvalid.
	SealKey(ctx context.Context, fingerprint string) (recorded string, err error)
}

// Backupper copies and checks the whole store, for `replyreset backup`,
// `restore` and `check-config`.
type Backupper interface {
	// Backup writes a consistent copy of the whole store to w while it
	// stays in use (one snapshot) and returns the number of bytes written.
	// The copy opens with the same implementation.
	Backup(ctx context.Context, w io.Writer) (int64, error)
	// Check runs the implementation's consistency check over all the data
	// and returns every problem found, joined.
	Check(ctx context.Context) error
}

// StoreObserver is told what a Store durably wrote, for metrics: every
// audit event appended (AppendAudit), and every outbox message enqueued
// (EnqueueMessage) or updated (UpdateMessage). Calls come after the commit, outside the transaction, from the
// writing goroutine; they must be quick and must not call the store.
type StoreObserver interface {
	AuditAppended(ev Event)
	MessageUpdated(m OutboundMessage)
}

// ObservedStore tells a StoreObserver what it durably wrote.
type ObservedStore interface {
	// SetObserver installs o (nil removes it); safe at any time.
	SetObserver(o StoreObserver)
}

// Lifecycle is the store's readiness, its periodic clean-up and its end.
type Lifecycle interface {
	// Ping reports whether the store answers (a read), for /healthz.
	Ping(ctx context.Context) error
	// Purge removes expired message IDs, the rate-limit hits that have
	// left their window by now (the window of the key's latest Allow) and
	// the login-guard entries (GuardStore) whose block has ended or that
	// have neither a block nor an attempt inside their window.
	Purge(ctx context.Context, now time.Time) error
	// Close releases the store, waiting for running calls. Closing twice
	// is harmless; any other method then returns ErrClosed.
	Close() error
}

// LeaseStore keeps the leases that stop two processes (two nodes, or two
// runs in one process) from running one singleton job at once: the
// lockout watch, the expiry reminders, the SMS password expiry. A lease is
// a name held by one holder until an expiry time; the holder renews it
// while its job runs and releases it when the job stops, and a holder that
// dies loses it when it expires. A lease also ends with the store that
// granted it: closing the store ends its leases (their holders ran on it),
// and a store that can prove at open that no earlier handle is still alive
// (bbolt's file lock) ends those a crashed process left, so a restarted
// node runs its jobs at once instead of waiting out the TTL.
// Implementations must pass the lease part of storetest.
//
// Names and holders are opaque, non-empty keys of at most 512 bytes,
// compared exactly; every "now" comes from the caller and must not be
// zero; bad input gives an error wrapping ErrInvalid, a done ctx gives
// ctx.Err(), a closed store ErrClosed, and none of these changes anything.
type LeaseStore interface {
	// AcquireLease gives holder the lease name until now+ttl when it is
	// free, expired (its expiry is at or before now) or already holder's
	// (a renewal), and reports true; it reports false, changing nothing,
	// when another holder holds it unexpired. Check-and-set is atomic: of
	// any number of concurrent calls by different holders for a free
	// lease exactly one gets true. ttl must be positive.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease ends the lease name if holder holds it (expired or
	// not); a lease another holder holds, or none, is left as it is.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// ErrFenced is returned by a store write made under a Fence that no longer
// holds: the leader that made it was deposed (paused, partitioned, slow),
// and nothing was written. The job that got it must stop; the new leader
// does the work.
var ErrFenced = errors.New("enroll: fenced: this node no longer leads")

// Fence names the leadership a background job's writes depend on: the
// election key of the term and the revision at which it was created.
// A store shared by several nodes (etcd) makes every write under a fence
// conditional on that key still existing at that revision, in the same
// transaction, so a deposed leader can never text a lockout twice or send
// a queued message twice. A store only one process can open (bbolt) has
// nothing to fence against and ignores it.
type Fence struct {
	Key      string // the election key of the term
	Revision int64  // its creation revision
}

type fenceKey struct{}

// WithFence returns ctx carrying f: every store write made with it is
// fenced by f (see Fence).
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok && f.Key != ""
}
