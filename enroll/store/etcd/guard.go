package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

const guardPrefix = "guard/"

// A guard value is a record.Guard in JSON.
func parseGuard(v []byte) record.Guard {
	var g record.Guard
	if v == nil || json.Unmarshal(v, &g) != nil {
		return record.Guard{}
	}
	return g
}

func guardValue(g record.Guard) []byte {
	v, _ := json.Marshal(g) // a struct of integers always encodes
	return v
}

// putGuard writes g under key on a lease that outlives its window and
// its block.
func (t *tx) putGuard(key string, g record.Guard, now time.Time) error {
	life := time.Duration(g.Window.Window)
	if g.Until != 0 {
		life = max(life, time.Duration(g.Until-unixNano(now)))
	}
	lease, err := t.s.ttl.lease(t.ctx, life)
	if err != nil {
		return err
	}
	t.putLease(guardPrefix+key, guardValue(g), lease)
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
	err := s.update(ctx, func(t *tx) error {
		v, err := t.get(guardPrefix + key)
		if err != nil {
			return err
		}
		g := parseGuard(v)
		if allowed, until = g.Attempt(unixNano(now), int64(win), limit, unixNano(now.Add(block))); !allowed {
			return nil
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
		switch {
		case !g.Refund(unixNano(at), unixNano(now)):
			return nil
		case len(g.Hits) == 0:
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
	var g record.Guard
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(guardPrefix + key)
		g = parseGuard(v)
		return err
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("enroll: guard: %w", err)
	}
	if !g.BlockedAt(unixNano(now)) {
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
