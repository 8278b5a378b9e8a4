package etcd

import (
	"context"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

const (
	messagesPrefix = "messages/"
	optOutPrefix   = "optout/"
)

// MarkMessage records sid until now+ttl and reports whether it is new: a
// create-if-absent (the commit compares the key's revision with the one
// read, 0 when absent), so of two deliveries of one SID exactly one gets
// true. An entry whose expiry has passed by now counts as absent and is
// renewed. The entry is on an etcd lease of at least ttl, so it also goes
// by itself.
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
	err := s.update(ctx, func(t *tx) error {
		first = false
		if t.attempt == 0 {
			t.assume(messagesPrefix+sid, nil, 0) // a new SID: one round trip
		}
		v, err := t.get(messagesPrefix + sid)
		if err != nil {
			return err
		}
		if exp, ok := parseNano(v); ok && exp > unixNano(now) {
			return nil
		}
		lease, err := s.ttl.lease(ctx, ttl)
		if err != nil {
			return err
		}
		first = true
		t.putLease(messagesPrefix+sid, nanoVal(now.Add(ttl)), lease)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("enroll: mark message %s: %w", sid, err)
	}
	return first, nil
}

// SetOptOut records a STOP (optedOut) with its time, or clears it on START.
func (s *Store) SetOptOut(ctx context.Context, phone string, optedOut bool, now time.Time) error {
	if err := enroll.CheckPhone(phone); err != nil {
		return err
	}
	if err := enroll.CheckNow(now); err != nil {
		return err
	}
	err := s.update(ctx, func(t *tx) error {
		v, err := t.get(optOutPrefix + phone)
		switch {
		case err != nil:
			return err
		case !optedOut:
			if v != nil {
				t.del(optOutPrefix + phone)
			}
		case v == nil: // keep the time of the first STOP
			t.put(optOutPrefix+phone, nanoVal(now))
		}
		return nil
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
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(optOutPrefix + phone)
		out = v != nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("enroll: read opt-out: %w", err)
	}
	return out, nil
}
