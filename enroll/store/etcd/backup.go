package etcd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/layout"
)

// Backup writes every key under the prefix as it was at one revision (a
// consistent snapshot while the store stays in use) as a layout stream
// (enroll/store/layout: a header with the count of each kind, then one
// line per key with its TTL expiry), a page at a time, and returns the
// number of bytes written. The live keys are left out (layout.Live: the
// job leases end with the store that granted them, the election belongs
// to the running nodes). Restore loads the copy.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(ctx, func(t *tx) error {
		counts := layout.Counts{}
		if err := t.scanRecords(func(k string, _ []byte) error { counts.Add(k); return nil }); err != nil {
			return err
		}
		sw, err := layout.NewWriter(w, layout.Header{Source: "etcd:" + s.prefix, Revision: t.rev,
			Time: time.Now().UTC(), Counts: counts})
		if err != nil {
			return err
		}
		err = t.scanRecords(func(k string, v []byte) error { return sw.Write(layout.NewRecord(k, v)) })
		n = sw.Bytes()
		return err
	})
	if err != nil {
		return n, fmt.Errorf("enroll: backup etcd prefix %s: %w", s.prefix, err)
	}
	return n, nil
}

// scanRecords calls fn with every key but the live ones, in key order,
// at t's snapshot (both scans of a Backup see the same keys).
func (t *tx) scanRecords(fn func(k string, v []byte) error) error {
	if _, err := t.get(keySchema); err != nil { // fixes the snapshot revision
		return err
	}
	return t.scan("", "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
		if layout.Live(k) {
			return true, nil
		}
		return true, fn(k, kv.Value)
	})
}

// ErrNotEmpty is returned by Restore and Import when the target prefix
// holds records.
var ErrNotEmpty = errors.New("enroll: the etcd prefix is not empty")

// CheckBackup reads a backup Backup wrote (layout.Read), without loading
// it, and returns how many keys it holds and the revision it was read at.
func CheckBackup(r io.Reader) (keys int, revision int64, err error) {
	h, n, err := layout.Read(r, nil)
	return n.Total(), h.Revision, err
}

// Restore loads a backup Backup wrote into prefix, which must hold no
// record (a fresh Open's meta/schema aside), and returns the number of
// keys written: Import without options.
func Restore(ctx context.Context, cli *clientv3.Client, prefix string, r io.Reader) (int, error) {
	res, err := Import(ctx, cli, prefix, r, ImportOptions{})
	return res.Written.Total(), err
}

// ImportOptions say how Import writes a stream.
type ImportOptions struct {
	// Now is when the TTLs of the records run from (default time.Now).
	Now time.Time
	// Rewrite, when set, rewrites each record before it is written (the
	// re-sealing of a migration); keep false drops it.
	Rewrite func(layout.Record) (rec layout.Record, keep bool, err error)
	// Replace first deletes every key of the prefix but meta/schema and
	// the live ones (leases/, leader/), in one transaction, instead of
	// refusing a prefix that holds records.
	Replace bool
	// RequestTimeout bounds each request (default 30s).
	RequestTimeout time.Duration
}

// ImportResult counts what Import did, per kind.
type ImportResult struct {
	Header  layout.Header
	Read    layout.Counts // the records of the stream
	Written layout.Counts // written (not counted: a meta/schema or meta/seal_key there already, equal)
	Expired layout.Counts // TTL records that had ended: not written
	Skipped layout.Counts // live keys and records Rewrite dropped
	// Values maps each key written to the SHA-256 of its value, for Verify.
	Values map[string][sha256.Size]byte
}

// importOps and importBytes bound one import transaction: at most importOps keys
// (etcd allows 128 operations per transaction by default) and about
// importBytes of values (its request limit is 1.5 MiB).
const (
	importOps   = 100
	importBytes = 1 << 20
)

// Import writes the records of a layout stream under prefix. The prefix
// must hold no record (only meta/schema, what a fresh Open writes, and a
// meta/seal_key equal to the stream's) unless opts.Replace. Live keys
// (leases/, leader/) are never written; TTL records go on etcd leases of
// their remaining life, and those that have ended are counted, not
// written. Each transaction writes about 1 MiB, each key created only if
// absent, so an import racing a node that starts meanwhile stops rather
// than overwrite it. A damaged or truncated stream fails when its
// damage is read (the end, for a truncation): callers that want nothing
// written then check it with layout.Read first.
func Import(ctx context.Context, cli *clientv3.Client, prefix string, r io.Reader, opts ImportOptions) (ImportResult, error) {
	res := ImportResult{Read: layout.Counts{}, Written: layout.Counts{}, Expired: layout.Counts{},
		Skipped: layout.Counts{}, Values: map[string][sha256.Size]byte{}}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	s := bare(cli, prefix, opts.RequestTimeout)
	present, err := s.prepareImport(ctx, opts.Replace)
	if err != nil {
		return res, fmt.Errorf("enroll: import into %s: %w", prefix, err)
	}
	b := importTxn{s: s, res: &res}
	res.Header, res.Read, err = layout.Read(r, func(rec layout.Record) error {
		if layout.Live(rec.Key) {
			res.Skipped.Add(rec.Key)
			return nil
		}
		if opts.Rewrite != nil {
			var keep bool
			var err error
			if rec, keep, err = opts.Rewrite(rec); err != nil {
				return err
			} else if !keep {
				res.Skipped.Add(rec.Key)
				return nil
			}
		}
		if v, ok := present[rec.Key]; ok {
			if !bytes.Equal(v, rec.Value) {
				return fmt.Errorf("%w: %s holds %s = %q, the stream %q", ErrNotEmpty, prefix, rec.Key, v, rec.Value)
			}
			return nil // there already, as the stream has it
		}
		lease := clientv3.NoLease
		if life, ttl := rec.TTL(opts.Now); ttl {
			if life <= 0 {
				res.Expired.Add(rec.Key)
				return nil
			}
			var err error
			if lease, err = s.ttl.lease(ctx, life); err != nil {
				return err
			}
		}
		return b.add(ctx, rec, lease)
	})
	if err == nil {
		err = b.flush(ctx)
	}
	if err != nil {
		return res, fmt.Errorf("enroll: import into %s: %w", prefix, err)
	}
	return res, nil
}

// bare is a Store on cli under prefix that has not checked the schema:
// for Import and Verify, which work on a prefix no store has opened.
func bare(cli *clientv3.Client, prefix string, timeout time.Duration) *Store {
	s := &Store{cli: cli, prefix: prefix, timeout: timeout, log: slog.New(slog.DiscardHandler)}
	s.ttl.s = s
	return s
}

// prepareImport returns the meta keys an import may find already written
// (meta/schema, meta/seal_key) with their values, after checking that the
// prefix holds nothing else, or with replace deleting everything else
// but the live keys.
func (s *Store) prepareImport(ctx context.Context, replace bool) (map[string][]byte, error) {
	p := s.prefix
	if replace {
		// Every range between the keys kept, sorted: leader/, leases/, meta/schema.
		kept := [][2]string{{p + layout.Leader, clientv3.GetPrefixRangeEnd(p + layout.Leader)},
			{p + layout.Leases, clientv3.GetPrefixRangeEnd(p + layout.Leases)},
			{p + layout.KeySchema, p + layout.KeySchema + "\x00"}}
		var ops []clientv3.Op
		from := p
		for _, k := range kept {
			ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(k[0])))
			from = k[1]
		}
		ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(p))))
		if _, err := s.kvTxn(ctx, nil, ops, nil); err != nil {
			return nil, err
		}
	}
	total, err := s.kvGet(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	present := map[string][]byte{}
	for _, k := range []string{layout.KeySchema, layout.KeySealKey} {
		resp, err := s.kvGet(ctx, p+k)
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 1 {
			present[k] = resp.Kvs[0].Value
		}
	}
	if !replace && total.Count > int64(len(present)) {
		return nil, fmt.Errorf("%w: %s holds %d keys", ErrNotEmpty, p, total.Count)
	}
	return present, nil
}

// importTxn gathers the puts of one import transaction.
type importTxn struct {
	s     *Store
	res   *ImportResult
	cmps  []clientv3.Cmp
	ops   []clientv3.Op
	recs  []layout.Record
	bytes int
}

func (b *importTxn) add(ctx context.Context, rec layout.Record, lease clientv3.LeaseID) error {
	if b.bytes+len(rec.Key)+len(rec.Value) > importBytes {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	k := b.s.prefix + rec.Key
	b.cmps = append(b.cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	b.ops = append(b.ops, clientv3.OpPut(k, string(rec.Value), clientv3.WithLease(lease)))
	b.recs = append(b.recs, rec)
	b.bytes += len(k) + len(rec.Value)
	if len(b.ops) == importOps {
		return b.flush(ctx)
	}
	return nil
}

func (b *importTxn) flush(ctx context.Context) error {
	if len(b.ops) == 0 {
		return nil
	}
	resp, err := b.s.kvTxn(ctx, b.cmps, b.ops, nil)
	switch {
	case err != nil:
		return err
	case !resp.Succeeded:
		return fmt.Errorf("%w: keys appeared under %s while importing", ErrNotEmpty, b.s.prefix)
	}
	for _, rec := range b.recs {
		b.res.Written.Add(rec.Key)
		b.res.Values[rec.Key] = sha256.Sum256(rec.Value)
	}
	b.cmps, b.ops, b.recs, b.bytes = b.cmps[:0], b.ops[:0], b.recs[:0], 0
	return nil
}

// Verify reads every key under prefix at one revision and counts, per
// kind, the keys of want found there with the value whose SHA-256 want
// gives (with anyValue, with whatever value); mismatched lists (at most
// ten) the keys of want missing or different.
func Verify(ctx context.Context, cli *clientv3.Client, prefix string, want map[string][sha256.Size]byte, anyValue bool) (found layout.Counts, mismatched []string, err error) {
	found = layout.Counts{}
	seen := map[string]bool{}
	s := bare(cli, prefix, 30*time.Second)
	err = s.view(ctx, func(t *tx) error {
		return t.scan("", "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			if h, ok := want[k]; ok {
				seen[k] = true
				if anyValue || h == sha256.Sum256(kv.Value) {
					found.Add(k)
				} else if len(mismatched) < 10 {
					mismatched = append(mismatched, k+" (another value)")
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return found, nil, fmt.Errorf("enroll: read back %s: %w", prefix, err)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if len(mismatched) >= 10 {
			break
		}
		if !seen[k] {
			mismatched = append(mismatched, k+" (missing)")
		}
	}
	return found, mismatched, nil
}

// Check reads every key under the prefix at one revision and returns
// every problem found, joined: records that do not decode, phone index
// entries whose owner does not own the phone, due-index entries naming a
// message that is not pending.
func (s *Store) Check(ctx context.Context) error {
	var problems []error
	err := s.view(ctx, func(t *tx) error {
		return t.scan("", "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			if p := t.checkKey(k, kv.Value); p != nil {
				problems = append(problems, p)
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("enroll: check etcd prefix %s: %w", s.prefix, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("enroll: etcd prefix %s is inconsistent: %w", s.prefix, errors.Join(problems...))
	}
	return nil
}

// checkKey checks one record, reading what it refers to at the snapshot.
func (t *tx) checkKey(k string, v []byte) error {
	var err error
	switch {
	case strings.HasPrefix(k, enrollmentsPrefix):
		_, err = decode[enroll.Enrollment](k, v)
	case strings.HasPrefix(k, auditPrefix):
		_, err = decode[enroll.Event](k, v)
	case strings.HasPrefix(k, outboxPrefix):
		_, err = decode[enroll.OutboundMessage](k, v)
	case strings.HasPrefix(k, phonesPrefix):
		e, gerr := t.enrollment(string(v))
		if gerr != nil {
			return fmt.Errorf("%s: owner %s: %w", k, v, gerr)
		}
		if !enroll.OwnsPhone(e) || phonesPrefix+e.Phone != k {
			return fmt.Errorf("%s: indexed to %s, which does not own it", k, v)
		}
	case strings.HasPrefix(k, duePrefix):
		id, perr := parseID(k[strings.LastIndexByte(k, '/')+1:])
		if perr != nil {
			return fmt.Errorf("%s: %w", k, perr)
		}
		m, gerr := t.message(id)
		if gerr != nil {
			return fmt.Errorf("%s: %w", k, gerr)
		}
		if !m.Pending() || dueKey(m) != k {
			return fmt.Errorf("%s: message %d is not due so", k, id)
		}
	}
	return err
}
