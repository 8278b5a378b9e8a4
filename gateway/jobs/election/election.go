package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
)

// DefaultTTL is the session TTL: a leader that dies (or is paused or cut
// off) keeps the leadership that long at most, then another node leads.
const DefaultTTL = 10 * time.Second

// grantTimeout bounds taking a session lease at the start of a campaign.
const grantTimeout = 5 * time.Second

// Config configures a Leader. The zero Node, TTL and Log take the
// defaults.
type Config struct {
	// Client is the etcd client; the caller keeps it (and closes it).
	Client *clientv3.Client
	// Prefix is the store's key prefix (store.etcd.prefix, e.g.
	// "/replyreset/"): the election lives under Prefix+"leader/".
	Prefix string
	Node   string        // this node's ID, the candidates' value (default jobs.NodeID())
	TTL    time.Duration // session TTL, whole seconds (default DefaultTTL)
	Log    *slog.Logger
}

// Leader campaigns in the etcd election of Config.Prefix. Each Campaign
// takes a new session (an etcd lease kept alive while the term lasts), so
// that a term lost is never resumed: the next one has a new key and a new
// revision.
type Leader struct {
	cli    *clientv3.Client
	prefix string // the election's prefix, without the trailing "/"
	node   string
	ttl    int // seconds
	log    *slog.Logger
}

var _ jobs.Leader = (*Leader)(nil)

// New returns the Leader of cfg.
func New(cfg Config) (*Leader, error) {
	if cfg.Client == nil {
		return nil, errors.New("election: no etcd client")
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("election: prefix %q must start and end with /", cfg.Prefix)
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl%time.Second != 0 {
		return nil, fmt.Errorf("election: TTL %s is not a whole number of seconds (at least 1s)", ttl)
	}
	if cfg.Node == "" {
		cfg.Node = jobs.NodeID()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// concurrency.NewElection adds the "/" that ends the prefix.
	return &Leader{cli: cfg.Client, prefix: cfg.Prefix + "leader", node: cfg.Node,
		ttl: int(min(ttl/time.Second, math.MaxInt32)), log: cfg.Log}, nil
}

// Campaign blocks until this node leads or ctx ends. It returns ctx's
// error when ctx ended, and another error when etcd could not be reached
// (jobs.Run then tries again).
func (l *Leader) Campaign(ctx context.Context) (jobs.Term, error) {
	gctx, cancel := context.WithTimeout(ctx, grantTimeout)
	lease, err := l.cli.Grant(gctx, int64(l.ttl))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("election: take a session lease: %w", err)
	}
	// The session's keep-alive outlives ctx: the term, not Campaign's
	// caller, ends it (Resign, or the term's loss).
	sess, err := concurrency.NewSession(l.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(l.ttl),
		concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		l.revoke(lease.ID)
		return nil, fmt.Errorf("election: session: %w", err)
	}
	e := concurrency.NewElection(sess, l.prefix)
	// A session lost while waiting (etcd unreachable past the TTL) ends the
	// campaign too: its key is gone, and waiting on would win nothing.
	cctx, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
		case <-cctx.Done():
		}
		stop()
	}()
	err = e.Campaign(cctx, l.node)
	stop()
	if err != nil {
		closeSession(sess)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("election: campaign: %w", err)
	}
	t := &term{node: l.node, sess: sess, e: e, fence: enroll.Fence{Key: e.Key(), Revision: e.Rev()},
		done: make(chan struct{}), log: l.log}
	t.watch(ctx)
	l.log.DebugContext(ctx, "election: leading", "node", l.node, "key", t.fence.Key, "revision", t.fence.Revision)
	return t, nil
}

// revoke gives a lease back, best effort (it expires by itself anyway).
func (l *Leader) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), grantTimeout)
	defer cancel()
	_, _ = l.cli.Revoke(ctx, id)
}

// closeSession ends a session: its keep-alive stops and its lease is
// revoked (best effort: a lease not revoked expires at its TTL). A closed
// client cannot revoke: the lease is left to expire.
func closeSession(s *concurrency.Session) {
	if s.Client().Ctx().Err() != nil {
		s.Orphan()
		return
	}
	_ = s.Close()
}

// term is one leadership: it lasts while its session lives and its
// election key exists at the revision it was created with.
type term struct {
	node  string
	sess  *concurrency.Session
	e     *concurrency.Election
	fence enroll.Fence
	log   *slog.Logger

	stopWatch context.CancelFunc
	once      sync.Once
	done      chan struct{}
}

var _ jobs.Term = (*term)(nil)

func (t *term) Done() <-chan struct{} { return t.done }
func (t *term) Leader() string        { return t.node }
func (t *term) Revision() int64       { return t.fence.Revision }
func (t *term) Fence() enroll.Fence   { return t.fence }

// Resign deletes the election key, so that another node leads at once,
// and closes the session; Done is then closed.
func (t *term) Resign(ctx context.Context) error {
	err := t.e.Resign(ctx)
	t.end("resigned")
	if err != nil {
		return fmt.Errorf("election: resign: %w", err)
	}
	return nil
}

// end closes Done once, stops the watch and closes the session.
func (t *term) end(why string) {
	t.once.Do(func() {
		close(t.done)
		t.stopWatch()
		closeSession(t.sess)
		t.log.Debug("election: term over", "node", t.node, "key", t.fence.Key, "revision", t.fence.Revision, "why", why)
	})
}

// watch ends the term when the session ends (its lease expired or could
// not be kept alive: etcd unreachable past the TTL, or this process was
// paused that long) or when the election key is gone or was replaced
// (deleted by hand, revoked, or the member this node talks to lost its
// quorum: WithRequireLeader cancels the watch then).
func (t *term) watch(ctx context.Context) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.WithoutCancel(ctx)))
	t.stopWatch = cancel
	wch := t.sess.Client().Watch(wctx, t.fence.Key, clientv3.WithRev(t.fence.Revision+1))
	go func() {
		for {
			select {
			case <-t.sess.Done():
				t.end("session ended")
				return
			case resp, ok := <-wch:
				if wctx.Err() != nil {
					return // ended by Resign or end
				}
				if !ok || resp.Err() != nil {
					t.end("the election key can no longer be watched")
					return
				}
				for _, ev := range resp.Events {
					if ev.Type == clientv3.EventTypeDelete || ev.Kv.CreateRevision != t.fence.Revision {
						t.end("the election key is gone")
						return
					}
				}
			}
		}
	}()
}
