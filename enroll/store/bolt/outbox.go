package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
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
func dueKey(m enroll.OutboundMessage) []byte {
	k := make([]byte, 0, dueKeyLen)
	k = append(k, byte(m.Priority))
	k = binary.BigEndian.AppendUint64(k, orderedNano(m.NextAttempt))
	return binary.BigEndian.AppendUint64(k, m.ID)
}

func orderedNano(t time.Time) uint64 { return uint64(unixNano(t)) ^ 1<<63 }

// EnqueueMessage stores m under the next ID, which it returns (m.ID is
// ignored), and indexes it.
func (s *Store) EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error) {
	if err := enroll.CheckMessage(m); err != nil {
		return 0, err
	}
	var id uint64
	err := s.update(ctx, func(tx *bbolt.Tx) error {
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
func insertMessage(tx *bbolt.Tx, m enroll.OutboundMessage) (uint64, error) {
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
func reindexMessage(tx *bbolt.Tx, old *enroll.OutboundMessage, m enroll.OutboundMessage) error {
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
		return enroll.Invalidf("provider ID %s already belongs to message %d", m.ProviderID, bytesU64(owner))
	}
	return prov.Put([]byte(m.ProviderID), id)
}

// getMessage decodes the message stored under key k (big-endian ID), or
// returns ErrNotFound.
func getMessage(b *bbolt.Bucket, k []byte) (enroll.OutboundMessage, error) {
	return getRecord[enroll.OutboundMessage](b, k, "outbound message")
}

// DueMessages returns up to limit pending messages whose NextAttempt is
// not after now, by priority, then ID. For each priority it reads the due
// index up to now and no further.
func (s *Store) DueMessages(ctx context.Context, now time.Time, limit int) ([]enroll.OutboundMessage, error) {
	if err := enroll.CheckNow(now); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, enroll.Invalidf("due messages: limit %d is not positive", limit)
	}
	cut := orderedNano(now)
	var out []enroll.OutboundMessage
	err := s.view(ctx, func(tx *bbolt.Tx) error {
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
		out = make([]enroll.OutboundMessage, 0, len(ids))
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
func (s *Store) UpdateMessage(ctx context.Context, id uint64, fn func(*enroll.OutboundMessage) error) error {
	if fn == nil {
		return enroll.Invalidf("update message: nil function")
	}
	k := u64Bytes(id)
	var updated enroll.OutboundMessage
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		old, err := getMessage(b, k)
		if err != nil {
			return err
		}
		m, err := record.UpdateMessage(old, fn)
		if err != nil {
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
func (s *Store) MessageByProviderID(ctx context.Context, providerID string) (enroll.OutboundMessage, error) {
	if err := enroll.CheckKey("provider ID", providerID); err != nil {
		return enroll.OutboundMessage{}, err
	}
	var m enroll.OutboundMessage
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketOutboxProvider).Get([]byte(providerID))
		if id == nil {
			return enroll.ErrNotFound
		}
		var err error
		m, err = getMessage(tx.Bucket(bucketOutbox), id)
		return err
	})
	if err != nil {
		return enroll.OutboundMessage{}, fmt.Errorf("enroll: message by provider ID %s: %w", providerID, err)
	}
	return m, nil
}

// Messages lists the messages matching f, newest (highest ID) first; the
// username matches case-insensitively. Limit keeps the newest matches.
func (s *Store) Messages(ctx context.Context, f enroll.OutboxFilter) ([]enroll.OutboundMessage, error) {
	if f.To != "" {
		if err := enroll.CheckPhone(f.To); err != nil {
			return nil, err
		}
	}
	if f.Limit < 0 {
		return nil, enroll.Invalidf("messages: limit %d is negative", f.Limit)
	}
	var out []enroll.OutboundMessage
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		i := 0
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var m enroll.OutboundMessage
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

// bucketOutboxRedact indexes the redaction jobs by the SID they blank:
//
//	outbox_redact  target SID → ID of the KindRedact message
//
// so that a message is redacted once however many final reports name it.
var bucketOutboxRedact = []byte("outbox_redact")

// EnqueueRedaction queues, at high priority, the blanking of the body of
// provider message sid, unless one was queued before for sid: the check
// and the insert share one transaction, so a message is redacted once.
// purpose and username say, for people, what the message was. It returns
// the redaction's ID and whether it was queued now.
func (s *Store) EnqueueRedaction(ctx context.Context, sid, purpose, username string, now time.Time) (uint64, bool, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, false, err
	}
	m := enroll.OutboundMessage{Kind: enroll.KindRedact, Target: sid, Purpose: purpose, Username: username,
		Priority: enroll.PriorityHigh, Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now}
	if err := enroll.CheckMessage(m); err != nil {
		return 0, false, err
	}
	var id uint64
	created := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		idx := tx.Bucket(bucketOutboxRedact)
		if old := idx.Get([]byte(sid)); old != nil {
			id, created = bytesU64(old), false
			return nil
		}
		seq, err := insertMessage(tx, m)
		if err != nil {
			return err
		}
		id, created = seq, true
		return idx.Put([]byte(sid), u64Bytes(seq))
	})
	if err != nil {
		return 0, false, fmt.Errorf("enroll: queue the redaction of %s: %w", sid, err)
	}
	return id, created, nil
}
