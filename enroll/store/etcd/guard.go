package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

const guardPrefix = "guard/"

// guardEntry is a guarded key's record: the end of its block (0 when
// none) and the window of its counted attempts. The attempts that started
// a block stay with it (a refund of one lifts it) and go when it ends.
type guardEntry struct {
	Until int64 `json:"until,omitempty"` // Unix ns
	window
}

func parseGuard(v []byte) guardEntry {
	var g guardEntry
	if v == nil || json.Unmarshal(v, &g) != nil {
		return guardEntry{}
	}
	return g
}

func (g guardEntry) blockedAt(at int64) bool { return g.Until > at }

// putGuard writes g under key on a lease that outlives its window and
// its block.
func (t *tx) putGuard(key string, g guardEntry, now time.Time) error {
	life := time.Duration(g.Window)
	if g.Until != 0 {
		life = max(life, time.Duration(g.Until-unixNano(now)))
	}
	lease, err := t.s.ttl.lease(t.ctx, life)
	if err != nil {
		return err
	}
	v, _ := json.Marshal(g)
	t.putLease(guardPrefix+key, v, lease)
	return nil
}

// Attempt counts an attempt of key at now before it is tried and blocks
// the key for block when it is the limit-th within window; the check and
// the count are one CAS on the key. See GuardStore.
func (s *Store) Attempt(ctx context.Context, key string, now time.Time, win time.Duration, limit int, block time.Duration) (bool, time.Time, error) {
	if err := enroll.CheckAttempt(key, now, win, limit, block); err != nil {
		return false, time.Time{}, err
	}
	var (
		allowed bool
		until   int64
	)
	at := unixNano(now)
	err := s.update(ctx, func(t *tx) error {
		allowed, until = false, 0
		v, err := t.get(guardPrefix + key)
		if err != nil {
			return err
		}
		g := parseGuard(v)
		if g.blockedAt(at) {
			until = g.Until
			return nil
		}
		if g.Until != 0 { // a block has ended: counting starts afresh
			g = guardEntry{}
		}
		allowed = true
		g.Window = int64(win)
		g.keep(at)
		g.add(at)
		if len(g.Hits) >= limit {
			g.Until = unixNano(now.Add(block))
			until = g.Until
		}
		return t.putGuard(key, g, now)
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
	err := s.update(ctx, func(t *tx) error {
		v, err := t.get(guardPrefix + key)
		if err != nil || v == nil {
			return err
		}
		g := parseGuard(v)
		if g.Until != 0 && !g.blockedAt(unixNano(now)) {
			return nil // the block ended, and its attempts with it
		}
		i := slices.Index(g.Hits, unixNano(at))
		if i < 0 {
			return nil
		}
		g.Hits = slices.Delete(g.Hits, i, i+1)
		g.Until = 0
		if len(g.Hits) == 0 {
			t.del(guardPrefix + key)
			return nil
		}
		return t.putGuard(key, g, now)
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
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(guardPrefix + key)
		g = parseGuard(v)
		return err
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("enroll: guard: %w", err)
	}
	if !g.blockedAt(unixNano(now)) {
		return time.Time{}, false, nil
	}
	return time.Unix(0, g.Until).In(now.Location()), true, nil
}

// ClearFailures removes key's attempts and block.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	if err := enroll.CheckKey("guard key", key); err != nil {
		return err
	}
	err := s.update(ctx, func(t *tx) error {
		t.del(guardPrefix + key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: clear failures: %w", err)
	}
	return nil
}

// guardPurge says what Purge does with a guard entry at now: drop it,
// rewrite it (fewer attempts), or leave it (nil, false).
func guardPurge(v []byte, at int64) (val []byte, changed bool) {
	g := parseGuard(v)
	switch {
	case g.blockedAt(at):
		return nil, false // the attempts of a live block stay with it
	case g.Until != 0:
		return nil, true // the block ended: so did its attempts
	}
	n := len(g.Hits)
	g.keep(at)
	switch {
	case len(g.Hits) == 0:
		return nil, true
	case len(g.Hits) < n:
		v, _ := json.Marshal(g)
		return v, true
	}
	return nil, false
}
