package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

const rateLimitPrefix = "ratelimit/"

// window is a sliding window's record: the window of the key's last use
// (so that Purge can drop old hits without knowing the caller's policy)
// and the hit times still inside it, ascending, in Unix ns. A refused hit
// is not recorded, so there are never more hits than the limit.
type window struct {
	Window int64   `json:"window"`
	Hits   []int64 `json:"hits"`
}

func parseWindow(v []byte) window {
	var w window
	if v == nil || json.Unmarshal(v, &w) != nil {
		return window{} // absent, or unreadable: start afresh
	}
	return w
}

// keep drops the hits that have left the window ending at now: a hit
// counts while now-window < hit.
func (w *window) keep(now int64) {
	first := sort.Search(len(w.Hits), func(i int) bool { return w.Hits[i] > now-w.Window })
	w.Hits = w.Hits[first:]
}

// add records a hit at at, in order even if callers' clocks step back.
func (w *window) add(at int64) {
	i := sort.Search(len(w.Hits), func(i int) bool { return w.Hits[i] > at })
	w.Hits = slices.Insert(w.Hits, i, at)
}

func (w window) value() []byte {
	v, _ := json.Marshal(w) // a struct of integers always encodes
	return v
}

// putWindow writes w under key on a lease that outlives its window.
func (t *tx) putWindow(key string, w window) error {
	lease, err := t.s.ttl.lease(t.ctx, time.Duration(w.Window))
	if err != nil {
		return err
	}
	t.putLease(key, w.value(), lease)
	return nil
}

// Allow records a hit for key at now and returns true if fewer than limit
// hits fall within (now-window, now]; otherwise it returns false and
// records nothing. The read and the write are compared on the key's
// revision (a CAS loop).
func (s *Store) Allow(ctx context.Context, key string, now time.Time, win time.Duration, limit int) (bool, error) {
	if err := enroll.CheckKey("rate-limit key", key); err != nil {
		return false, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return false, err
	}
	if win <= 0 || limit <= 0 {
		return false, enroll.Invalidf("rate limit %d per %s: limit and window must be positive", limit, win)
	}
	allowed := false
	err := s.update(ctx, func(t *tx) error {
		allowed = false
		v, err := t.get(rateLimitPrefix + key)
		if err != nil {
			return err
		}
		w := parseWindow(v)
		w.Window = int64(win)
		at := unixNano(now)
		w.keep(at)
		if len(w.Hits) >= limit {
			return nil
		}
		allowed = true
		w.add(at)
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
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	if win <= 0 {
		return 0, enroll.Invalidf("budget window %s is not positive", win)
	}
	for _, l := range limits {
		if err := enroll.CheckKey("budget key", l.Key); err != nil {
			return 0, err
		}
		if l.Limit <= 0 {
			return 0, enroll.Invalidf("budget %s: limit %d is not positive", l.Key, l.Limit)
		}
	}
	refused := -1
	at := unixNano(now)
	err := s.update(ctx, func(t *tx) error {
		refused = -1
		ws := make([]window, len(limits))
		for i, l := range limits {
			v, err := t.get(rateLimitPrefix + l.Key)
			if err != nil {
				return err
			}
			ws[i] = parseWindow(v)
			ws[i].Window = int64(win)
			ws[i].keep(at)
			if len(ws[i].Hits) >= l.Limit {
				refused = i
				return nil
			}
		}
		for i, l := range limits {
			ws[i].add(at)
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
	if err := enroll.CheckNow(at); err != nil {
		return err
	}
	for _, k := range keys {
		if err := enroll.CheckKey("budget key", k); err != nil {
			return err
		}
	}
	n := unixNano(at)
	err := s.update(ctx, func(t *tx) error {
		for _, k := range keys {
			v, err := t.get(rateLimitPrefix + k)
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
			w := parseWindow(v)
			if i := slices.Index(w.Hits, n); i >= 0 {
				w.Hits = slices.Delete(w.Hits, i, i+1)
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
	if err := enroll.CheckKey("budget key", key); err != nil {
		return 0, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	if win <= 0 {
		return 0, enroll.Invalidf("budget window %s is not positive", win)
	}
	n := 0
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(rateLimitPrefix + key)
		if err != nil {
			return err
		}
		w := parseWindow(v)
		w.Window = int64(win)
		at := unixNano(now)
		w.keep(at)
		for _, h := range w.Hits {
			if h <= at {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: read budget: %w", err)
	}
	return n, nil
}
