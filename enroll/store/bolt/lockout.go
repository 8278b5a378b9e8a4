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

// Lockout events are stored time first, so that PurgeLockouts reads only
// the expired prefix of the bucket:
//
//	lockouts  lockedAt (8 bytes, ordered Unix ns, see orderedNano) | lower-cased username → recorded at (Unix ns)
//	monitor   name → opaque monitor state (scan cursor, storm window)
//
// The lookup of one event is an exact key, so check-and-insert reads one key.

// maxCursorLen bounds a monitor state value.
const maxCursorLen = 1 << 20

func lockoutKey(userKey string, lockedAt time.Time) []byte {
	k := make([]byte, 0, 8+len(userKey))
	k = binary.BigEndian.AppendUint64(k, orderedNano(lockedAt))
	return append(k, userKey...)
}

// lockoutCut is the ordered time at or before which an event has expired.
func lockoutCut(now time.Time) uint64 { return orderedNano(now.Add(-enroll.LockoutRetention)) }

// RecordLockout records the event (username, lockedAt) and reports whether
// it is new; the check and the insert share one write transaction.
func (s *Store) RecordLockout(ctx context.Context, username string, lockedAt, now time.Time) (bool, error) {
	userKey, err := enroll.UsernameKey(username)
	if err != nil {
		return false, err
	}
	if lockedAt.IsZero() {
		return false, enroll.Invalidf("lockout of %s has no lockout time", username)
	}
	if err := enroll.CheckNow(now); err != nil {
		return false, err
	}
	if orderedNano(lockedAt) <= lockoutCut(now) {
		return false, nil // older than the retention: not news, and purged anyway
	}
	first, err := s.recordOnce(ctx, bucketLockouts, lockoutKey(userKey, lockedAt), now)
	if err != nil {
		return false, fmt.Errorf("enroll: record lockout of %s: %w", username, err)
	}
	return first, nil
}

// PurgeLockouts deletes the events whose lockedAt is LockoutRetention or
// more before now.
func (s *Store) PurgeLockouts(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	n, err := s.purgeUpTo(ctx, bucketLockouts, lockoutCut(now))
	if err != nil {
		return 0, fmt.Errorf("enroll: purge lockouts: %w", err)
	}
	return n, nil
}

// MonitorCursor returns a copy of the state stored under name, or nil.
func (s *Store) MonitorCursor(ctx context.Context, name string) ([]byte, error) {
	if err := enroll.CheckKey("monitor cursor name", name); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMonitor).Get([]byte(name)); len(v) > 0 {
			out = bytes.Clone(v) // v is only valid inside the transaction
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: read monitor cursor %s: %w", name, err)
	}
	return out, nil
}

// SetMonitorCursor stores cursor under name; nil or empty deletes it.
func (s *Store) SetMonitorCursor(ctx context.Context, name string, cursor []byte) error {
	if err := enroll.CheckKey("monitor cursor name", name); err != nil {
		return err
	}
	if len(cursor) > maxCursorLen {
		return enroll.Invalidf("monitor cursor %s is longer than %d bytes", name, maxCursorLen)
	}
	val := bytes.Clone(cursor) // the caller may reuse its slice before the commit
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMonitor)
		if len(val) == 0 {
			return b.Delete([]byte(name))
		}
		return b.Put([]byte(name), val)
	})
	if err != nil {
		return fmt.Errorf("enroll: set monitor cursor %s: %w", name, err)
	}
	return nil
}
