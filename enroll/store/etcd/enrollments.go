package etcd

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
)

const (
	enrollmentsPrefix = "enrollments/"
	phonesPrefix      = "phones/"
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
	err = s.update(ctx, func(t *tx) error { return t.putEnrollment(key, e, val) })
	if err != nil {
		return fmt.Errorf("enroll: put enrollment %s: %w", e.Username, err)
	}
	return nil
}

// putEnrollment writes e (encoded as val) under username key and keeps the
// phone index in step: the body of PutEnrollment, shared with
// CompleteActivation. ErrPhoneTaken writes nothing.
func (t *tx) putEnrollment(key string, e enroll.Enrollment, val []byte) error {
	if enroll.OwnsPhone(e) {
		owner, err := t.get(phonesPrefix + e.Phone)
		if err != nil {
			return err
		}
		if owner != nil && string(owner) != key {
			return enroll.ErrPhoneTaken
		}
	}
	old, err := t.enrollment(key)
	switch {
	case err == nil:
		if enroll.OwnsPhone(old) && (!enroll.OwnsPhone(e) || old.Phone != e.Phone) {
			if err := t.unindexPhone(old.Phone, key); err != nil {
				return err
			}
		}
	case err != enroll.ErrNotFound:
		return err
	}
	if enroll.OwnsPhone(e) {
		t.put(phonesPrefix+e.Phone, []byte(key))
	}
	t.put(enrollmentsPrefix+key, val)
	return nil
}

// unindexPhone removes phone from the index if username key owns it.
func (t *tx) unindexPhone(phone, key string) error {
	owner, err := t.get(phonesPrefix + phone)
	if err != nil {
		return err
	}
	if string(owner) == key {
		t.del(phonesPrefix + phone)
	}
	return nil
}

// enrollment reads the enrollment under username key, or ErrNotFound.
func (t *tx) enrollment(key string) (enroll.Enrollment, error) {
	v, err := t.get(enrollmentsPrefix + key)
	if err != nil {
		return enroll.Enrollment{}, err
	}
	if v == nil {
		return enroll.Enrollment{}, enroll.ErrNotFound
	}
	return decode[enroll.Enrollment]("stored enrollment", v)
}

// Enrollment returns the enrollment for username (case-insensitive).
func (s *Store) Enrollment(ctx context.Context, username string) (enroll.Enrollment, error) {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return enroll.Enrollment{}, err
	}
	var e enroll.Enrollment
	err = s.view(ctx, func(t *tx) error {
		e, err = t.enrollment(key)
		return err
	})
	if err != nil {
		return enroll.Enrollment{}, fmt.Errorf("enroll: enrollment %s: %w", username, err)
	}
	return e, nil
}

// EnrollmentByPhone returns the active or frozen enrollment that owns phone.
func (s *Store) EnrollmentByPhone(ctx context.Context, phone string) (enroll.Enrollment, error) {
	if err := enroll.CheckPhone(phone); err != nil {
		return enroll.Enrollment{}, err
	}
	var e enroll.Enrollment
	err := s.view(ctx, func(t *tx) error {
		owner, err := t.get(phonesPrefix + phone)
		if err != nil {
			return err
		}
		if owner == nil {
			return enroll.ErrNotFound
		}
		e, err = t.enrollment(string(owner))
		return err
	})
	if err != nil {
		// The phone is deliberately not in the message: errors reach logs.
		return enroll.Enrollment{}, fmt.Errorf("enroll: enrollment by phone: %w", err)
	}
	return e, nil
}

// Enrollments lists every enrollment ordered by (lower-cased) username,
// reading one page at a time at one revision.
func (s *Store) Enrollments(ctx context.Context) ([]enroll.Enrollment, error) {
	var list []enroll.Enrollment
	err := s.view(ctx, func(t *tx) error {
		return t.scan(enrollmentsPrefix, "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			e, err := decode[enroll.Enrollment](k, kv.Value)
			list = append(list, e)
			return true, err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list enrollments: %w", err)
	}
	return list, nil
}

// DeleteEnrollment removes the enrollment for username and frees its phone.
func (s *Store) DeleteEnrollment(ctx context.Context, username string) error {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(t *tx) error {
		old, err := t.enrollment(key)
		if err != nil {
			return err
		}
		if enroll.OwnsPhone(old) {
			if err := t.unindexPhone(old.Phone, key); err != nil {
				return err
			}
		}
		t.del(enrollmentsPrefix + key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: delete enrollment %s: %w", username, err)
	}
	return nil
}

// UpdateEnrollment reads username's enrollment, lets fn change it and
// writes it back with its phone index, compared on the revisions read (a
// CAS loop: fn runs again on the new state after a conflict).
func (s *Store) UpdateEnrollment(ctx context.Context, username string, fn func(*enroll.Enrollment) error) error {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return err
	}
	if fn == nil {
		return enroll.Invalidf("nil update function")
	}
	err = s.update(ctx, func(t *tx) error {
		e, err := t.enrollment(key)
		if err != nil {
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
			return enroll.Invalidf("an update must not change the username")
		}
		val, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode enrollment: %w", err)
		}
		return t.putEnrollment(key, e, val)
	})
	if err != nil {
		return fmt.Errorf("enroll: update enrollment %s: %w", username, err)
	}
	return nil
}
