package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// A rate-limit value is the window of the key's last Allow followed by the
// hit times still inside it, oldest first, each 8 bytes big-endian Unix ns:
//
//	window | hit₁ | hit₂ | … | hitₙ
//
// A refused hit is not recorded, so n never exceeds the limit. Keeping the
// window lets Purge drop old hits without knowing the caller's policy.
type hitList struct {
	window int64
	hits   []int64
}

func decodeHits(v []byte) (hitList, bool) {
	if len(v) < 8 || len(v)%8 != 0 {
		return hitList{}, false
	}
	l := hitList{window: bytesNano(v[:8]), hits: make([]int64, 0, len(v)/8-1)}
	for p := v[8:]; len(p) > 0; p = p[8:] {
		l.hits = append(l.hits, bytesNano(p[:8]))
	}
	return l, true
}

func (l hitList) encode() []byte {
	b := make([]byte, 0, 8*(1+len(l.hits)))
	b = appendNano(b, l.window)
	for _, h := range l.hits {
		b = appendNano(b, h)
	}
	return b
}

// prune drops the hits no longer inside the window ending at now: a hit
// counts while now-window < hit.
func (l *hitList) prune(now int64) {
	cut := now - l.window
	i := 0
	for i < len(l.hits) && l.hits[i] <= cut {
		i++
	}
	l.hits = l.hits[i:]
}

// insert adds a hit at t, keeping the list sorted even if callers' clocks
// step backwards.
func (l *hitList) insert(t int64) {
	i := len(l.hits)
	for i > 0 && l.hits[i-1] > t {
		i--
	}
	l.hits = append(l.hits[:i], append([]int64{t}, l.hits[i:]...)...)
}

// Allow records a hit for key at now and returns true if fewer than limit
// hits fall within (now-window, now]; otherwise it returns false and
// records nothing. Check and record share one write transaction.
func (s *Store) Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error) {
	if err := enroll.CheckKey("rate-limit key", key); err != nil {
		return false, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return false, err
	}
	if window <= 0 || limit <= 0 {
		return false, enroll.Invalidf("rate limit %d per %s: limit and window must be positive", limit, window)
	}
	allowed := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRateLimit)
		l, ok := decodeHits(b.Get([]byte(key)))
		if !ok {
			l = hitList{} // absent, or unreadable: start afresh
		}
		l.window = int64(window)
		t := unixNano(now)
		l.prune(t)
		if len(l.hits) >= limit {
			return nil
		}
		allowed = true
		l.insert(t)
		return b.Put([]byte(key), l.encode())
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
		l, ok := decodeHits(v)
		if !ok {
			return nil, true
		}
		n := len(l.hits)
		l.prune(t)
		switch {
		case len(l.hits) == 0:
			return nil, true
		case len(l.hits) < n:
			return l.encode(), true
		}
		return nil, false
	})
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
