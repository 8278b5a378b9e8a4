package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// A guard value is the end of the key's block (0 when none) followed by a
// rate-limit hit list (ratelimit.go) of its counted attempts:
//
//	blocked until | window | attempt₁ | … | attemptₙ
//
// all 8 bytes big-endian Unix ns. The attempts that started a block stay
// with it (a refund of one lifts it) and go when it ends.
type guardEntry struct {
	until int64 // Unix ns; 0 = not blocked
	hitList
}

func decodeGuard(v []byte) (guardEntry, bool) {
	if len(v) < 8 {
		return guardEntry{}, false
	}
	l, ok := decodeHits(v[8:])
	if !ok {
		return guardEntry{}, false
	}
	return guardEntry{until: bytesNano(v[:8]), hitList: l}, true
}

func (g guardEntry) encode() []byte {
	return append(appendNano(make([]byte, 0, 16+8*len(g.hits)), g.until), g.hitList.encode()...)
}

// blockedAt reports whether the entry blocks at t (Unix ns).
func (g guardEntry) blockedAt(t int64) bool { return g.until > t }

// Attempt counts an attempt of key at now before it is tried and blocks
// the key for block when it is the limit-th within window; see GuardStore.
func (s *Store) Attempt(ctx context.Context, key string, now time.Time, window time.Duration, limit int, block time.Duration) (bool, time.Time, error) {
	if err := enroll.CheckAttempt(key, now, window, limit, block); err != nil {
		return false, time.Time{}, err
	}
	var (
		allowed bool
		until   int64
	)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketGuard)
		t := unixNano(now)
		g, ok := decodeGuard(b.Get([]byte(key)))
		if !ok {
			g = guardEntry{} // absent, or unreadable: start afresh
		}
		if g.blockedAt(t) {
			until = g.until
			return nil
		}
		if g.until != 0 { // a block has ended: counting starts afresh
			g = guardEntry{}
		}
		allowed = true
		g.window = int64(window)
		g.prune(t)
		g.insert(t)
		if len(g.hits) >= limit {
			g.until = unixNano(now.Add(block))
			until = g.until
		}
		return b.Put([]byte(key), g.encode())
	})
	if err != nil {
		return false, time.Time{}, fmt.Errorf("enroll: guard attempt: %w", err) // the key may name a user or address
	}
	if until == 0 {
		return allowed, time.Time{}, nil
	}
	return allowed, time.Unix(0, until).In(now.Location()), nil
}

// RefundAttempt takes back the attempt of key counted at at and lifts the
// block it helped start, if that is still on at now; see GuardStore.
func (s *Store) RefundAttempt(ctx context.Context, key string, at, now time.Time) error {
	if err := enroll.CheckRefund(key, at, now); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketGuard)
		g, ok := decodeGuard(b.Get([]byte(key)))
		if !ok {
			return nil
		}
		if g.until != 0 && !g.blockedAt(unixNano(now)) {
			return nil // the block ended, and its attempts with it
		}
		i := slices.Index(g.hits, unixNano(at))
		if i < 0 {
			return nil
		}
		g.hits = slices.Delete(g.hits, i, i+1)
		g.until = 0
		if len(g.hits) == 0 {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), g.encode())
	})
	if err != nil {
		return fmt.Errorf("enroll: guard refund: %w", err)
	}
	return nil
}

// Blocked reports whether key is blocked at now and until when.
func (s *Store) Blocked(ctx context.Context, key string, now time.Time) (time.Time, bool, error) {
	if err := enroll.CheckKey("guard key", key); err != nil {
		return time.Time{}, false, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return time.Time{}, false, err
	}
	var g guardEntry
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		g, _ = decodeGuard(tx.Bucket(bucketGuard).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("enroll: guard: %w", err)
	}
	if !g.blockedAt(unixNano(now)) {
		return time.Time{}, false, nil
	}
	return time.Unix(0, g.until).In(now.Location()), true, nil
}

// ClearFailures removes key's failures and block.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	if err := enroll.CheckKey("guard key", key); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error { return tx.Bucket(bucketGuard).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("enroll: clear failures: %w", err)
	}
	return nil
}

// purgeGuard drops the attempts outside their window and deletes the
// entries whose block ended or that are left with no attempt.
func purgeGuard(ctx context.Context, b *bbolt.Bucket, now time.Time) error {
	t := unixNano(now)
	return rewriteEach(ctx, b, func(v []byte) ([]byte, bool) {
		g, ok := decodeGuard(v)
		if !ok {
			return nil, true
		}
		switch {
		case g.blockedAt(t):
			return nil, false // the attempts of a live block stay with it
		case g.until != 0:
			return nil, true // the block ended: so did its attempts
		}
		n := len(g.hits)
		g.prune(t)
		switch {
		case len(g.hits) == 0:
			return nil, true
		case len(g.hits) < n:
			return g.encode(), true
		}
		return nil, false
	})
}
