package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutEnrollment creates or replaces the enrollment for e.Username (matched
// case-insensitively) and updates the phone index in the same transaction.
func (s *BoltStore) PutEnrollment(ctx context.Context, e Enrollment) error {
	key, err := checkEnrollment(e)
	if err != nil {
		return err
	}
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("enroll: encode enrollment %s: %w", e.Username, err)
	}
	k := []byte(key)
	err = s.update(ctx, func(tx *bolt.Tx) error { return putEnrollmentTx(tx, k, e, val) })
	if err != nil {
		return fmt.Errorf("enroll: put enrollment %s: %w", e.Username, err)
	}
	return nil
}

// putEnrollmentTx writes e (encoded as val) under username key k and keeps
// the phone index in step, inside tx: the body of PutEnrollment, shared so
// that CompleteActivation writes an enrollment exactly the same way.
// ErrPhoneTaken leaves tx unchanged.
func putEnrollmentTx(tx *bolt.Tx, k []byte, e Enrollment, val []byte) error {
	recs, phones := tx.Bucket(bucketEnrollments), tx.Bucket(bucketPhones)
	if ownsPhone(e) {
		if owner := phones.Get([]byte(e.Phone)); owner != nil && !bytes.Equal(owner, k) {
			return ErrPhoneTaken
		}
	}
	if raw := recs.Get(k); raw != nil {
		var old Enrollment
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("decode stored enrollment: %w", err)
		}
		if ownsPhone(old) && (!ownsPhone(e) || old.Phone != e.Phone) {
			if err := unindexPhone(phones, old.Phone, k); err != nil {
				return err
			}
		}
	}
	if ownsPhone(e) {
		if err := phones.Put([]byte(e.Phone), k); err != nil {
			return err
		}
	}
	return recs.Put(k, val)
}

// unindexPhone removes phone from the index if username key k owns it.
func unindexPhone(phones *bolt.Bucket, phone string, k []byte) error {
	if owner := phones.Get([]byte(phone)); bytes.Equal(owner, k) {
		return phones.Delete([]byte(phone))
	}
	return nil
}

// Enrollment returns the enrollment for username (case-insensitive).
func (s *BoltStore) Enrollment(ctx context.Context, username string) (Enrollment, error) {
	key, err := usernameKey(username)
	if err != nil {
		return Enrollment{}, err
	}
	var e Enrollment
	err = s.view(ctx, func(tx *bolt.Tx) error {
		return getEnrollment(tx, []byte(key), &e)
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enroll: enrollment %s: %w", username, err)
	}
	return e, nil
}

// EnrollmentByPhone returns the active or frozen enrollment that owns phone;
// a pending or deactivated enrollment with that phone gives ErrNotFound.
func (s *BoltStore) EnrollmentByPhone(ctx context.Context, phone string) (Enrollment, error) {
	if err := checkPhone(phone); err != nil {
		return Enrollment{}, err
	}
	var e Enrollment
	err := s.view(ctx, func(tx *bolt.Tx) error {
		owner := tx.Bucket(bucketPhones).Get([]byte(phone))
		if owner == nil {
			return ErrNotFound
		}
		return getEnrollment(tx, owner, &e)
	})
	if err != nil {
		// The phone is deliberately not in the message: errors reach logs.
		return Enrollment{}, fmt.Errorf("enroll: enrollment by phone: %w", err)
	}
	return e, nil
}

// getEnrollment decodes the record under key into e; json.Unmarshal copies,
// so nothing in e points into the transaction's memory.
func getEnrollment(tx *bolt.Tx, key []byte, e *Enrollment) error {
	raw := tx.Bucket(bucketEnrollments).Get(key)
	if raw == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(raw, e); err != nil {
		return fmt.Errorf("decode stored enrollment: %w", err)
	}
	return nil
}

// Enrollments lists every enrollment ordered by (lower-cased) username.
func (s *BoltStore) Enrollments(ctx context.Context) ([]Enrollment, error) {
	var list []Enrollment
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEnrollments)
		i := 0
		return b.ForEach(func(k, v []byte) error {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var e Enrollment
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
func (s *BoltStore) DeleteEnrollment(ctx context.Context, username string) error {
	key, err := usernameKey(username)
	if err != nil {
		return err
	}
	k := []byte(key)
	err = s.update(ctx, func(tx *bolt.Tx) error {
		var old Enrollment
		if err := getEnrollment(tx, k, &old); err != nil {
			return err
		}
		if ownsPhone(old) {
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
func (s *BoltStore) UpdateEnrollment(ctx context.Context, username string, fn func(*Enrollment) error) error {
	key, err := usernameKey(username)
	if err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: nil update function", ErrInvalid)
	}
	k := []byte(key)
	err = s.update(ctx, func(tx *bolt.Tx) error {
		var e Enrollment
		if err := getEnrollment(tx, k, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		newKey, err := checkEnrollment(e)
		if err != nil {
			return err
		}
		if newKey != key {
			return fmt.Errorf("%w: an update must not change the username", ErrInvalid)
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
