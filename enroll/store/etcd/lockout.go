package etcd

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

const (
	lockoutsPrefix  = "lockouts/"
	monitorPrefix   = "monitor/"
	remindersPrefix = "reminders/"
)

// maxCursorLen bounds a monitor cursor (etcd refuses values over about a
// megabyte).
const maxCursorLen = 512 << 10

// maxReminderStage bounds a reminder's stage (days before the expiry).
const maxReminderStage = 365

// RecordLockout records the event (username, lockedAt) once: a
// create-if-absent on its key.
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
	if !lockedAt.After(now.Add(-enroll.LockoutRetention)) {
		return false, nil // older than the retention: not news, and purged anyway
	}
	first, err := s.recordOnce(ctx, lockoutsPrefix+timeKey(lockedAt)+"/"+userKey, now)
	if err != nil {
		return false, fmt.Errorf("enroll: record lockout of %s: %w", username, err)
	}
	return first, nil
}

// PurgeLockouts forgets the events LockoutRetention or more old.
func (s *Store) PurgeLockouts(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	n, err := s.purgeUpTo(ctx, lockoutsPrefix, timeKey(now.Add(-enroll.LockoutRetention)))
	if err != nil {
		return 0, fmt.Errorf("enroll: purge lockouts: %w", err)
	}
	return n, nil
}

// MonitorCursor returns the state stored under name, or nil.
func (s *Store) MonitorCursor(ctx context.Context, name string) ([]byte, error) {
	if err := enroll.CheckKey("monitor cursor name", name); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(monitorPrefix + name)
		if len(v) > 0 {
			out = bytes.Clone(v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: read monitor cursor %s: %w", name, err)
	}
	return out, nil
}

// SetMonitorCursor stores cursor under name; empty deletes it.
func (s *Store) SetMonitorCursor(ctx context.Context, name string, cursor []byte) error {
	if err := enroll.CheckKey("monitor cursor name", name); err != nil {
		return err
	}
	if len(cursor) > maxCursorLen {
		return enroll.Invalidf("monitor cursor %s is longer than %d bytes", name, maxCursorLen)
	}
	val := bytes.Clone(cursor)
	err := s.update(ctx, func(t *tx) error {
		if len(val) == 0 {
			t.del(monitorPrefix + name)
		} else {
			t.put(monitorPrefix+name, val)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: set monitor cursor %s: %w", name, err)
	}
	return nil
}

// RecordReminder records the reminder of stage for username's password
// expiring at expires once: a create-if-absent on its key.
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
	if !expires.After(now.Add(-enroll.ReminderRetention)) {
		return false, nil
	}
	key := fmt.Sprintf("%s%s/%03d/%s", remindersPrefix, timeKey(expires), stage, userKey)
	first, err := s.recordOnce(ctx, key, now)
	if err != nil {
		return false, fmt.Errorf("enroll: record reminder of %s: %w", username, err)
	}
	return first, nil
}

// PurgeReminders forgets the reminders of passwords that expired
// ReminderRetention or more before now.
func (s *Store) PurgeReminders(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	n, err := s.purgeUpTo(ctx, remindersPrefix, timeKey(now.Add(-enroll.ReminderRetention)))
	if err != nil {
		return 0, fmt.Errorf("enroll: purge reminders: %w", err)
	}
	return n, nil
}

// recordOnce creates key (with the time now) if absent and reports
// whether it did.
func (s *Store) recordOnce(ctx context.Context, key string, now time.Time) (bool, error) {
	first := false
	err := s.update(ctx, func(t *tx) error {
		first = false
		v, err := t.get(key)
		if err != nil || v != nil {
			return err
		}
		first = true
		t.put(key, nanoVal(now))
		return nil
	})
	return first, err
}

// purgeUpTo deletes the keys under prefix whose leading time key is at or
// before cut, and returns how many.
func (s *Store) purgeUpTo(ctx context.Context, prefix, cut string) (int, error) {
	return s.purgeEach(ctx, prefix, func(k string, _ []byte) ([]byte, bool, error) {
		at, _, _ := strings.Cut(k[len(prefix):], "/")
		return nil, at <= cut, nil
	})
}
