package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// Reminders sent are stored expiry first, so that PurgeReminders reads only
// the expired prefix of the bucket:
//
//	reminders  expiry (8, ordered Unix ns) | stage (2, big-endian days) | lower-cased username → sent at (Unix ns)
var bucketReminders = []byte("reminders")

// maxReminderStage bounds a stage (reminders.days allows 1-365).
const maxReminderStage = 365

func reminderKey(userKey string, expires time.Time, stage int) []byte {
	k := make([]byte, 0, 10+len(userKey))
	k = binary.BigEndian.AppendUint64(k, orderedNano(expires))
	k = binary.BigEndian.AppendUint16(k, uint16(stage))
	return append(k, userKey...)
}

// reminderCut is the ordered expiry at or before which reminders are forgotten.
func reminderCut(now time.Time) uint64 { return orderedNano(now.Add(-enroll.ReminderRetention)) }

// RecordReminder records the reminder and reports whether it is new; the
// check and the insert share one write transaction.
func (s *Store) RecordReminder(ctx context.Context, username string, expires time.Time, stage int, now time.Time) (bool, error) {
	userKey, err := enroll.UsernameKey(username)
	if err != nil {
		return false, err
	}
	switch {
	case expires.IsZero():
		return false, enroll.Invalidf("reminder of %s has no expiry time", username)
	case stage < 1 || stage > maxReminderStage:
		return false, enroll.Invalidf("reminder stage %d is not in 1..%d", stage, maxReminderStage)
	}
	if err := enroll.CheckNow(now); err != nil {
		return false, err
	}
	if orderedNano(expires) <= reminderCut(now) {
		return false, nil
	}
	first, err := s.recordOnce(ctx, bucketReminders, reminderKey(userKey, expires, stage), now)
	if err != nil {
		return false, fmt.Errorf("enroll: record reminder of %s: %w", username, err)
	}
	return first, nil
}

// PurgeReminders deletes the reminders of passwords that expired
// ReminderRetention or more before now.
func (s *Store) PurgeReminders(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	n, err := s.purgeUpTo(ctx, bucketReminders, reminderCut(now))
	if err != nil {
		return 0, fmt.Errorf("enroll: purge reminders: %w", err)
	}
	return n, nil
}

// recordOnce puts key → now in bucket unless key is there, and reports
// whether it did; the check and the insert share one write transaction.
func (s *Store) recordOnce(ctx context.Context, bucket, key []byte, now time.Time) (bool, error) {
	first := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		first = false // the group commit may run this function again
		b := tx.Bucket(bucket)
		if b.Get(key) != nil {
			return nil
		}
		first = true
		return b.Put(key, timeBytes(now))
	})
	return first, err
}

// purgeUpTo deletes the keys of bucket that start with an ordered time
// (orderedNano) at or before cut and returns how many. Keys are in time
// order, so only the expired prefix is read.
func (s *Store) purgeUpTo(ctx context.Context, bucket []byte, cut uint64) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		b := tx.Bucket(bucket)
		var expired [][]byte
		c := b.Cursor()
		i := 0
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			if len(k) >= 8 && binary.BigEndian.Uint64(k[:8]) > cut {
				break // the rest is younger
			}
			expired = append(expired, bytes.Clone(k)) // never delete behind a live cursor
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
