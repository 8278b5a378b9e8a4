package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
)

// Purge removes expired message IDs, the rate-limit hits whose window has
// passed by now (each key's window is the one its last use gave) and the
// guard entries with neither a live block nor an attempt in their window.
// Their etcd leases would remove them later anyway; Purge keeps the
// contract's "by now" exact.
func (s *Store) Purge(ctx context.Context, now time.Time) error {
	if err := enroll.CheckNow(now); err != nil {
		return err
	}
	at := unixNano(now)
	if _, err := s.purgeEach(ctx, messagesPrefix, func(_ string, v []byte) ([]byte, bool, error) {
		exp, ok := parseNano(v)
		return nil, !ok || exp <= at, nil
	}); err != nil {
		return fmt.Errorf("enroll: purge: %w", err)
	}
	if _, err := s.purgeEach(ctx, rateLimitPrefix, func(_ string, v []byte) ([]byte, bool, error) {
		w := parseWindow(v)
		drop, changed := w.Purge(at)
		return keptValue(windowValue(w), drop, changed)
	}); err != nil {
		return fmt.Errorf("enroll: purge: %w", err)
	}
	if _, err := s.purgeEach(ctx, guardPrefix, func(_ string, v []byte) ([]byte, bool, error) {
		g := parseGuard(v)
		drop, changed := g.Purge(at)
		return keptValue(guardValue(g), drop, changed)
	}); err != nil {
		return fmt.Errorf("enroll: purge: %w", err)
	}
	return nil
}

// keptValue is a change's answer for a record a purge drops, rewrites
// as v, or leaves.
func keptValue(v []byte, drop, changed bool) ([]byte, bool, error) {
	switch {
	case drop:
		return nil, true, nil
	case changed:
		return v, true, nil
	}
	return nil, false, nil
}

// purgeBatch is how many changes one purge transaction makes (etcd allows
// 128 operations per transaction by default).
const purgeBatch = 64

// change says what a purge does with the record (key, v): replace it by
// val, or delete it when val is nil, if changed.
type change func(key string, v []byte) (val []byte, changed bool, err error)

// purgeEach applies fn to every record under prefix, read a page at a
// time, and makes the changes it asks for in transactions of up to
// purgeBatch keys, each compared on the revision read. When a batch
// conflicts (a key changed meanwhile), its keys are redone one by one on
// their current value, so that of concurrent purges each record is removed
// and counted once. It returns how many records it deleted. Rewrites keep
// the key's etcd lease.
func (s *Store) purgeEach(ctx context.Context, prefix string, fn change) (int, error) {
	end, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	type pending struct {
		key string
		rev int64
		val []byte
		del bool
	}
	var batch []pending
	deleted := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		t := s.newTx(ctx)
		for _, p := range batch {
			t.reads[p.key] = p.rev
			if p.del {
				t.del(p.key)
			} else {
				t.putKeepLease(p.key, p.val)
			}
		}
		err := t.commit()
		if err == nil {
			for _, p := range batch {
				if p.del {
					deleted++
				}
			}
			batch = batch[:0]
			return nil
		}
		if !errors.Is(err, errConflict) {
			return err
		}
		for _, p := range batch {
			gone := false
			err := s.run(ctx, func(t *tx) error {
				gone = false
				v, err := t.get(p.key)
				if err != nil || v == nil {
					return err
				}
				val, changed, err := fn(p.key, v)
				switch {
				case err != nil || !changed:
					return err
				case val == nil:
					gone = true
					t.del(p.key)
				default:
					t.putKeepLease(p.key, val)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if gone {
				deleted++
			}
		}
		batch = batch[:0]
		return nil
	}
	t := s.newTx(ctx)
	err = t.scan(prefix, "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
		val, changed, err := fn(k, kv.Value)
		if err != nil || !changed {
			return err == nil, err
		}
		batch = append(batch, pending{key: k, rev: kv.ModRevision, val: val, del: val == nil})
		if len(batch) == purgeBatch {
			return true, flush()
		}
		return true, nil
	})
	if err != nil {
		return deleted, err
	}
	return deleted, flush()
}
