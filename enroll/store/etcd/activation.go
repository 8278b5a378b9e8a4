package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

const (
	activationsPrefix = "activations/"
	actUsersPrefix    = "activation_users/"
	endedPrefix       = "ended_links/"
)

// PutActivation stores a, replacing the user's other activation (its token
// stops working) in the same transaction.
func (s *Store) PutActivation(ctx context.Context, a enroll.Activation) error {
	ukey, err := enroll.CheckActivation(a)
	if err != nil {
		return err
	}
	val, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("enroll: encode activation of %s: %w", a.Username, err)
	}
	err = s.update(ctx, func(t *tx) error {
		cur, err := t.activation(a.TokenHash)
		switch {
		case err == nil && strings.ToLower(cur.Username) != ukey:
			return enroll.Invalidf("token hash already belongs to another user's activation")
		case err != nil && err != enroll.ErrTokenUnknown:
			return err
		}
		old, err := t.get(actUsersPrefix + ukey)
		if err != nil {
			return err
		}
		if old != nil && string(old) != a.TokenHash {
			t.del(activationsPrefix + string(old))
		}
		t.put(actUsersPrefix+ukey, []byte(a.TokenHash))
		t.put(activationsPrefix+a.TokenHash, val)
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: put activation of %s: %w", a.Username, err)
	}
	return nil
}

// activation reads the activation under hash, or ErrTokenUnknown.
func (t *tx) activation(hash string) (enroll.Activation, error) {
	v, err := t.get(activationsPrefix + hash)
	if err != nil {
		return enroll.Activation{}, err
	}
	if v == nil {
		return enroll.Activation{}, enroll.ErrTokenUnknown
	}
	return decode[enroll.Activation]("stored activation", v)
}

// deleteActivation removes the activation a under hash and its user index
// entry if it points at it.
func (t *tx) deleteActivation(hash string, a enroll.Activation) error {
	u := actUsersPrefix + strings.ToLower(a.Username)
	cur, err := t.get(u)
	if err != nil {
		return err
	}
	if string(cur) == hash {
		t.del(u)
	}
	t.del(activationsPrefix + hash)
	return nil
}

// ActivationByToken returns the activation under hash.
func (s *Store) ActivationByToken(ctx context.Context, hash string) (enroll.Activation, error) {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return enroll.Activation{}, err
	}
	var a enroll.Activation
	err := s.view(ctx, func(t *tx) error {
		var err error
		a, err = t.activation(hash)
		return err
	})
	if err != nil {
		return enroll.Activation{}, fmt.Errorf("enroll: activation by token: %w", err)
	}
	return a, nil
}

// ActivationByUser returns the username's current activation.
func (s *Store) ActivationByUser(ctx context.Context, username string) (enroll.Activation, error) {
	key, err := enroll.UsernameKey(username)
	if err != nil {
		return enroll.Activation{}, err
	}
	var a enroll.Activation
	err = s.view(ctx, func(t *tx) error {
		h, err := t.get(actUsersPrefix + key)
		if err != nil {
			return err
		}
		if h == nil {
			return enroll.ErrNotFound
		}
		a, err = t.activation(string(h))
		return err
	})
	if err != nil {
		return enroll.Activation{}, fmt.Errorf("enroll: activation of %s: %w", username, err)
	}
	return a, nil
}

// UpdateActivation lets fn change the activation under hash: a CAS on its
// key.
func (s *Store) UpdateActivation(ctx context.Context, hash string, fn func(*enroll.Activation) error) error {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return err
	}
	if fn == nil {
		return enroll.Invalidf("update activation: nil function")
	}
	err := s.update(ctx, func(t *tx) error {
		old, err := t.activation(hash)
		if err != nil {
			return err
		}
		a, err := record.UpdateActivation(old, fn)
		if err != nil {
			return err
		}
		val, err := json.Marshal(a)
		if err != nil {
			return err
		}
		t.put(activationsPrefix+hash, val)
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: update activation: %w", err)
	}
	return nil
}

// CompleteActivation stores e with its phone index, records the link as
// used and deletes the activation, in one transaction compared on the
// activation's revision: the token works once.
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
	err = s.update(ctx, func(t *tx) error {
		a, err := t.activation(hash)
		if err != nil {
			return err
		}
		used, err := record.UsedLink(hash, a, ekey, e)
		if err != nil {
			return err
		}
		if err := t.putEnrollment(ekey, e, val); err != nil {
			return err
		}
		if err := t.putEndedLink(used); err != nil {
			return err
		}
		return t.deleteActivation(hash, a)
	})
	if err != nil {
		return fmt.Errorf("enroll: complete activation of %s: %w", e.Username, err)
	}
	return nil
}

// DeleteActivation removes the activation under hash.
func (s *Store) DeleteActivation(ctx context.Context, hash string) error {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return err
	}
	err := s.update(ctx, func(t *tx) error {
		a, err := t.activation(hash)
		if err != nil {
			return err
		}
		return t.deleteActivation(hash, a)
	})
	if err != nil {
		return fmt.Errorf("enroll: delete activation: %w", err)
	}
	return nil
}

// PurgeActivations removes the activations expired at now, each in its own
// transaction that rechecks it (so concurrent purges count each once) and
// records it as an ended link, then forgets old ended links.
func (s *Store) PurgeActivations(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	var expired []string
	err := s.view(ctx, func(t *tx) error {
		return t.scan(activationsPrefix, "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			a, err := decode[enroll.Activation](k, kv.Value)
			if err == nil && a.Expired(now) {
				expired = append(expired, k[len(activationsPrefix):])
			}
			return err == nil, err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: purge activations: %w", err)
	}
	n := 0
	for _, hash := range expired {
		gone := false
		err := s.update(ctx, func(t *tx) error {
			gone = false
			a, err := t.activation(hash)
			if err == enroll.ErrTokenUnknown || (err == nil && !a.Expired(now)) {
				return nil
			}
			if err != nil {
				return err
			}
			gone = true
			ended := enroll.EndedLink{TokenHash: a.TokenHash, Username: a.Username, Reason: enroll.LinkExpired, At: a.ExpiresAt}
			if err := t.putEndedLink(ended); err != nil {
				return err
			}
			return t.deleteActivation(hash, a)
		})
		if err != nil {
			return n, fmt.Errorf("enroll: purge activations: %w", err)
		}
		if gone {
			n++
		}
	}
	_, err = s.purgeEach(ctx, endedPrefix, func(k string, v []byte) ([]byte, bool, error) {
		l, err := decode[enroll.EndedLink](k, v)
		return nil, err == nil && !now.Before(l.At.Add(enroll.EndedLinkRetention)), err
	})
	if err != nil {
		return n, fmt.Errorf("enroll: purge ended links: %w", err)
	}
	return n, nil
}

func (t *tx) putEndedLink(l enroll.EndedLink) error {
	val, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode ended link: %w", err)
	}
	t.put(endedPrefix+l.TokenHash, val)
	return nil
}

// EndedLink returns what became of the link under hash.
func (s *Store) EndedLink(ctx context.Context, hash string) (enroll.EndedLink, error) {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return enroll.EndedLink{}, err
	}
	var l enroll.EndedLink
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(endedPrefix + hash)
		if err != nil {
			return err
		}
		if v == nil {
			return enroll.ErrTokenUnknown
		}
		l, err = decode[enroll.EndedLink]("ended link", v)
		return err
	})
	if err != nil {
		return enroll.EndedLink{}, fmt.Errorf("enroll: ended link: %w", err)
	}
	return l, nil
}

// Activations lists every stored activation ordered by username,
// case-insensitively.
func (s *Store) Activations(ctx context.Context) ([]enroll.Activation, error) {
	var out []enroll.Activation
	err := s.view(ctx, func(t *tx) error {
		return t.scan(activationsPrefix, "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			a, err := decode[enroll.Activation](k, kv.Value)
			out = append(out, a)
			return err == nil, err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list activations: %w", err)
	}
	slices.SortFunc(out, func(a, b enroll.Activation) int {
		return strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username))
	})
	return out, nil
}
