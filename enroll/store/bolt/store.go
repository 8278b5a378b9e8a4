// Package bolt is the enroll.Store kept in one bbolt data file on the
// local disk: the only package that imports go.etcd.io/bbolt.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/replyreset/replyreset/enroll"
)

// Store is the enroll.Store kept in one bbolt data file. It is safe for
// concurrent use; bbolt runs one writer at a time, which is what makes the
// check-and-insert methods atomic.
type Store struct {
	db     *bbolt.DB
	path   string
	closed atomic.Bool
	writes groupCommit
	obs    atomic.Pointer[enroll.StoreObserver]
}

var _ enroll.Store = (*Store)(nil)

// Bucket names. Keys and values:
//
//	meta         "schema" → big-endian uint64 schema version;
//	             "seal_key" → the sealing key's fingerprint (SealKey)
//	enrollments  lower-cased username → JSON Enrollment
//	phones       E.164 → lower-cased username of the active or frozen owner
//	audit        big-endian uint64 sequence → JSON Event (append-only)
//	messages     MessageSid → big-endian expiry (Unix ns)
//	optout       E.164 → big-endian time of the STOP (Unix ns)
//	ratelimit    key → window and hit times (see ratelimit.go)
//	activations       token hash → JSON Activation
//	activation_users  lower-cased username → token hash of the current activation
//	ended_links       token hash → JSON EndedLink: a link used or expired, for its page (ended.go)
//	outbox            big-endian uint64 ID → JSON OutboundMessage
//	outbox_due        priority (1 byte) | NextAttempt (8, ordered Unix ns) | ID (8) → empty,
//	                  for pending messages only (see outbox.go)
//	outbox_provider   provider SID → big-endian uint64 ID
//	lockouts          ordered lockout time (8) | lower-cased username → recorded at (see lockout.go)
//	monitor           name → opaque lockout-monitor state (scan cursor, storm window)
//	sms_checks        lower-cased username → JSON SMSPasswordCheck (see smsexpiry.go)
//	sms_checks_due    Due (8, ordered Unix ns) | lower-cased username → empty
//	reminders         expiry (8, ordered Unix ns) | stage (2) | lower-cased username → sent at (see reminders.go)
//	guard             key → failures and block of a guarded key (see guard.go)
//	api_tokens        token ID → JSON API token record, with its secret's hash
//	api_token_hashes  hash of the secret → token ID
//	api_token_names   lower-cased name → ID of the live (not revoked) token of that name
//	mail_queue        big-endian uint64 ID → JSON QueuedMail (see mailqueue.go)
//	mail_due          NextAttempt (8, ordered Unix ns) | ID (8) → empty, pending mails only
//	admin_sessions    hex SHA-256 of the session ID → JSON AdminSession (see sessions.go)
//	leases            job lease name → expiry | holder (see leases.go)
var (
	bucketMeta        = []byte("meta")
	bucketEnrollments = []byte("enrollments")
	bucketPhones      = []byte("phones")
	bucketAudit       = []byte("audit")
	bucketMessages    = []byte("messages")
	bucketOptOut      = []byte("optout")
	bucketRateLimit   = []byte("ratelimit")

	bucketActivations     = []byte("activations")
	bucketActivationUsers = []byte("activation_users")
	bucketEndedLinks      = []byte("ended_links")
	bucketOutbox          = []byte("outbox")
	bucketOutboxDue       = []byte("outbox_due")
	bucketOutboxProvider  = []byte("outbox_provider")
	bucketLockouts        = []byte("lockouts")
	bucketMonitor         = []byte("monitor")
	bucketGuard           = []byte("guard")
	bucketAPITokens       = []byte("api_tokens")
	bucketAPITokenHashes  = []byte("api_token_hashes")
	bucketAPITokenNames   = []byte("api_token_names")

	allBuckets = [][]byte{bucketMeta, bucketEnrollments, bucketPhones, bucketAudit,
		bucketMessages, bucketOptOut, bucketRateLimit,
		bucketActivations, bucketActivationUsers, bucketEndedLinks,
		bucketOutbox, bucketOutboxDue, bucketOutboxProvider, bucketOutboxRedact,
		bucketLockouts, bucketMonitor,
		bucketSMSChecks, bucketSMSChecksDue, bucketReminders,
		bucketGuard, bucketAPITokens, bucketAPITokenHashes, bucketAPITokenNames,
		bucketMailQueue, bucketMailDue, bucketSessions, bucketLeases}

	keySchema = []byte("schema")
)

// schemaVersion is the layout this code reads and writes. A file with a
// higher version was written by a newer replyreset and is refused rather
// than misread.
const schemaVersion = 1

// ErrInUse is returned by Open when another process holds the data file.
var ErrInUse = errors.New("enroll: data file is in use by another replyreset process")

type inUseError struct{ path string }

func (e inUseError) Error() string {
	return fmt.Sprintf("data file %s is in use by another replyreset process", e.path)
}

func (e inUseError) Is(target error) bool { return target == ErrInUse }

// Option configures Open.
type Option func(*config)

type config struct {
	lockTimeout time.Duration
	readOnly    bool
}

// ReadOnly opens an existing data file without writing to it (a shared
// lock: other read-only opens may share the file, a running serve's
// exclusive lock makes Open fail with ErrInUse): no bucket is created, no
// lease dropped, and every write method fails. For reading a file a
// stopped serve left, as a migration does.
func ReadOnly() Option {
	return func(c *config) { c.readOnly = true }
}

// WithLockTimeout sets how long Open waits for another process to
// release the data file before it gives up with ErrInUse (default 1s).
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// Open opens (creating it with mode 0600 if needed) the bbolt data file
// at path and creates any missing bucket. The file's directory must exist.
// Only one process may hold the file: a second one gets an error matching
// ErrInUse once the lock timeout has passed.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{lockTimeout: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.lockTimeout <= 0 {
		// bbolt waits forever on 0; a stuck start-up is worse than an error.
		cfg.lockTimeout = time.Second
	}
	if cfg.readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("enroll: open data file: %w", err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: cfg.lockTimeout, ReadOnly: cfg.readOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, inUseError{path}
	}
	if err != nil {
		return nil, fmt.Errorf("enroll: open data file %s: %w", path, err)
	}
	run, init := db.Update, initSchema
	if cfg.readOnly {
		run, init = db.View, checkSchema
	}
	if err := run(init); err != nil {
		db.Close()
		return nil, fmt.Errorf("enroll: data file %s: %w", path, err)
	}
	return &Store{db: db, path: path, writes: groupCommit{db: db}}, nil
}

// initSchema creates the buckets, ends the leases a dead process left and
// checks or records the schema version.
func initSchema(tx *bbolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	// The file lock proves that no other handle is open: a lease still in
	// the file was left by a process that died holding it, and ends now
	// instead of at its TTL, so that a restarted serve runs its jobs (the
	// lockout watch, the outbox) at once (enroll.LeaseStore).
	if err := dropLeases(tx); err != nil {
		return fmt.Errorf("drop the leases of a dead process: %w", err)
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keySchema) == nil {
		return meta.Put(keySchema, u64Bytes(schemaVersion))
	}
	return checkSchema(tx)
}

// checkSchema checks the schema version of a file that has one.
func checkSchema(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("no meta bucket: not a replyreset data file")
	}
	v := meta.Get(keySchema)
	switch {
	case v == nil:
		return errors.New("no schema version: not a replyreset data file")
	case len(v) != 8:
		return fmt.Errorf("schema version is corrupt (%d bytes)", len(v))
	case bytesU64(v) > schemaVersion:
		return fmt.Errorf("schema version %d was written by a newer replyreset (this one reads up to %d)",
			bytesU64(v), schemaVersion)
	}
	return nil
}

// Path returns the data file's path.
func (s *Store) Path() string { return s.path }

// Close releases the data file, waiting for running transactions. Closing
// twice is harmless; any other method then returns ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("enroll: close data file %s: %w", s.path, err)
	}
	return nil
}

// Backup writes a consistent copy of the whole data file to w while the
// store stays in use (a read transaction sees one snapshot) and returns the
// number of bytes written. The copy opens with Open.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("enroll: backup %s: %w", s.path, err)
	}
	return n, nil
}

// Check runs bbolt's consistency check over the whole file and returns
// every problem found, joined. It runs in a write transaction that is rolled
// back, because a read-only check is unsafe while writers run.
func (s *Store) Check(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return s.txErr(err)
	}
	defer tx.Rollback()
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("enroll: data file %s is inconsistent: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// Purge removes expired message IDs, the rate-limit hits whose window has
// passed by now (each key's window is the one its last Allow used) and the
// guard entries with neither a live block nor a failure in their window.
func (s *Store) Purge(ctx context.Context, now time.Time) error {
	if err := enroll.CheckNow(now); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if err := purgeMessages(ctx, tx.Bucket(bucketMessages), now); err != nil {
			return err
		}
		if err := purgeRateLimits(ctx, tx.Bucket(bucketRateLimit), now); err != nil {
			return err
		}
		return purgeGuard(ctx, tx.Bucket(bucketGuard), now)
	})
	if err != nil {
		return fmt.Errorf("enroll: purge: %w", err)
	}
	return nil
}

// view runs fn in a read transaction after checking ctx and the store.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	return s.txErr(s.db.View(fn))
}

// update runs fn in a write transaction after checking ctx and the store.
// bbolt commits only if fn returns nil, so a failed check changes nothing.
// Concurrent writes share transactions (group commit, commit.go).
func (s *Store) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	return s.txErr(s.writes.update(fn))
}

func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return enroll.ErrClosed
	}
	return nil
}

// txErr maps bbolt's "not open" (a Close racing the call) to ErrClosed.
func (s *Store) txErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return enroll.ErrClosed
	}
	return err
}

// checkCtxEvery is how many records a long scan reads between context checks.
const checkCtxEvery = 1024

// errIfDone returns ctx's error on every checkCtxEvery-th call.
func errIfDone(ctx context.Context, i int) error {
	if i%checkCtxEvery != 0 {
		return nil
	}
	return ctx.Err()
}

// Ping reports whether the store can run a read transaction.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(*bbolt.Tx) error { return nil })
}

// SetObserver installs o (nil removes it); safe at any time.
func (s *Store) SetObserver(o enroll.StoreObserver) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&o)
}

func (s *Store) observeAudit(ev enroll.Event) {
	if o := s.obs.Load(); o != nil {
		(*o).AuditAppended(ev)
	}
}

func (s *Store) observeMessage(m enroll.OutboundMessage) {
	if o := s.obs.Load(); o != nil {
		m.Sealed = nil // an observer never needs the body
		(*o).MessageUpdated(m)
	}
}

var _ enroll.SealKeyStore = (*Store)(nil)

// keySealKey is the meta key of the sealing key's fingerprint:
//
//	meta  "seal_key" → fingerprint (lower-case hex)
var keySealKey = []byte("seal_key")

// SealKey implements enroll.SealKeyStore; the read and the write share one
// write transaction.
func (s *Store) SealKey(ctx context.Context, fingerprint string) (string, error) {
	if err := enroll.CheckFingerprint(fingerprint); err != nil {
		return "", err
	}
	var recorded string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySealKey); v != nil {
			recorded = string(v)
			return nil
		}
		recorded = fingerprint
		return meta.Put(keySealKey, []byte(fingerprint))
	})
	if err != nil {
		return "", fmt.Errorf("enroll: record the sealing key's fingerprint: %w", err)
	}
	return recorded, nil
}
