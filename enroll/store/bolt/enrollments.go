package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// PutEnrollment creates or replaces the enrollment for e.Username (matched
// case-insensitively) and updates the phone index in the same transaction.
func (s *Store) PutEnrollment(ctx context.Context, e enroll.Enrollment) error {
	key, err := enroll.CheckEnrollment(e)
	if err != nil {
		return err
	}
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("enroll: encode enrollment %s: %w", e.Username, err)
	}
	k := []byte(key)
	err = s.update(ctx, func(tx *bbolt.Tx) error { return putEnrollmentTx(tx, k, e, val) })
	if err != nil {
		return fmt.Errorf("enroll: put enrollment %s: %w", e.Username, err)
	}
	return nil
}

// putEnrollmentTx writes e (encoded as val) under username key k and keeps
// the phone index in step, inside tx: the body of PutEnrollment, shared so
// that CompleteActivation writes an enrollment exactly the same way.
// ErrPhoneTaken leaves tx unchanged.
func putEnrollmentTx(tx *bbolt.Tx, k []byte, e enroll.Enrollment, val []byte) error {
	recs, phones := tx.Bucket(bucketEnrollments), tx.Bucket(bucketPhones)
	if enroll.OwnsPhone(e) {
		if owner := phones.Get([]byte(e.Phone)); owner != nil && !bytes.Equal(owner, k) {
			return enroll.ErrPhoneTaken
		}
	}
	if raw := recs.Get(k); raw != nil {
		var old enroll.Enrollment
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("decode stored enrollment: %w", err)
		}
		if enroll.OwnsPhone(old) && (!enroll.OwnsPhone(e) || old.Phone != e.Phone) {
			if err := unindexPhone(phones, old.Phone, k); err != nil {
				return err
			}
		}
	}
	if enroll.OwnsPhone(e) {
		if err := phones.Put([]byte(e.Phone), k); err != nil {
			return err
		}
	}
	return recs.Put(k, val)
}

// unindexPhone removes phone from the index if username key k owns it.
func unindexPhone(phones *bbolt.Bucket, phone string, k []byte) error {
	if owner := phones.Get([]byte(phone)); bytes.Equal(owner, k) {
		return phones.Delete([]byte(phone))
	}
	return nil
}

// Enrollment returns the enrollment for username (case-insensitive).
func (s *Store) Enrollment(ctx context.Context, username string) (enroll.Enrollment, error) {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return enroll.Enrollment{}, err
	}
	var e enroll.Enrollment
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		return getEnrollment(tx, []byte(key), &e)
	})
	if err != nil {
		return enroll.Enrollment{}, fmt.Errorf("enroll: enrollment %s: %w", username, err)
	}
	return e, nil
}

// EnrollmentByPhone returns the active or frozen enrollment that owns phone;
// a pending or deactivated enrollment with that phone gives ErrNotFound.
func (s *Store) EnrollmentByPhone(ctx context.Context, phone string) (enroll.Enrollment, error) {
	if err := enroll.CheckPhone(phone); err != nil {
		return enroll.Enrollment{}, err
	}
	var e enroll.Enrollment
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		owner := tx.Bucket(bucketPhones).Get([]byte(phone))
		if owner == nil {
			return enroll.ErrNotFound
		}
		return getEnrollment(tx, owner, &e)
	})
	if err != nil {
		// The phone is deliberately not in the message: errors reach logs.
		return enroll.Enrollment{}, fmt.Errorf("enroll: enrollment by phone: %w", err)
	}
	return e, nil
}

// getEnrollment decodes the record under key into e; json.Unmarshal copies,
// so nothing in e points into the transaction's memory.
func getEnrollment(tx *bbolt.Tx, key []byte, e *enroll.Enrollment) error {
	raw := tx.Bucket(bucketEnrollments).Get(key)
	if raw == nil {
		return enroll.ErrNotFound
	}
	if err := json.Unmarshal(raw, e); err != nil {
		return fmt.Errorf("decode stored enrollment: %w", err)
	}
	return nil
}

// Enrollments lists every enrollment ordered by (lower-cased) username.
func (s *Store) Enrollments(ctx context.Context) ([]enroll.Enrollment, error) {
	var list []enroll.Enrollment
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketEnrollments)
		i := 0
		return b.ForEach(func(k, v []byte) error {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var e enroll.Enrollment
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode stored enrollment %q: %w", k, err)
			}
			list = append(list, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list enrollments: %w", err)
	}
	return list, nil
}

// DeleteEnrollment removes the enrollment for username and frees its phone;
// a missing enrollment gives ErrNotFound.
func (s *Store) DeleteEnrollment(ctx context.Context, username string) error {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return err
	}
	k := []byte(key)
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		var old enroll.Enrollment
		if err := getEnrollment(tx, k, &old); err != nil {
			return err
		}
		if enroll.OwnsPhone(old) {
			if err := unindexPhone(tx.Bucket(bucketPhones), old.Phone, k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketEnrollments).Delete(k)
	})
	if err != nil {
		return fmt.Errorf("enroll: delete enrollment %s: %w", username, err)
	}
	return nil
}

// UpdateEnrollment reads username's enrollment, lets fn change it and writes
// it back with its phone index, in one transaction. fn may run more than
// once and must only change the enrollment; its error changes nothing.
func (s *Store) UpdateEnrollment(ctx context.Context, username string, fn func(*enroll.Enrollment) error) error {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: nil update function", enroll.ErrInvalid)
	}
	k := []byte(key)
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		var e enroll.Enrollment
		if err := getEnrollment(tx, k, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		newKey, err := enroll.CheckEnrollment(e)
		if err != nil {
			return err
		}
		if newKey != key {
			return fmt.Errorf("%w: an update must not change the username", enroll.ErrInvalid)
		}
		val, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode enrollment: %w", err)
		}
		return putEnrollmentTx(tx, k, e, val)
	})
	if err != nil {
		return fmt.Errorf("enroll: update enrollment %s: %w", username, err)
	}
	return nil
}
