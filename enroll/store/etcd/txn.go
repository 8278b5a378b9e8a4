package etcd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

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
	resp, err := t.s.kvTxn(t.ctx, cmps, ops, orElse)
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

// kvGet is one Get bounded by the request timeout.
func (s *Store) kvGet(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, key, opts...)
	if err != nil {
		return nil, s.clientErr(ctx, err)
	}
	return resp, nil
}

// kvTxn is one Txn bounded by the request timeout.
func (s *Store) kvTxn(ctx context.Context, cmps []clientv3.Cmp, ops, orElse []clientv3.Op) (*clientv3.TxnResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if err != nil {
		return nil, s.clientErr(ctx, err)
	}
	return resp, nil
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
