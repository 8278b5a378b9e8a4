package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// The self-expiry schedule is kept by username, with an index by due time
// written in the same transaction:
//
//	sms_checks      lower-cased username → JSON SMSPasswordCheck
//	sms_checks_due  Due (8, ordered Unix ns) | lower-cased username → empty
//
// so DueSMSPasswordChecks reads only the keys up to now.

var (
	bucketSMSChecks    = []byte("sms_checks")
	bucketSMSChecksDue = []byte("sms_checks_due")
)

func smsCheckDueKey(userKey string, due time.Time) []byte {
	k := make([]byte, 0, 8+len(userKey))
	k = binary.BigEndian.AppendUint64(k, orderedNano(due))
	return append(k, userKey...)
}

// getSMSCheck reads the entry stored under userKey; ok is false when there
// is none.
func getSMSCheck(tx *bbolt.Tx, userKey string) (enroll.SMSPasswordCheck, bool, error) {
	v := tx.Bucket(bucketSMSChecks).Get([]byte(userKey))
	if v == nil {
		return enroll.SMSPasswordCheck{}, false, nil
	}
	var c enroll.SMSPasswordCheck
	if err := json.Unmarshal(v, &c); err != nil {
		return c, false, fmt.Errorf("SMS password check %s is corrupt: %w", userKey, err)
	}
	return c, true, nil
}

// putSMSCheck writes c and its index key, replacing old's (when had).
func putSMSCheck(tx *bbolt.Tx, userKey string, c enroll.SMSPasswordCheck, old enroll.SMSPasswordCheck, had bool) error {
	due := tx.Bucket(bucketSMSChecksDue)
	if had {
		if err := due.Delete(smsCheckDueKey(userKey, old.Due)); err != nil {
			return err
		}
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketSMSChecks).Put([]byte(userKey), v); err != nil {
		return err
	}
	return due.Put(smsCheckDueKey(userKey, c.Due), nil)
}

// ScheduleSMSPasswordCheck stores c, replacing the entry of its username.
func (s *Store) ScheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) error {
	userKey, err := enroll.CheckSMSPasswordCheck(c)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		old, had, err := getSMSCheck(tx, userKey)
		if err != nil {
			return err
		}
		return putSMSCheck(tx, userKey, c, old, had)
	})
	if err != nil {
		return fmt.Errorf("enroll: schedule SMS password check of %s: %w", c.Username, err)
	}
	return nil
}

// SMSPasswordCheck returns the entry of username or ErrNotFound.
func (s *Store) SMSPasswordCheck(ctx context.Context, username string) (enroll.SMSPasswordCheck, error) {
	userKey, err := enroll.UsernameKey(username)
	if err != nil {
		return enroll.SMSPasswordCheck{}, err
	}
	var c enroll.SMSPasswordCheck
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		var had bool
		var err error
		c, had, err = getSMSCheck(tx, userKey)
		if err == nil && !had {
			err = enroll.ErrNotFound
		}
		return err
	})
	if err != nil {
		return enroll.SMSPasswordCheck{}, fmt.Errorf("enroll: SMS password check of %s: %w", username, err)
	}
	return c, nil
}

// DueSMSPasswordChecks returns up to limit (0: all) entries due by now,
// earliest first.
func (s *Store) DueSMSPasswordChecks(ctx context.Context, now time.Time, limit int) ([]enroll.SMSPasswordCheck, error) {
	if err := enroll.CheckNow(now); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, enroll.Invalidf("negative limit %d", limit)
	}
	cut := orderedNano(now)
	var out []enroll.SMSPasswordCheck
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = nil
		c := tx.Bucket(bucketSMSChecksDue).Cursor()
		i := 0
		for k, _ := c.First(); k != nil && (limit == 0 || len(out) < limit); k, _ = c.Next() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			if len(k) < 8 || binary.BigEndian.Uint64(k[:8]) > cut {
				break
			}
			check, had, err := getSMSCheck(tx, string(k[8:]))
			if err != nil {
				return err
			}
			if had {
				out = append(out, check)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: due SMS password checks: %w", err)
	}
	return out, nil
}

// errSMSCheckReplaced: the entry is another reset's (or gone).
var errSMSCheckReplaced = errors.New("replaced")

// changeSMSCheck runs fn on the entry of username if it is the one of the
// reset at resetAt; fn returns the entry to write, or nil to delete it.
func (s *Store) changeSMSCheck(ctx context.Context, username string, resetAt time.Time, fn func(enroll.SMSPasswordCheck) *enroll.SMSPasswordCheck) (bool, error) {
	userKey, err := enroll.UsernameKey(username)
	if err != nil {
		return false, err
	}
	if resetAt.IsZero() {
		return false, enroll.Invalidf("SMS password check of %s: reset time is zero", username)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		old, had, err := getSMSCheck(tx, userKey)
		if err != nil {
			return err
		}
		if !had || !old.ResetAt.Equal(resetAt) {
			return errSMSCheckReplaced
		}
		next := fn(old)
		if next != nil {
			return putSMSCheck(tx, userKey, *next, old, true)
		}
		if err := tx.Bucket(bucketSMSChecksDue).Delete(smsCheckDueKey(userKey, old.Due)); err != nil {
			return err
		}
		return tx.Bucket(bucketSMSChecks).Delete([]byte(userKey))
	})
	if errors.Is(err, errSMSCheckReplaced) {
		return false, nil
	}
	return err == nil, err
}

// RescheduleSMSPasswordCheck moves the entry of c.Username to c.Due with
// c.Attempts if it is still the one of the reset at c.ResetAt.
func (s *Store) RescheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) (bool, error) {
	if _, err := enroll.CheckSMSPasswordCheck(c); err != nil {
		return false, err
	}
	ok, err := s.changeSMSCheck(ctx, c.Username, c.ResetAt, func(old enroll.SMSPasswordCheck) *enroll.SMSPasswordCheck {
		old.Due, old.Attempts = c.Due, c.Attempts
		return &old
	})
	if err != nil {
		return false, fmt.Errorf("enroll: reschedule SMS password check of %s: %w", c.Username, err)
	}
	return ok, nil
}

// FinishSMSPasswordCheck deletes the entry of username if it is still the
// one of the reset at resetAt.
func (s *Store) FinishSMSPasswordCheck(ctx context.Context, username string, resetAt time.Time) (bool, error) {
	ok, err := s.changeSMSCheck(ctx, username, resetAt, func(enroll.SMSPasswordCheck) *enroll.SMSPasswordCheck { return nil })
	if err != nil {
		return false, fmt.Errorf("enroll: finish SMS password check of %s: %w", username, err)
	}
	return ok, nil
}
