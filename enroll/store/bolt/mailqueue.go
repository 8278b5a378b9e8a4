package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// Mails are stored under their big-endian ID (mail_queue), one record
// each; mail_due indexes the pending ones by NextAttempt (8, ordered Unix
// ns) | ID (8), written in the same transaction as the record.

var (
	bucketMailQueue = []byte("mail_queue")
	bucketMailDue   = []byte("mail_due")
)

func mailDueKey(m enroll.QueuedMail) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 16), orderedNano(m.NextAttempt))
	return binary.BigEndian.AppendUint64(k, m.ID)
}

// EnqueueMail stores m under the next ID, which it returns, and indexes it.
func (s *Store) EnqueueMail(ctx context.Context, m enroll.QueuedMail) (uint64, error) {
	if err := enroll.CheckQueuedMail(m); err != nil {
		return 0, err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMailQueue)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		m.ID = seq
		return putMail(tx, nil, m)
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: enqueue %s mail: %w", m.Kind, err)
	}
	return m.ID, nil
}

// putMail writes m and moves its due entry from what old needed.
func putMail(tx *bbolt.Tx, old *enroll.QueuedMail, m enroll.QueuedMail) error {
	due := tx.Bucket(bucketMailDue)
	if old != nil && old.Pending() {
		if err := due.Delete(mailDueKey(*old)); err != nil {
			return err
		}
	}
	if m.Pending() {
		if err := due.Put(mailDueKey(m), nil); err != nil {
			return err
		}
	}
	val, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMailQueue).Put(u64Bytes(m.ID), val)
}

func getMail(b *bbolt.Bucket, k []byte) (enroll.QueuedMail, error) {
	return getRecord[enroll.QueuedMail](b, k, "queued mail")
}

// DueMail returns up to limit pending mails due by now, earliest first.
func (s *Store) DueMail(ctx context.Context, now time.Time, limit int) ([]enroll.QueuedMail, error) {
	if err := enroll.CheckNow(now); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, enroll.Invalidf("due mail: limit %d is not positive", limit)
	}
	cut := orderedNano(now)
	var out []enroll.QueuedMail
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c, b := tx.Bucket(bucketMailDue).Cursor(), tx.Bucket(bucketMailQueue)
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) != 16 {
				return fmt.Errorf("mail due index: corrupt key %x", k)
			}
			if binary.BigEndian.Uint64(k[:8]) > cut {
				break
			}
			m, err := getMail(b, k[8:])
			if err != nil {
				return fmt.Errorf("mail due index names mail %d: %w", bytesU64(k[8:]), err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: due mail: %w", err)
	}
	return out, nil
}

// UpdateMail lets fn change mail id and writes it back with its due entry.
func (s *Store) UpdateMail(ctx context.Context, id uint64, fn func(*enroll.QueuedMail) error) error {
	if fn == nil {
		return enroll.Invalidf("update mail: nil function")
	}
	k := u64Bytes(id)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getMail(tx.Bucket(bucketMailQueue), k)
		if err != nil {
			return err
		}
		m, err := record.UpdateMail(old, fn)
		if err != nil {
			return err
		}
		return putMail(tx, &old, m)
	})
	if err != nil {
		return fmt.Errorf("enroll: update mail %d: %w", id, err)
	}
	return nil
}

// QueuedMails lists up to limit mails (0: all), newest first.
func (s *Store) QueuedMails(ctx context.Context, limit int) ([]enroll.QueuedMail, error) {
	if limit < 0 {
		return nil, enroll.Invalidf("queued mails: limit %d is negative", limit)
	}
	var out []enroll.QueuedMail
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketMailQueue).Cursor()
		i := 0
		for k, _ := c.Last(); k != nil && (limit == 0 || len(out) < limit); k, _ = c.Prev() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			m, err := getMail(tx.Bucket(bucketMailQueue), k)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list queued mails: %w", err)
	}
	return out, nil
}
