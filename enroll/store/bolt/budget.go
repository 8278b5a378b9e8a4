package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// SpendBudget charges one hit at now to every limit, in one transaction,
// if each has fewer than its Limit hits within (now-window, now]. When one
// is full, nothing is recorded anywhere and its index is returned;
// otherwise -1. A send therefore never uses up one budget while another
// refuses it. Budget counters live with the rate-limit windows (the same
// encoding, purged alike).
func (s *Store) SpendBudget(ctx context.Context, now time.Time, window time.Duration, limits []enroll.BudgetLimit) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	if window <= 0 {
		return 0, enroll.Invalidf("budget window %s is not positive", window)
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
	t := unixNano(now)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		refused = -1
		b := tx.Bucket(bucketRateLimit)
		lists := make([]hitList, len(limits))
		for i, l := range limits {
			h, ok := decodeHits(b.Get([]byte(l.Key)))
			if !ok {
				h = hitList{}
			}
			h.window = int64(window)
			h.prune(t)
			if len(h.hits) >= l.Limit {
				refused = i
				return nil
			}
			lists[i] = h
		}
		for i, l := range limits {
			lists[i].insert(t)
			if err := b.Put([]byte(l.Key), lists[i].encode()); err != nil {
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

// RefundBudget takes back a hit SpendBudget recorded at at (a send that
// did not leave after all): one hit at exactly that time is removed from
// each key that has one.
func (s *Store) RefundBudget(ctx context.Context, keys []string, at time.Time) error {
	if err := enroll.CheckNow(at); err != nil {
		return err
	}
	for _, k := range keys {
		if err := enroll.CheckKey("budget key", k); err != nil {
			return err
		}
	}
	t := unixNano(at)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRateLimit)
		for _, k := range keys {
			h, ok := decodeHits(b.Get([]byte(k)))
			if !ok {
				continue
			}
			for i, hit := range h.hits {
				if hit == t {
					h.hits = append(h.hits[:i], h.hits[i+1:]...)
					if err := b.Put([]byte(k), h.encode()); err != nil {
						return err
					}
					break
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

// BudgetHits counts the hits recorded under key (by SpendBudget or Allow)
// within (now-window, now], without recording one.
func (s *Store) BudgetHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	if err := enroll.CheckKey("budget key", key); err != nil {
		return 0, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	if window <= 0 {
		return 0, enroll.Invalidf("budget window %s is not positive", window)
	}
	n := 0
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		h, ok := decodeHits(tx.Bucket(bucketRateLimit).Get([]byte(key)))
		if !ok {
			return nil
		}
		h.window = int64(window)
		h.prune(unixNano(now))
		for _, hit := range h.hits {
			if hit <= unixNano(now) {
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
