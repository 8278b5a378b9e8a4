package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

var _ enroll.SessionStore = (*Store)(nil)

// bucketSessions holds the admin console's sessions:
//
//	admin_sessions  session key (hex SHA-256 of the ID) → JSON enroll.AdminSession
//
// Admins are few, so PurgeSessions scans the bucket rather than keep an
// expiry index.
var bucketSessions = []byte("admin_sessions")

// PutSession stores a new session under key.
func (s *Store) PutSession(ctx context.Context, key string, sess enroll.AdminSession) error {
	if err := enroll.CheckSessionKey(key); err != nil {
		return err
	}
	if err := enroll.CheckSession(sess); err != nil {
		return err
	}
	val, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("enroll: encode session of %s: %w", sess.Username, err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get([]byte(key)) != nil {
			return enroll.Invalidf("a session is already stored under this key")
		}
		return b.Put([]byte(key), val)
	})
	if err != nil {
		return fmt.Errorf("enroll: put session of %s: %w", sess.Username, err)
	}
	return nil
}

// Session returns the session under key live at now.
func (s *Store) Session(ctx context.Context, key string, now time.Time) (enroll.AdminSession, error) {
	if err := enroll.CheckSessionKey(key); err != nil {
		return enroll.AdminSession{}, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return enroll.AdminSession{}, err
	}
	var sess enroll.AdminSession
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		sess, err = liveSession(tx.Bucket(bucketSessions), []byte(key), now)
		return err
	})
	if err != nil {
		return enroll.AdminSession{}, fmt.Errorf("enroll: session: %w", err)
	}
	return sess, nil
}

// liveSession decodes the session under k of b, or enroll.ErrNotFound when there
// is none or it has expired at now.
func liveSession(b *bbolt.Bucket, k []byte, now time.Time) (enroll.AdminSession, error) {
	sess, err := getRecord[enroll.AdminSession](b, k, "admin session")
	if err == nil && !sess.Live(now) {
		return enroll.AdminSession{}, enroll.ErrNotFound
	}
	return sess, err
}

// UpdateSession changes the session under key live at now in one
// transaction.
func (s *Store) UpdateSession(ctx context.Context, key string, now time.Time, fn func(*enroll.AdminSession) error) error {
	if err := enroll.CheckSessionKey(key); err != nil {
		return err
	}
	if err := enroll.CheckNow(now); err != nil {
		return err
	}
	if fn == nil {
		return enroll.Invalidf("nil update function")
	}
	k := []byte(key)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		was, err := liveSession(b, k, now)
		if err != nil {
			return err
		}
		sess := was
		if err := fn(&sess); err != nil {
			return err
		}
		if err := enroll.CheckSessionUpdate(was, sess); err != nil {
			return err
		}
		val, err := json.Marshal(sess)
		if err != nil {
			return fmt.Errorf("encode session of %s: %w", sess.Username, err)
		}
		return b.Put(k, val)
	})
	if err != nil {
		return fmt.Errorf("enroll: update session: %w", err)
	}
	return nil
}

// DeleteSession removes the session under key, if any.
func (s *Store) DeleteSession(ctx context.Context, key string) error {
	if err := enroll.CheckSessionKey(key); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error { return tx.Bucket(bucketSessions).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("enroll: delete session: %w", err)
	}
	return nil
}

// PurgeSessions removes the sessions expired at now.
func (s *Store) PurgeSessions(ctx context.Context, now time.Time) (int, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, err
	}
	var n int
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var expired [][]byte
		c := b.Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var sess enroll.AdminSession
			if err := json.Unmarshal(v, &sess); err != nil {
				return fmt.Errorf("decode stored admin session: %w", err)
			}
			if !sess.Live(now) {
				// Deleting behind a live cursor skips keys; collect copies first.
				expired = append(expired, bytes.Clone(k))
			}
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: purge sessions: %w", err)
	}
	return n, nil
}
