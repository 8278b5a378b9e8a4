package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replyreset/replyreset/enroll"
)

// tx is one attempt of a read-modify-write: the keys it read, each with the
// ModRevision it had (0: absent), and the writes it will make. Reads see
// one snapshot (the revision of the first read) and the attempt's own
// writes. commit sends the writes in one etcd transaction compared on
// every key read, so it succeeds only if none of them changed since:
// optimistic concurrency with serializable results. Keys are relative to
// the store's prefix.
type tx struct {
	s     *Store
	ctx   context.Context
	rev   int64 // snapshot revision; 0 until the first read
	reads map[string]int64
	vals  map[string][]byte
	puts  map[string]write
	order []string // keys of puts in the order first written

	attempt   int             // 0 on the first run of an update's fn
	committed int64           // the revision the commit wrote at
	assumed   map[string]bool // keys taken from a cache instead of read
}

type write struct {
	val       []byte // nil: delete
	lease     clientv3.LeaseID
	keepLease bool // keep the key's current etcd lease
}

func (s *Store) newTx(ctx context.Context) *tx {
	return &tx{s: s, ctx: ctx, reads: map[string]int64{}, vals: map[string][]byte{}, puts: map[string]write{}}
}

// get returns the value of key (nil when absent).
func (t *tx) get(key string) ([]byte, error) {
	if w, ok := t.puts[key]; ok {
		return w.val, nil
	}
	if _, ok := t.reads[key]; ok {
		return t.vals[key], nil
	}
	kv, err := t.fetch(key)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		t.reads[key] = 0
		return nil, nil
	}
	t.reads[key] = kv.ModRevision
	t.vals[key] = kv.Value
	return kv.Value, nil
}

func (t *tx) fetch(key string) (*mvccpb.KeyValue, error) {
	var opts []clientv3.OpOption
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	resp, err := t.s.kvGet(t.ctx, t.s.prefix+key, opts...)
	if err != nil {
		return nil, err
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// assume takes key as holding val at ModRevision rev (0: absent) without
// reading it: the commit's compare checks the guess, and a wrong one is a
// conflict, after which the update runs again on real reads (attempt > 0).
// It saves a round trip where the guess is usually right.
func (t *tx) assume(key string, val []byte, rev int64) {
	if _, ok := t.reads[key]; ok {
		return
	}
	if t.assumed == nil {
		t.assumed = map[string]bool{}
	}
	t.assumed[key] = true
	t.reads[key], t.vals[key] = rev, val
}

// errGuessed: fn failed on a state it assumed (guessed) rather than read;
// update runs it again on real reads.
var errGuessed = errors.New("failed on a guessed state")

// guessed returns err, or errGuessed when key was assumed: an update must
// not fail on a guess that no compare has checked.
func (t *tx) guessed(key string, err error) error {
	if t.assumed[key] {
		return errGuessed
	}
	return err
}

// put writes val under key at commit, on no etcd lease.
func (t *tx) put(key string, val []byte) { t.putLease(key, val, clientv3.NoLease) }

// putLease writes val under key at commit, attached to lease (a TTL
// record disappears with it).
func (t *tx) putLease(key string, val []byte, lease clientv3.LeaseID) {
	if val == nil {
		val = []byte{}
	}
	t.write(key, write{val: val, lease: lease})
}

// putKeepLease writes val under key at commit on the lease the key already
// has (a TTL record rewritten keeps its TTL).
func (t *tx) putKeepLease(key string, val []byte) {
	if val == nil {
		val = []byte{}
	}
	t.write(key, write{val: val, keepLease: true})
}

// del deletes key at commit.
func (t *tx) del(key string) { t.write(key, write{}) }

func (t *tx) write(key string, w write) {
	if _, ok := t.puts[key]; !ok {
		t.order = append(t.order, key)
	}
	t.puts[key] = w
}

// errConflict: a key the attempt read changed before it committed.
var errConflict = errors.New("conflict")

// commit sends the writes (if any) compared on every key read and on the
// fence ctx carries. It returns errConflict when a key read has changed,
// and an error wrapping enroll.ErrFenced when the fence no longer holds.
func (t *tx) commit() error {
	if len(t.order) == 0 {
		return nil
	}
	reads := make([]string, 0, len(t.reads))
	for k := range t.reads {
		reads = append(reads, k)
	}
	sort.Strings(reads)
	cmps := make([]clientv3.Cmp, 0, len(reads)+1)
	for _, k := range reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(t.s.prefix+k), "=", t.reads[k]))
	}
	fence, fenced := enroll.FenceFrom(t.ctx)
	var orElse []clientv3.Op
	if fenced {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(fence.Key), "=", fence.Revision))
		orElse = append(orElse, clientv3.OpGet(fence.Key, clientv3.WithKeysOnly()))
	}
	ops := make([]clientv3.Op, 0, len(t.order))
	for _, k := range t.order {
		w := t.puts[k]
		switch {
		case w.val == nil:
			ops = append(ops, clientv3.OpDelete(t.s.prefix+k))
		case w.keepLease:
			ops = append(ops, clientv3.OpPut(t.s.prefix+k, string(w.val), clientv3.WithIgnoreLease()))
		case w.lease != clientv3.NoLease:
			ops = append(ops, clientv3.OpPut(t.s.prefix+k, string(w.val), clientv3.WithLease(w.lease)))
		default:
			ops = append(ops, clientv3.OpPut(t.s.prefix+k, string(w.val)))
		}
	}
	resp, err := t.send(cmps, ops, orElse)
	if err != nil {
		return err
	}
	if resp.Succeeded {
		t.committed = resp.Header.Revision
		return nil
	}
	if fenced {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 || kvs[0].CreateRevision != fence.Revision {
			return fmt.Errorf("%w (election key %s, revision %d)", enroll.ErrFenced, fence.Key, fence.Revision)
		}
	}
	return errConflict
}

// send sends the commit's transaction, again after an attempt that failed
// for want of an answer (the member was killed, the leader changed, the
// attempt timed out: retryable), within the request timeout. Such an
// attempt may have been applied all the same: a retry of a
// create-if-absent would then find its own key and report a duplicate, an
// append would append twice. The retry's compares keep it from applying
// on top of an earlier attempt that was (the keys it read have changed);
// when a retry compares false, landed checks whether an earlier attempt
// is what changed them, and if so the commit is that attempt's. A commit
// that reads nothing only puts and deletes: applied twice, it leaves what
// applied once does.
func (t *tx) send(cmps []clientv3.Cmp, ops, orElse []clientv3.Op) (*clientv3.TxnResponse, error) {
	deadline := time.Now().Add(t.s.timeout)
	doubt := false // an earlier attempt got no answer: it may have been applied
	for n := 0; ; n++ {
		resp, err := attempt(t.s, t.ctx, deadline, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return t.s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
		})
		if err == nil && (resp.Succeeded || !doubt) {
			return resp, nil
		}
		if err == nil {
			// Compared false after a doubtful attempt: the keys changed,
			// perhaps by that very attempt.
			rev, lerr := t.landed(deadline)
			switch {
			case lerr != nil:
				return nil, t.s.clientErr(t.ctx, lerr) // applied or not, nobody can say
			case rev != 0:
				return &clientv3.TxnResponse{Succeeded: true, Header: &etcdserverpb.ResponseHeader{Revision: rev}}, nil
			}
			return resp, nil
		}
		if !retryable(t.ctx, err) || !pause(t.ctx, deadline, n) {
			return nil, t.s.clientErr(t.ctx, err)
		}
		doubt = true
	}
}

// landed reports the revision at which an earlier attempt of this commit
// was applied, or 0 when none was (yet: an attempt lost with a dead leader
// may still be applied later, which the compares of the next attempt
// detect). An attempt was applied at revision R if every key it puts was
// written at R with the attempt's value: a revision is one transaction, so
// only a transaction writing the very same bytes to the very same keys
// could pass for this one (two deliveries of one SID marked at the same
// nanosecond, which are one delivery). R is found as the revision of a put
// key that still holds the value; the keys are then read as of R, so that
// a write since (a counter bumped by the next append) does not hide it. A
// commit of deletes only is idempotent and never landed: it is sent again.
func (t *tx) landed(deadline time.Time) (int64, error) {
	var puts []string
	for _, k := range t.order {
		if t.puts[k].val != nil {
			puts = append(puts, k)
		}
	}
	if len(puts) == 0 {
		return 0, nil
	}
	read := func(rev int64) (*clientv3.TxnResponse, error) {
		gets := make([]clientv3.Op, len(puts))
		for i, k := range puts {
			gets[i] = clientv3.OpGet(t.s.prefix+k, clientv3.WithRev(rev))
		}
		var resp *clientv3.TxnResponse
		var err error
		for n := 0; ; n++ {
			resp, err = attempt(t.s, t.ctx, deadline, func(ctx context.Context) (*clientv3.TxnResponse, error) {
				return t.s.cli.Txn(ctx).Then(gets...).Commit()
			})
			if err == nil || !retryable(t.ctx, err) || !pause(t.ctx, deadline, n) {
				return resp, err
			}
		}
	}
	ours := func(resp *clientv3.TxnResponse, i int) *mvccpb.KeyValue {
		kvs := resp.Responses[i].GetResponseRange().Kvs
		if len(kvs) == 1 && bytes.Equal(kvs[0].Value, t.puts[puts[i]].val) && kvs[0].ModRevision > t.rev {
			return kvs[0]
		}
		return nil
	}
	now, err := read(0)
	if err != nil {
		return 0, err
	}
	var rev int64
	for i := range puts {
		if kv := ours(now, i); kv != nil {
			rev = kv.ModRevision
			break
		}
	}
	if rev == 0 {
		return 0, nil
	}
	then, err := read(rev)
	if err != nil {
		return 0, err
	}
	for i := range puts {
		if kv := ours(then, i); kv == nil || kv.ModRevision != rev {
			return 0, nil
		}
	}
	return rev, nil
}

// maxAttempts bounds the retries of a transaction that keeps conflicting.
const maxAttempts = 200

// update runs fn in a tx and commits its writes, again on a fresh tx while
// the commit conflicts (bounded, honouring ctx). fn may run more than once:
// it must have no effect but its writes and its return values, which it
// must set afresh on each run. fn's error is returned as is and writes
// nothing.
func (s *Store) update(ctx context.Context, fn func(*tx) error) error {
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.run(ctx, fn)
}

// run is update on a store already begun.
func (s *Store) run(ctx context.Context, fn func(*tx) error) error {
	for attempt := 0; ; attempt++ {
		t := s.newTx(ctx)
		t.attempt = attempt
		if err := fn(t); err != nil {
			if errors.Is(err, errGuessed) && attempt < maxAttempts {
				continue
			}
			return err
		}
		err := t.commit()
		s.seqs.settle(t, err)
		if !errors.Is(err, errConflict) {
			if errors.Is(err, errLeaseGone) && attempt < maxAttempts {
				s.forgetLeases(ctx)
				continue
			}
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("%w: still conflicting after %d attempts", ErrUnavailable, maxAttempts)
		}
		if attempt > 2 {
			d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
	}
}

// view runs fn in a tx that must not write: its reads see one snapshot.
func (s *Store) view(ctx context.Context, fn func(*tx) error) error {
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	t := s.newTx(ctx)
	err = fn(t)
	if errors.Is(err, errConflict) {
		// Not run again: fn may have handed out what it read already.
		return fmt.Errorf("%w: etcd compacted the revision %d this read was at; try again", ErrUnavailable, t.rev)
	}
	if err != nil {
		return err
	}
	if len(t.order) != 0 {
		return errors.New("enroll: etcd store: a read wrote")
	}
	return nil
}

// kvGet is one Get, tried again after an attempt that got no answer (a
// read changes nothing, so it is always safe to repeat), within the
// request timeout.
func (s *Store) kvGet(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return retried(s, ctx, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return s.cli.Get(ctx, key, opts...)
	})
}

// kvTxn is one Txn bounded by the request timeout, never sent again: for
// callers that handle an unanswered transaction themselves (an import's
// batches). A commit retries through send instead.
func (s *Store) kvTxn(ctx context.Context, cmps []clientv3.Cmp, ops, orElse []clientv3.Op) (*clientv3.TxnResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if err != nil {
		return nil, s.clientErr(ctx, err)
	}
	return resp, nil
}

// grant grants an etcd lease of ttl seconds, tried again after an attempt
// that got no answer: a grant applied twice only leaves an unused lease,
// which expires with its TTL.
func (s *Store) grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	return retried(s, ctx, func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) {
		return s.cli.Grant(ctx, ttl)
	})
}

// retried runs the repeatable request op until it succeeds, fails for a
// reason a retry cannot cure, or the request timeout passes, and maps its
// error (clientErr).
func retried[R any](s *Store, ctx context.Context, op func(context.Context) (R, error)) (R, error) {
	deadline := time.Now().Add(s.timeout)
	for n := 0; ; n++ {
		resp, err := attempt(s, ctx, deadline, op)
		if err == nil {
			return resp, nil
		}
		if !retryable(ctx, err) || !pause(ctx, deadline, n) {
			return resp, s.clientErr(ctx, err)
		}
	}
}

// attemptTimeout bounds one attempt of a request. The request timeout
// (5 s by default) is the time a caller waits before it is told the
// cluster does not answer; one attempt gets a fraction of it, so that a
// request stuck on a member that was just killed, or on a follower whose
// leader died (the proposal is lost with it), is sent again, to a live
// member or to the new leader (an election takes about a second), before
// the caller gives up. Without it the first write after the raft leader
// died took the whole request timeout and failed although two members of
// three lived (OneMemberDown/RaftLeader).
const (
	attemptTimeout    = time.Second
	minAttemptTimeout = 250 * time.Millisecond
)

// attempt runs op once, bounded by a share of the request timeout and by
// deadline, the end of the whole request.
func attempt[R any](s *Store, ctx context.Context, deadline time.Time, op func(context.Context) (R, error)) (R, error) {
	d := min(max(s.timeout/4, minAttemptTimeout), attemptTimeout, time.Until(deadline))
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return op(actx)
}

// pause waits before retry n+1 (25 ms, doubled each time, at most 200 ms,
// jittered) and reports false when the wait would pass deadline or ctx
// ended: then the request fails.
func pause(ctx context.Context, deadline time.Time, n int) bool {
	d := min(25*time.Millisecond<<min(n, 3), 200*time.Millisecond)
	d = d/2 + rand.N(d/2+1)
	if time.Until(deadline) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryable reports whether err, of one attempt, says that the cluster did
// not answer in time (the attempt's own timeout, a member unreachable, no
// leader or a leader change): another attempt may get through. A caller
// whose ctx ended, and every answer of the cluster, are final.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return errors.Is(unavailable(err), ErrUnavailable)
}

// errLeaseGone: a TTL record was written on an etcd lease that has just
// expired; the write is retried on a new one.
var errLeaseGone = errors.New("etcd lease not found")

// clientErr maps an error of the client: the caller's done ctx gives its
// error, a lost lease errLeaseGone, a timeout or an unreachable cluster
// ErrUnavailable, and ErrClosed a closed client.
func (s *Store) clientErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return errLeaseGone
	case errors.Is(err, rpctypes.ErrCompacted):
		return errConflict // the snapshot was compacted away: an update reads again
	case errors.Is(err, context.Canceled) && s.isClosed():
		return enroll.ErrClosed
	}
	return unavailable(err)
}

func (s *Store) isClosed() bool {
	if s.mu.TryRLock() {
		defer s.mu.RUnlock()
		return s.closed
	}
	return true // Close holds the lock
}

// unavailable wraps err in ErrUnavailable when it says the cluster was not
// reached in time.
func unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrTimeout) ||
		errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) || errors.Is(err, rpctypes.ErrLeaderChanged) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return err
}

// quietLogger keeps the client's own logging out of the product's log.
func quietLogger() *zap.Logger { return zap.NewNop() }
