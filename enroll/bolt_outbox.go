package enroll

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Messages are stored under their big-endian ID (outbox). Two indexes are
// written in the same transaction as the message:
//
//	outbox_due       priority | NextAttempt | ID → empty, pending messages only
//	outbox_provider  provider SID → ID
//
// The due index sorts by priority, then time, so DueMessages reads, for
// each priority, only the keys up to now and seeks past the rest.

// dueKeyLen is the length of an outbox_due key: 1 + 8 + 8 bytes.
const dueKeyLen = 17

// dueKey is m's key in outbox_due. Time is Unix ns with the sign bit
// flipped, so that bytewise order is numeric order for every int64.
func dueKey(m OutboundMessage) []byte {
	k := make([]byte, 0, dueKeyLen)
	k = append(k, byte(m.Priority))
	k = binary.BigEndian.AppendUint64(k, orderedNano(m.NextAttempt))
	return binary.BigEndian.AppendUint64(k, m.ID)
}

func orderedNano(t time.Time) uint64 { return uint64(unixNano(t)) ^ 1<<63 }

// checkMessage validates m; the ID is the store's and is not checked.
func checkMessage(m OutboundMessage) error {
	if m.Kind == KindRedact {
		if err := checkRedaction(m); err != nil {
			return err
		}
	}
	switch {
	case m.Kind != KindSMS && m.Kind != KindCall && m.Kind != KindRedact:
		return invalidf("outbound message: unknown kind %q", m.Kind)
	case m.Kind != KindRedact && !isE164(m.To):
		return invalidf("outbound message: recipient %q is not in E.164 form", m.To)
	case !validStatus(m.Status):
		return invalidf("outbound message: unknown status %q", m.Status)
	case m.Priority < PriorityHigh || m.Priority > PriorityLow:
		return invalidf("outbound message: priority %d is not in %d..%d", m.Priority, PriorityHigh, PriorityLow)
	case len(m.Sealed) == 0 && m.Kind != KindRedact:
		return invalidf("outbound message has no body")
	case m.Attempts < 0:
		return invalidf("outbound message: negative attempts")
	case m.CreatedAt.IsZero():
		return invalidf("outbound message has no creation time")
	case m.Pending() && m.NextAttempt.IsZero():
		return invalidf("pending outbound message has no next attempt time")
	case len(m.ProviderID) > maxKeyLen:
		return invalidf("outbound message: provider ID is longer than %d bytes", maxKeyLen)
	}
	return nil
}

func validStatus(s string) bool {
	switch s {
	case StatusQueued, StatusRetry, StatusSent, StatusDelivered, StatusUndelivered,
		StatusFailed, StatusRejected, StatusExpired, StatusOverBudget, StatusHeld, StatusCanceled:
		return true
	}
	return false
}

// EnqueueMessage stores m under the next ID, which it returns (m.ID is
// ignored), and indexes it.
func (s *BoltStore) EnqueueMessage(ctx context.Context, m OutboundMessage) (uint64, error) {
	if err := checkMessage(m); err != nil {
		return 0, err
	}
	var id uint64
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		id, err = insertMessage(tx, m)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: enqueue %s message: %w", m.Purpose, err)
	}
	m.ID = id
	s.observeMessage(m)
	return id, nil
}

// insertMessage stores m, checked, under the next ID and indexes it.
func insertMessage(tx *bolt.Tx, m OutboundMessage) (uint64, error) {
	b := tx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	m.ID = seq
	if err := reindexMessage(tx, nil, m); err != nil {
		return 0, err
	}
	val, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	return seq, b.Put(u64Bytes(seq), val)
}

// reindexMessage moves m's index entries from what old (nil for a new
// message) needed to what m needs. A provider ID indexed to another message
// is refused with ErrInvalid.
func reindexMessage(tx *bolt.Tx, old *OutboundMessage, m OutboundMessage) error {
	due, prov := tx.Bucket(bucketOutboxDue), tx.Bucket(bucketOutboxProvider)
	if old != nil && old.Pending() {
		if err := due.Delete(dueKey(*old)); err != nil {
			return err
		}
	}
	if m.Pending() {
		if err := due.Put(dueKey(m), nil); err != nil {
			return err
		}
	}
	if old != nil && old.ProviderID == m.ProviderID {
		return nil
	}
	id := u64Bytes(m.ID)
	if old != nil && old.ProviderID != "" {
		if k := []byte(old.ProviderID); bytes.Equal(prov.Get(k), id) {
			if err := prov.Delete(k); err != nil {
				return err
			}
		}
	}
	if m.ProviderID == "" {
		return nil
	}
	if owner := prov.Get([]byte(m.ProviderID)); owner != nil && !bytes.Equal(owner, id) {
		return invalidf("provider ID %s already belongs to message %d", m.ProviderID, bytesU64(owner))
	}
	return prov.Put([]byte(m.ProviderID), id)
}

// getMessage decodes the message stored under key k (big-endian ID), or
// returns ErrNotFound.
func getMessage(b *bolt.Bucket, k []byte) (OutboundMessage, error) {
	return getRecord[OutboundMessage](b, k, "outbound message")
}

// DueMessages returns up to limit pending messages whose NextAttempt is
// not after now, by priority, then ID. For each priority it reads the due
// index up to now and no further.
func (s *BoltStore) DueMessages(ctx context.Context, now time.Time, limit int) ([]OutboundMessage, error) {
	if err := checkNow(now); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, invalidf("due messages: limit %d is not positive", limit)
	}
	cut := orderedNano(now)
	var out []OutboundMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutboxDue).Cursor()
		var ids []uint64
		i := 0
		for k, _ := c.First(); k != nil && len(ids) < limit; {
			p := k[0]
			// The index orders a priority by time; the contract wants ID
			// order, so collect what is due at this priority and sort it.
			var due []uint64
			for ; k != nil && k[0] == p; k, _ = c.Next() {
				i++
				if err := errIfDone(ctx, i); err != nil {
					return err
				}
				if len(k) != dueKeyLen {
					return fmt.Errorf("outbox due index: corrupt key %x", k)
				}
				if binary.BigEndian.Uint64(k[1:9]) > cut {
					break
				}
				due = append(due, bytesU64(k[9:]))
			}
			slices.Sort(due)
			ids = append(ids, due[:min(len(due), limit-len(ids))]...)
			if p == 0xff {
				break
			}
			k, _ = c.Seek([]byte{p + 1})
		}
		msgs := tx.Bucket(bucketOutbox)
		out = make([]OutboundMessage, 0, len(ids))
		for _, id := range ids {
			m, err := getMessage(msgs, u64Bytes(id))
			if err != nil {
				return fmt.Errorf("outbox due index names message %d: %w", id, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: due messages: %w", err)
	}
	return out, nil
}

// UpdateMessage lets fn change message id and writes the result back, with
// its index entries, in the same transaction. fn may be called more than
// once (a shared transaction that failed is re-run), each time on a fresh
// copy and perhaps on another goroutine, so it must do nothing but change
// its argument. An error from fn is returned and nothing is written;
// changing the ID or leaving an invalid message gives ErrInvalid; an
// unknown id gives ErrNotFound.
func (s *BoltStore) UpdateMessage(ctx context.Context, id uint64, fn func(*OutboundMessage) error) error {
	if fn == nil {
		return invalidf("update message: nil function")
	}
	k := u64Bytes(id)
	var updated OutboundMessage
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		old, err := getMessage(b, k)
		if err != nil {
			return err
		}
		m := old
		m.Sealed = bytes.Clone(old.Sealed)
		if err := fn(&m); err != nil {
			return err
		}
		if m.ID != id {
			return invalidf("update message %d: the ID cannot change", id)
		}
		if err := checkMessage(m); err != nil {
			return err
		}
		if err := reindexMessage(tx, &old, m); err != nil {
			return err
		}
		val, err := json.Marshal(m)
		if err != nil {
			return err
		}
		updated = m
		return b.Put(k, val)
	})
	if err != nil {
		return fmt.Errorf("enroll: update message %d: %w", id, err)
	}
	s.observeMessage(updated)
	return nil
}

// MessageByProviderID returns the message the provider knows as
// providerID, or ErrNotFound.
func (s *BoltStore) MessageByProviderID(ctx context.Context, providerID string) (OutboundMessage, error) {
	if err := checkKey("provider ID", providerID); err != nil {
		return OutboundMessage{}, err
	}
	var m OutboundMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketOutboxProvider).Get([]byte(providerID))
		if id == nil {
			return ErrNotFound
		}
		var err error
		m, err = getMessage(tx.Bucket(bucketOutbox), id)
		return err
	})
	if err != nil {
		return OutboundMessage{}, fmt.Errorf("enroll: message by provider ID %s: %w", providerID, err)
	}
	return m, nil
}

// Messages lists the messages matching f, newest (highest ID) first; the
// username matches case-insensitively. Limit keeps the newest matches.
func (s *BoltStore) Messages(ctx context.Context, f OutboxFilter) ([]OutboundMessage, error) {
	if f.To != "" {
		if err := checkPhone(f.To); err != nil {
			return nil, err
		}
	}
	if f.Limit < 0 {
		return nil, invalidf("messages: limit %d is negative", f.Limit)
	}
	var out []OutboundMessage
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		i := 0
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var m OutboundMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode outbound message %d: %w", bytesU64(k), err)
			}
			if (f.To != "" && m.To != f.To) || (f.Username != "" && !strings.EqualFold(m.Username, f.Username)) {
				continue
			}
			out = append(out, m)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list messages: %w", err)
	}
	return out, nil
}
