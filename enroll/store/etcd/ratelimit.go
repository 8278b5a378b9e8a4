package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

const rateLimitPrefix = "ratelimit/"

// A rate-limit or budget value is a record.Window in JSON.
func parseWindow(v []byte) record.Window {
	var w record.Window
	if v == nil || json.Unmarshal(v, &w) != nil {
		return record.Window{} // absent, or unreadable: start afresh
	}
	return w
}

func windowValue(w record.Window) []byte {
	v, _ := json.Marshal(w) // a struct of integers always encodes
	return v
}

// putWindow writes w under key on a lease that outlives its window.
func (t *tx) putWindow(key string, w record.Window) error {
	lease, err := t.s.ttl.lease(t.ctx, time.Duration(w.Window))
	if err != nil {
		return err
	}
	t.putLease(key, windowValue(w), lease)
	return nil
}

// Allow records a hit for key at now and returns true if fewer than limit
// hits fall within (now-window, now]; otherwise it returns false and
// records nothing. The read and the write are compared on the key's
// revision (a CAS loop).
func (s *Store) Allow(ctx context.Context, key string, now time.Time, win time.Duration, limit int) (bool, error) {
	if err := enroll.CheckAllow(key, now, win, limit); err != nil {
		return false, err
	}
	allowed := false
	err := s.update(ctx, func(t *tx) error {
		v, err := t.get(rateLimitPrefix + key)
		if err != nil {
			return err
		}
		w := parseWindow(v)
		if allowed = w.Allow(unixNano(now), int64(win), limit); !allowed {
			return nil
		}
		return t.putWindow(rateLimitPrefix+key, w)
	})
	if err != nil {
		return false, fmt.Errorf("enroll: rate limit: %w", err) // the key may hold a phone number
	}
	return allowed, nil
}

// SpendBudget charges one hit at now to every limit in one transaction
// compared on every key's revision, if each has room; see BudgetStore.
func (s *Store) SpendBudget(ctx context.Context, now time.Time, win time.Duration, limits []enroll.BudgetLimit) (int, error) {
	if err := enroll.CheckSpend(now, win, limits); err != nil {
		return 0, err
	}
	refused := -1
	at := unixNano(now)
	err := s.update(ctx, func(t *tx) error {
		refused = -1
		ws := make([]record.Window, len(limits))
		for i, l := range limits {
			v, err := t.get(rateLimitPrefix + l.Key)
			if err != nil {
				return err
			}
			if ws[i] = parseWindow(v); !ws[i].Room(at, int64(win), l.Limit) {
				refused = i
				return nil
			}
		}
		for i, l := range limits {
			ws[i].Add(at)
			if err := t.putWindow(rateLimitPrefix+l.Key, ws[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: spend budget: %w", err) // keys may hold a phone number
	}
	return refused, nil
}

// RefundBudget removes one hit at exactly at from each key that has one.
func (s *Store) RefundBudget(ctx context.Context, keys []string, at time.Time) error {
	if err := enroll.CheckRefundBudget(keys, at); err != nil {
		return err
	}
	err := s.update(ctx, func(t *tx) error {
		for _, k := range keys {
			v, err := t.get(rateLimitPrefix + k)
			if err != nil {
				return err
			}
			if w := parseWindow(v); v != nil && w.Remove(unixNano(at)) {
				if err := t.putWindow(rateLimitPrefix+k, w); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: refund budget: %w", err)
	}
	return nil
}

// BudgetHits counts the hits under key within (now-window, now].
func (s *Store) BudgetHits(ctx context.Context, key string, now time.Time, win time.Duration) (int, error) {
	if err := enroll.CheckBudgetHits(key, now, win); err != nil {
		return 0, err
	}
	n := 0
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(rateLimitPrefix + key)
		n = parseWindow(v).Count(unixNano(now), int64(win))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: read budget: %w", err)
	}
	return n, nil
}
