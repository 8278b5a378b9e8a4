package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var _ SessionStore = (*BoltStore)(nil)

// bucketSessions holds the admin console's sessions:
//
//	admin_sessions  session key (hex SHA-256 of the ID) → JSON AdminSession
//
// Admins are few, so PurgeSessions scans the bucket rather than keep an
// expiry index.
var bucketSessions = []byte("admin_sessions")

// PutSession stores a new session under key.
func (s *BoltStore) PutSession(ctx context.Context, key string, sess AdminSession) error {
	if err := checkSessionKey(key); err != nil {
		return err
	}
	if err := checkSession(sess); err != nil {
		return err
	}
	val, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("enroll: encode session of %s: %w", sess.Username, err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get([]byte(key)) != nil {
			return invalidf("a session is already stored under this key")
		}
		return b.Put([]byte(key), val)
	})
	if err != nil {
		return fmt.Errorf("enroll: put session of %s: %w", sess.Username, err)
	}
	return nil
}

// Session returns the session under key live at now.
func (s *BoltStore) Session(ctx context.Context, key string, now time.Time) (AdminSession, error) {
	if err := checkSessionKey(key); err != nil {
		return AdminSession{}, err
	}
	if err := checkNow(now); err != nil {
		return AdminSession{}, err
	}
	var sess AdminSession
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		sess, err = liveSession(tx.Bucket(bucketSessions), []byte(key), now)
		return err
	})
	if err != nil {
		return AdminSession{}, fmt.Errorf("enroll: session: %w", err)
	}
	return sess, nil
}

// liveSession decodes the session under k of b, or ErrNotFound when there
// is none or it has expired at now.
func liveSession(b *bolt.Bucket, k []byte, now time.Time) (AdminSession, error) {
	sess, err := getRecord[AdminSession](b, k, "admin session")
	if err == nil && !sess.Live(now) {
		return AdminSession{}, ErrNotFound
	}
	return sess, err
}

// UpdateSession changes the session under key live at now in one
// transaction.
func (s *BoltStore) UpdateSession(ctx context.Context, key string, now time.Time, fn func(*AdminSession) error) error {
	if err := checkSessionKey(key); err != nil {
		return err
	}
	if err := checkNow(now); err != nil {
		return err
	}
	if fn == nil {
		return invalidf("nil update function")
	}
	k := []byte(key)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		was, err := liveSession(b, k, now)
		if err != nil {
			return err
		}
		sess := was
		if err := fn(&sess); err != nil {
			return err
		}
		if err := checkSessionUpdate(was, sess); err != nil {
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
func (s *BoltStore) DeleteSession(ctx context.Context, key string) error {
	if err := checkSessionKey(key); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bucketSessions).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("enroll: delete session: %w", err)
	}
	return nil
}

// PurgeSessions removes the sessions expired at now.
func (s *BoltStore) PurgeSessions(ctx context.Context, now time.Time) (int, error) {
	if err := checkNow(now); err != nil {
		return 0, err
	}
	var n int
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var expired [][]byte
		c := b.Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var sess AdminSession
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
