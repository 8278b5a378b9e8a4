package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/replyreset/replyreset/enroll"
)

// Store is the enroll.Store kept under one key prefix of an etcd cluster.
// Every record is one key; every write that must not be lost or doubled is
// one transaction compared on revisions (txn.go). It is safe for
// concurrent use, and by several processes at once.
type Store struct {
	cli     *clientv3.Client
	owned   bool // Close closes cli
	prefix  string
	timeout time.Duration
	log     *slog.Logger

	mu     sync.RWMutex // read-held by every call; Close takes it to wait for them
	closed bool

	obs    atomic.Pointer[enroll.StoreObserver]
	ttl    ttlLeases
	seqs   seqCache
	msgs   msgCache
	sessMu sync.Mutex
	sess   *concurrency.Session // the etcd lease the job leases hang on
}

var _ enroll.Store = (*Store)(nil)

// ErrUnavailable wraps every error that comes from not reaching the
// cluster's quorum in time (the request timeout passed, or no member
// answered): the caller may answer 503 and try again later. It wraps the
// backend-neutral enroll.ErrUnavailable, so errors.Is matches either.
var ErrUnavailable = fmt.Errorf("%w: the etcd cluster does not answer", enroll.ErrUnavailable)

// Config says how Open reaches the cluster.
type Config struct {
	Endpoints []string
	// Prefix is the key prefix everything lives under (default
	// "/replyreset/"); it ends with "/".
	Prefix             string
	TLS                *tls.Config
	Username, Password string
	// DialTimeout bounds the first connection (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds each request to the cluster (default 5s):
	// past it, a call fails with ErrUnavailable.
	RequestTimeout time.Duration
	Log            *slog.Logger
}

// Open connects to the cluster of cfg and opens the store under its prefix.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cli, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, cli, Options{Prefix: cfg.Prefix, RequestTimeout: cfg.RequestTimeout, Log: cfg.Log})
	if err != nil {
		cli.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Dial is the etcd client of cfg (its Prefix aside), quiet in the
// product's log, for Open and for tools that write a prefix before any
// store opens it (a restore); the caller closes it.
func Dial(ctx context.Context, cfg Config) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, enroll.Invalidf("etcd store: no endpoints")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Context:     context.WithoutCancel(ctx),
		Logger:      quietLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: connect to etcd %s: %w", strings.Join(cfg.Endpoints, ","), unavailable(err))
	}
	return cli, nil
}

// Options configure New.
type Options struct {
	Prefix         string        // default "/replyreset/"
	RequestTimeout time.Duration // default 5s
	Log            *slog.Logger
}

// New opens the store under opts.Prefix on an existing client, which the
// caller keeps (Close leaves it open). It checks that the cluster answers
// and records or checks the schema version.
func New(ctx context.Context, cli *clientv3.Client, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = "/replyreset/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		return nil, enroll.Invalidf("etcd store: prefix %q does not end with /", opts.Prefix)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cli: cli, prefix: opts.Prefix, timeout: opts.RequestTimeout, log: opts.Log}
	s.ttl.s = s
	if err := s.initSchema(ctx); err != nil {
		return nil, fmt.Errorf("enroll: etcd store %s: %w", s.prefix, err)
	}
	return s, nil
}

// schemaVersion is the key layout this code reads and writes (keys.go).
const schemaVersion = "1"

func (s *Store) initSchema(ctx context.Context) error {
	return s.update(ctx, func(t *tx) error {
		v, err := t.get(keySchema)
		switch {
		case err != nil:
			return err
		case v == nil:
			t.put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %s is not the one this replyreset reads (%s)", v, schemaVersion)
		}
		return nil
	})
}

// Prefix returns the key prefix the store lives under.
func (s *Store) Prefix() string { return s.prefix }

// Client is the etcd client the store runs on, for the leader election
// that goes with it; the store keeps it (Close closes it when Open made it).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Close waits for running calls, ends the job leases this store granted
// (LeaseStore: they end with the store) and, when Open made the client,
// closes it. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var errs []error
	s.sessMu.Lock()
	if s.sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		if _, err := s.cli.Revoke(ctx, s.sess.Lease()); err != nil {
			errs = append(errs, fmt.Errorf("end the job leases: %w", unavailable(err)))
		}
		cancel()
		s.sess.Orphan()
		s.sess = nil
	}
	s.sessMu.Unlock()
	if s.owned {
		if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("enroll: close etcd store %s: %w", s.prefix, err)
	}
	return nil
}

// begin checks ctx and the store and read-locks it for one call; the
// returned function ends the call.
func (s *Store) begin(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, enroll.ErrClosed
	}
	return s.mu.RUnlock, nil
}

// Ping reads one key with a linearizable read: it fails when the cluster
// has no quorum.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(t *tx) error {
		_, err := t.get(keySchema)
		return err
	})
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

// Health is the store's state for /healthz.
type Health struct {
	Backend string   `json:"backend"` // "etcd"
	Members []Member `json:"members"`
	// Reachable counts the members that answered.
	Reachable int `json:"reachable"`
}

// Member is one member of the cluster as seen from this node.
type Member struct {
	Name      string   `json:"name"`
	ID        uint64   `json:"id"`
	ClientURL []string `json:"client_urls"`
	Reachable bool     `json:"reachable"`
	Leader    bool     `json:"leader"`
	Error     string   `json:"error,omitempty"`
}

// statusTimeout bounds the status request to one member, so that a dead
// member does not use up the whole health check.
const statusTimeout = 2 * time.Second

// Health lists the cluster's members (MemberList) and asks each for its
// status on its first client URL: reachable or not, leader or not. The
// error is set when the member list itself cannot be had (no quorum
// reachable): it wraps ErrUnavailable, and the members are then the
// client's endpoints, named by URL, each reachable or not.
func (s *Store) Health(ctx context.Context) (Health, error) {
	end, err := s.begin(ctx)
	if err != nil {
		return Health{Backend: "etcd"}, err
	}
	defer end()
	h := Health{Backend: "etcd"}
	// Half the status budget for the list, so that without quorum the
	// endpoints can still be asked within a health check's time.
	rctx, cancel := context.WithTimeout(ctx, min(s.timeout, statusTimeout/2))
	defer cancel()
	list, err := s.cli.MemberList(rctx)
	if err != nil {
		// Without quorum there is no member list: say which endpoints
		// answer all the same, by their client URL.
		s.endpointHealth(ctx, &h)
		return h, fmt.Errorf("enroll: etcd member list: %w", s.clientErr(ctx, err))
	}
	for _, m := range list.Members {
		mem := Member{Name: m.Name, ID: m.ID, ClientURL: m.ClientURLs}
		if len(m.ClientURLs) == 0 {
			mem.Error = "no client URL (not started yet)"
			h.Members = append(h.Members, mem)
			continue
		}
		sctx, scancel := context.WithTimeout(ctx, min(s.timeout, statusTimeout))
		st, err := s.cli.Status(sctx, m.ClientURLs[0])
		scancel()
		if err != nil {
			mem.Error = s.clientErr(ctx, err).Error()
		} else {
			mem.Reachable = true
			mem.Leader = st.Leader == m.ID
			h.Reachable++
		}
		h.Members = append(h.Members, mem)
	}
	return h, nil
}

// endpointHealth fills h from the client's endpoints, when the member
// list cannot be had: each is named by its URL, reachable when it answers
// a status request (asked of all at once: dead members time out together).
func (s *Store) endpointHealth(ctx context.Context, h *Health) {
	eps := s.cli.Endpoints()
	mems := make([]Member, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() {
			mem := Member{Name: ep, ClientURL: []string{ep}}
			sctx, cancel := context.WithTimeout(ctx, min(s.timeout, statusTimeout))
			defer cancel()
			st, err := s.cli.Status(sctx, ep)
			if err != nil {
				mem.Error = s.clientErr(ctx, err).Error()
			} else {
				mem.ID, mem.Reachable = st.Header.MemberId, true
				mem.Leader = st.Leader != 0 && st.Leader == st.Header.MemberId
			}
			mems[i] = mem
		})
	}
	wg.Wait()
	for _, m := range mems {
		if m.Reachable {
			h.Reachable++
		}
	}
	h.Members = mems
}

// keySealKey holds the sealing key's fingerprint (enroll.SealKeyStore).
const keySealKey = "meta/seal_key"

// SealKey records fingerprint if the store has none (create-if-absent:
// of concurrent first callers on any node one wins) and returns the one
// recorded.
func (s *Store) SealKey(ctx context.Context, fingerprint string) (string, error) {
	if err := enroll.CheckFingerprint(fingerprint); err != nil {
		return "", err
	}
	var recorded string
	err := s.update(ctx, func(t *tx) error {
		v, err := t.get(keySealKey)
		if err != nil {
			return err
		}
		if v != nil {
			recorded = string(v)
			return nil
		}
		recorded = fingerprint
		t.put(keySealKey, []byte(fingerprint))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("enroll: record the sealing key's fingerprint: %w", err)
	}
	return recorded, nil
}
