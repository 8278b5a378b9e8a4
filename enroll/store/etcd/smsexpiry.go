package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
)

const (
	smsChecksPrefix = "sms_checks/"
	smsDuePrefix    = "sms_checks_due/"
)

func smsDueKey(userKey string, due time.Time) string {
	return smsDuePrefix + timeKey(due) + "/" + userKey
}

// smsCheck reads the entry of userKey; had is false when there is none.
func (t *tx) smsCheck(userKey string) (c enroll.SMSPasswordCheck, had bool, err error) {
	v, err := t.get(smsChecksPrefix + userKey)
	if err != nil || v == nil {
		return c, false, err
	}
	c, err = decode[enroll.SMSPasswordCheck]("SMS password check "+userKey, v)
	return c, err == nil, err
}

// putSMSCheck writes c in place of old (when had) and moves its due key.
func (t *tx) putSMSCheck(userKey string, c, old enroll.SMSPasswordCheck, had bool) error {
	if had && !old.Due.Equal(c.Due) {
		t.del(smsDueKey(userKey, old.Due))
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	t.put(smsChecksPrefix+userKey, v)
	t.put(smsDueKey(userKey, c.Due), nil)
	return nil
}

// ScheduleSMSPasswordCheck stores c, replacing the user's entry.
func (s *Store) ScheduleSMSPasswordCheck(ctx context.Context, c enroll.SMSPasswordCheck) error {
	userKey, err := enroll.CheckSMSPasswordCheck(c)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(t *tx) error {
		old, had, err := t.smsCheck(userKey)
		if err != nil {
			return err
		}
		return t.putSMSCheck(userKey, c, old, had)
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
	err = s.view(ctx, func(t *tx) error {
		var had bool
		var err error
		c, had, err = t.smsCheck(userKey)
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

// DueSMSPasswordChecks returns up to limit entries due at now, earliest
// first, paging through the due index up to now.
func (s *Store) DueSMSPasswordChecks(ctx context.Context, now time.Time, limit int) ([]enroll.SMSPasswordCheck, error) {
	if err := enroll.CheckNow(now); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, enroll.Invalidf("negative limit %d", limit)
	}
	cut := timeKey(now)
	var out []enroll.SMSPasswordCheck
	err := s.view(ctx, func(t *tx) error {
		var users []string
		err := t.scan(smsDuePrefix, "", false, func(k string, _ *mvccpb.KeyValue) (bool, error) {
			at, user, _ := strings.Cut(k[len(smsDuePrefix):], "/")
			if at > cut {
				return false, nil
			}
			users = append(users, user)
			return limit == 0 || len(users) < limit, nil
		})
		if err != nil {
			return err
		}
		for _, u := range users {
			c, had, err := t.smsCheck(u)
			if err != nil {
				return err
			}
			if had {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: due SMS password checks: %w", err)
	}
	return out, nil
}

var errSMSCheckReplaced = errors.New("replaced")

// changeSMSCheck replaces (fn returns the new entry) or deletes (nil) the
// entry of username if it is still the one of the reset at resetAt: a CAS
// on its key.
func (s *Store) changeSMSCheck(ctx context.Context, username string, resetAt time.Time, fn func(enroll.SMSPasswordCheck) *enroll.SMSPasswordCheck) (bool, error) {
	userKey, err := enroll.UsernameKey(username)
	if err != nil {
		return false, err
	}
	if resetAt.IsZero() {
		return false, enroll.Invalidf("SMS password check of %s: reset time is zero", username)
	}
	err = s.update(ctx, func(t *tx) error {
		old, had, err := t.smsCheck(userKey)
		if err != nil {
			return err
		}
		if !had || !old.ResetAt.Equal(resetAt) {
			return errSMSCheckReplaced
		}
		if next := fn(old); next != nil {
			return t.putSMSCheck(userKey, *next, old, true)
		}
		t.del(smsDueKey(userKey, old.Due))
		t.del(smsChecksPrefix + userKey)
		return nil
	})
	if errors.Is(err, errSMSCheckReplaced) {
		return false, nil
	}
	return err == nil, err
}

// RescheduleSMSPasswordCheck sets Due and Attempts of the entry of the
// reset at c.ResetAt, and reports whether it was still that one.
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

// FinishSMSPasswordCheck deletes the entry of the reset at resetAt.
func (s *Store) FinishSMSPasswordCheck(ctx context.Context, username string, resetAt time.Time) (bool, error) {
	ok, err := s.changeSMSCheck(ctx, username, resetAt, func(enroll.SMSPasswordCheck) *enroll.SMSPasswordCheck { return nil })
	if err != nil {
		return false, fmt.Errorf("enroll: finish SMS password check of %s: %w", username, err)
	}
	return ok, nil
}
