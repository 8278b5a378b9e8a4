package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// A guard value is a record.Guard: the end of the key's block (0 when
// none) followed by a rate-limit hit list (ratelimit.go) of its counted
// attempts:
//
//	blocked until | window | attempt₁ | … | attemptₙ
//
// all 8 bytes big-endian Unix ns. The attempts that started a block stay
// with it (a refund of one lifts it) and go when it ends.
func decodeGuard(v []byte) (record.Guard, bool) {
	if len(v) < 8 {
		return record.Guard{}, false
	}
	w, ok := decodeHits(v[8:])
	if !ok {
		return record.Guard{}, false
	}
	return record.Guard{Until: bytesNano(v[:8]), Window: w}, true
}

func encodeGuard(g record.Guard) []byte {
	return append(appendNano(make([]byte, 0, 16+8*len(g.Hits)), g.Until), encodeHits(g.Window)...)
}

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
		g, _ := decodeGuard(b.Get([]byte(key))) // absent, or unreadable: start afresh
		if allowed, until = g.Attempt(unixNano(now), int64(window), limit, unixNano(now.Add(block))); !allowed {
			return nil
		}
		return b.Put([]byte(key), encodeGuard(g))
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
		switch {
		case !ok || !g.Refund(unixNano(at), unixNano(now)):
			return nil
		case len(g.Hits) == 0:
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), encodeGuard(g))
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
	var g record.Guard
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		g, _ = decodeGuard(tx.Bucket(bucketGuard).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("enroll: guard: %w", err)
	}
	if !g.BlockedAt(unixNano(now)) {
		return time.Time{}, false, nil
	}
	return time.Unix(0, g.Until).In(now.Location()), true, nil
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
		drop, changed := g.Purge(t)
		return keptValue(encodeGuard(g), drop, changed)
	})
}
