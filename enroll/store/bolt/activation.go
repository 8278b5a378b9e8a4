package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// An activation is stored under its token hash (activations) and found by
// user through activation_users, which holds the hash of the user's one
// current activation. Both are always written in the same transaction.

// PutActivation stores a and makes it the current activation of
// a.Username (matched case-insensitively). The user's previous activation,
// if it has another token hash, is deleted in the same transaction, so its
// link stops working. A token hash already used by another user's
// activation is refused with ErrInvalid.
func (s *Store) PutActivation(ctx context.Context, a enroll.Activation) error {
	ukey, err := enroll.CheckActivation(a)
	if err != nil {
		return err
	}
	val, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("enroll: encode activation of %s: %w", a.Username, err)
	}
	h, u := []byte(a.TokenHash), []byte(ukey)
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		acts, users := tx.Bucket(bucketActivations), tx.Bucket(bucketActivationUsers)
		if raw := acts.Get(h); raw != nil {
			var cur enroll.Activation
			if err := json.Unmarshal(raw, &cur); err != nil {
				return fmt.Errorf("decode stored activation: %w", err)
			}
			if strings.ToLower(cur.Username) != ukey {
				return enroll.Invalidf("token hash already belongs to another user's activation")
			}
		}
		if old := users.Get(u); old != nil && !bytes.Equal(old, h) {
			if err := acts.Delete(bytes.Clone(old)); err != nil {
				return err
			}
		}
		if err := users.Put(u, h); err != nil {
			return err
		}
		return acts.Put(h, val)
	})
	if err != nil {
		return fmt.Errorf("enroll: put activation of %s: %w", a.Username, err)
	}
	return nil
}

// getActivation decodes the activation stored under hash into a, or
// returns ErrTokenUnknown.
func getActivation(tx *bbolt.Tx, hash []byte, a *enroll.Activation) error {
	raw := tx.Bucket(bucketActivations).Get(hash)
	if raw == nil {
		return enroll.ErrTokenUnknown
	}
	if err := json.Unmarshal(raw, a); err != nil {
		return fmt.Errorf("decode stored activation: %w", err)
	}
	return nil
}

// deleteActivation removes the activation a, stored under hash, and its
// user index entry if that still points to it.
func deleteActivation(tx *bbolt.Tx, hash []byte, a enroll.Activation) error {
	users := tx.Bucket(bucketActivationUsers)
	u := []byte(strings.ToLower(a.Username))
	if bytes.Equal(users.Get(u), hash) {
		if err := users.Delete(u); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketActivations).Delete(hash)
}

// ActivationByToken returns the activation stored under hash, expired or
// not (the caller decides with Expired), or ErrTokenUnknown.
func (s *Store) ActivationByToken(ctx context.Context, hash string) (enroll.Activation, error) {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return enroll.Activation{}, err
	}
	var a enroll.Activation
	err := s.view(ctx, func(tx *bbolt.Tx) error { return getActivation(tx, []byte(hash), &a) })
	if err != nil {
		// The hash is not in the message: it is as good as the token for a lookup.
		return enroll.Activation{}, fmt.Errorf("enroll: activation by token: %w", err)
	}
	return a, nil
}

// ActivationByUser returns the current activation of username
// (case-insensitive), or ErrNotFound.
func (s *Store) ActivationByUser(ctx context.Context, username string) (enroll.Activation, error) {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return enroll.Activation{}, err
	}
	var a enroll.Activation
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		h := tx.Bucket(bucketActivationUsers).Get([]byte(key))
		if h == nil {
			return enroll.ErrNotFound
		}
		return getActivation(tx, h, &a)
	})
	if err != nil {
		return enroll.Activation{}, fmt.Errorf("enroll: activation of %s: %w", username, err)
	}
	return a, nil
}

// UpdateActivation lets fn change the activation stored under hash and
// writes the result back in the same transaction. fn may be called more
// than once (a shared transaction that failed is re-run), each time on a
// fresh copy and perhaps on another goroutine, so it must do nothing but
// change its argument. An error from fn is returned and nothing is
// written; changing TokenHash or Username, or leaving an invalid
// activation, gives ErrInvalid.
func (s *Store) UpdateActivation(ctx context.Context, hash string, fn func(*enroll.Activation) error) error {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return err
	}
	if fn == nil {
		return enroll.Invalidf("update activation: nil function")
	}
	h := []byte(hash)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var a enroll.Activation
		if err := getActivation(tx, h, &a); err != nil {
			return err
		}
		a, err := record.UpdateActivation(a, fn)
		if err != nil {
			return err
		}
		val, err := json.Marshal(a)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketActivations).Put(h, val)
	})
	if err != nil {
		return fmt.Errorf("enroll: update activation: %w", err)
	}
	return nil
}

// CompleteActivation stores e with its phone index and deletes the
// activation stored under hash, all in one transaction: of two requests
// with the same token, one completes and the other gets ErrTokenUnknown.
// e must be for the activation's user (ErrInvalid otherwise); ErrPhoneTaken
// changes nothing, and the activation stays usable.
func (s *Store) CompleteActivation(ctx context.Context, hash string, e enroll.Enrollment) error {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return err
	}
	ekey, err := enroll.CheckEnrollment(e)
	if err != nil {
		return err
	}
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("enroll: encode enrollment %s: %w", e.Username, err)
	}
	h := []byte(hash)
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		var a enroll.Activation
		if err := getActivation(tx, h, &a); err != nil {
			return err
		}
		used, err := record.UsedLink(hash, a, ekey, e)
		if err != nil {
			return err
		}
		if err := putEnrollmentTx(tx, []byte(ekey), e, val); err != nil {
			return err
		}
		if err := putEndedLink(tx, used); err != nil {
			return err
		}
		return deleteActivation(tx, h, a)
	})
	if err != nil {
		return fmt.Errorf("enroll: complete activation of %s: %w", e.Username, err)
	}
	return nil
}

// DeleteActivation removes the activation stored under hash and its user
// index entry, or returns ErrTokenUnknown.
func (s *Store) DeleteActivation(ctx context.Context, hash string) error {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return err
	}
	h := []byte(hash)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var a enroll.Activation
		if err := getActivation(tx, h, &a); err != nil {
			return err
		}
		return deleteActivation(tx, h, a)
	})
	if err != nil {
		return fmt.Errorf("enroll: delete activation: %w", err)
	}
	return nil
}

// PurgeActivations deletes the activations Expired at now, with their user
// index entries, and returns how many it deleted. Activations are few (one
// per user being enrolled), so a scan is cheaper than an expiry index.
func (s *Store) PurgeActivations(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	var n int
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		type expired struct {
			hash []byte
			a    enroll.Activation
		}
		var gone []expired
		i := 0
		err := tx.Bucket(bucketActivations).ForEach(func(k, v []byte) error {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var a enroll.Activation
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode stored activation: %w", err)
			}
			if a.Expired(now) {
				// Deleting during ForEach is not allowed; collect copies first.
				gone = append(gone, expired{bytes.Clone(k), a})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, x := range gone {
			if err := deleteActivation(tx, x.hash, x.a); err != nil {
				return err
			}
			ended := enroll.EndedLink{TokenHash: x.a.TokenHash, Username: x.a.Username, Reason: enroll.LinkExpired, At: x.a.ExpiresAt}
			if err := putEndedLink(tx, ended); err != nil {
				return err
			}
		}
		n = len(gone) // set, not added to: this function may be re-run
		return purgeEndedLinks(ctx, tx, now)
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: purge activations: %w", err)
	}
	return n, nil
}
