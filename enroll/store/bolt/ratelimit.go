package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// A rate-limit value is a record.Window: the window of the key's last
// Allow followed by the hit times still inside it, oldest first, each 8
// bytes big-endian Unix ns:
//
//	window | hit₁ | hit₂ | … | hitₙ
//
// A refused hit is not recorded, so n never exceeds the limit. Keeping the
// window lets Purge drop old hits without knowing the caller's policy.
func decodeHits(v []byte) (record.Window, bool) {
	if len(v) < 8 || len(v)%8 != 0 {
		return record.Window{}, false
	}
	w := record.Window{Window: bytesNano(v[:8]), Hits: make([]int64, 0, len(v)/8-1)}
	for p := v[8:]; len(p) > 0; p = p[8:] {
		w.Hits = append(w.Hits, bytesNano(p[:8]))
	}
	return w, true
}

func encodeHits(w record.Window) []byte {
	b := make([]byte, 0, 8*(1+len(w.Hits)))
	b = appendNano(b, w.Window)
	for _, h := range w.Hits {
		b = appendNano(b, h)
	}
	return b
}

// Allow records a hit for key at now and returns true if fewer than limit
// hits fall within (now-window, now]; otherwise it returns false and
// records nothing. Check and record share one write transaction.
func (s *Store) Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error) {
	if err := enroll.CheckAllow(key, now, window, limit); err != nil {
		return false, err
	}
	allowed := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRateLimit)
		w, _ := decodeHits(b.Get([]byte(key))) // absent, or unreadable: start afresh
		if allowed = w.Allow(unixNano(now), int64(window), limit); !allowed {
			return nil
		}
		return b.Put([]byte(key), encodeHits(w))
	})
	if err != nil {
		return false, fmt.Errorf("enroll: rate limit: %w", err) // the key may hold a phone number
	}
	return allowed, nil
}

// purgeRateLimits drops the hits of every key whose window has passed by
// now and deletes keys left with none.
func purgeRateLimits(ctx context.Context, b *bbolt.Bucket, now time.Time) error {
	t := unixNano(now)
	return rewriteEach(ctx, b, func(v []byte) ([]byte, bool) {
		w, ok := decodeHits(v)
		if !ok {
			return nil, true
		}
		drop, changed := w.Purge(t)
		return keptValue(encodeHits(w), drop, changed)
	})
}

// keptValue is rewriteEach's answer for a record a purge drops, rewrites
// as v, or leaves.
func keptValue(v []byte, drop, changed bool) ([]byte, bool) {
	switch {
	case drop:
		return nil, true
	case changed:
		return v, true
	}
	return nil, false
}

// rewriteEach calls fn with the value of every entry of b; when fn reports
// a change, the entry is replaced by the value it returns, or deleted when
// that is nil. The changes are made after the scan: writing behind a live
// cursor skips keys.
func rewriteEach(ctx context.Context, b *bbolt.Bucket, fn func(v []byte) (val []byte, changed bool)) error {
	type change struct {
		key []byte
		val []byte // nil: delete
	}
	var changes []change
	c := b.Cursor()
	i := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		i++
		if err := errIfDone(ctx, i); err != nil {
			return err
		}
		if val, changed := fn(v); changed {
			changes = append(changes, change{key: bytes.Clone(k), val: val})
		}
	}
	for _, ch := range changes {
		var err error
		if ch.val == nil {
			err = b.Delete(ch.key)
		} else {
			err = b.Put(ch.key, ch.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
