package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// MarkMessage records sid until now+ttl and reports whether it is new. The
// check and the insert share one write transaction, so of two webhook
// deliveries of the same SID exactly one gets true. An entry whose expiry
// has passed counts as absent (and is renewed).
func (s *Store) MarkMessage(ctx context.Context, sid string, now time.Time, ttl time.Duration) (bool, error) {
	if err := enroll.CheckKey("message SID", sid); err != nil {
		return false, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, enroll.Invalidf("message TTL %s is not positive", ttl)
	}
	first := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMessages)
		if v := b.Get([]byte(sid)); len(v) == 8 && bytesNano(v) > unixNano(now) {
			return nil
		}
		first = true
		return b.Put([]byte(sid), timeBytes(now.Add(ttl)))
	})
	if err != nil {
		return false, fmt.Errorf("enroll: mark message %s: %w", sid, err)
	}
	return first, nil
}

// purgeMessages deletes the entries of b that have expired by now.
func purgeMessages(ctx context.Context, b *bbolt.Bucket, now time.Time) error {
	cut := unixNano(now)
	var expired [][]byte
	c := b.Cursor()
	i := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		i++
		if err := errIfDone(ctx, i); err != nil {
			return err
		}
		if len(v) != 8 || bytesNano(v) <= cut {
			// Deleting behind a live cursor skips keys; collect copies first.
			expired = append(expired, bytes.Clone(k))
		}
	}
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// SetOptOut records a STOP (optedOut) with its time, or clears it on START.
func (s *Store) SetOptOut(ctx context.Context, phone string, optedOut bool, now time.Time) error {
	if err := enroll.CheckPhone(phone); err != nil {
		return err
	}
	if err := enroll.CheckNow(now); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOptOut)
		if !optedOut {
			return b.Delete([]byte(phone))
		}
		if b.Get([]byte(phone)) != nil {
			return nil // keep the time of the first STOP
		}
		return b.Put([]byte(phone), timeBytes(now))
	})
	if err != nil {
		return fmt.Errorf("enroll: set opt-out: %w", err)
	}
	return nil
}

// OptedOut reports whether phone sent STOP and has not sent START since.
func (s *Store) OptedOut(ctx context.Context, phone string) (bool, error) {
	if err := enroll.CheckPhone(phone); err != nil {
		return false, err
	}
	out := false
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = tx.Bucket(bucketOptOut).Get([]byte(phone)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("enroll: read opt-out: %w", err)
	}
	return out, nil
}
