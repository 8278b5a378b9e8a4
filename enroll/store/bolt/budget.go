package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// SpendBudget charges one hit at now to every limit, in one transaction,
// if each has fewer than its Limit hits within (now-window, now]. When one
// is full, nothing is recorded anywhere and its index is returned;
// otherwise -1. A send therefore never uses up one budget while another
// refuses it. Budget counters live with the rate-limit windows (the same
// encoding, purged alike).
func (s *Store) SpendBudget(ctx context.Context, now time.Time, window time.Duration, limits []enroll.BudgetLimit) (int, error) {
	if err := enroll.CheckSpend(now, window, limits); err != nil {
		return 0, err
	}
	refused := -1
	t := unixNano(now)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		refused = -1
		b := tx.Bucket(bucketRateLimit)
		ws := make([]record.Window, len(limits))
		for i, l := range limits {
			ws[i], _ = decodeHits(b.Get([]byte(l.Key)))
			if !ws[i].Room(t, int64(window), l.Limit) {
				refused = i
				return nil
			}
		}
		for i, l := range limits {
			ws[i].Add(t)
			if err := b.Put([]byte(l.Key), encodeHits(ws[i])); err != nil {
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
	if err := enroll.CheckRefundBudget(keys, at); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRateLimit)
		for _, k := range keys {
			if w, ok := decodeHits(b.Get([]byte(k))); ok && w.Remove(unixNano(at)) {
				if err := b.Put([]byte(k), encodeHits(w)); err != nil {
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

// BudgetHits counts the hits recorded under key (by SpendBudget or Allow)
// within (now-window, now], without recording one.
func (s *Store) BudgetHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	if err := enroll.CheckBudgetHits(key, now, window); err != nil {
		return 0, err
	}
	n := 0
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		w, _ := decodeHits(tx.Bucket(bucketRateLimit).Get([]byte(key)))
		n = w.Count(unixNano(now), int64(window))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: read budget: %w", err)
	}
	return n, nil
}
