package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

var _ enroll.SessionStore = (*Store)(nil)

const sessionsPrefix = "sessions/"

// PutSession stores a new session under key (create-if-absent), on an etcd
// lease that outlives it.
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
	err = s.update(ctx, func(t *tx) error {
		v, err := t.get(sessionsPrefix + key)
		if err != nil {
			return err
		}
		if v != nil {
			return enroll.Invalidf("a session is already stored under this key")
		}
		lease, err := s.ttl.lease(ctx, sess.ExpiresAt.Sub(sess.CreatedAt))
		if err != nil {
			return err
		}
		t.putLease(sessionsPrefix+key, val, lease)
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: put session of %s: %w", sess.Username, err)
	}
	return nil
}

// liveSession reads the session under key, or ErrNotFound when there is
// none or it has expired at now (whatever its etcd lease says).
func (t *tx) liveSession(key string, now time.Time) (enroll.AdminSession, error) {
	v, err := t.get(sessionsPrefix + key)
	if err != nil {
		return enroll.AdminSession{}, err
	}
	if v == nil {
		return enroll.AdminSession{}, enroll.ErrNotFound
	}
	sess, err := decode[enroll.AdminSession]("stored admin session", v)
	if err == nil && !sess.Live(now) {
		return enroll.AdminSession{}, enroll.ErrNotFound
	}
	return sess, err
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
	err := s.view(ctx, func(t *tx) error {
		var err error
		sess, err = t.liveSession(key, now)
		return err
	})
	if err != nil {
		return enroll.AdminSession{}, fmt.Errorf("enroll: session: %w", err)
	}
	return sess, nil
}

// UpdateSession changes the session under key live at now: a CAS on the
// key, which keeps its etcd lease.
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
	err := s.update(ctx, func(t *tx) error {
		was, err := t.liveSession(key, now)
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
		t.putKeepLease(sessionsPrefix+key, val)
		return nil
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
	err := s.update(ctx, func(t *tx) error {
		t.del(sessionsPrefix + key)
		return nil
	})
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
	n, err := s.purgeEach(ctx, sessionsPrefix, func(_ string, v []byte) ([]byte, bool, error) {
		sess, err := decode[enroll.AdminSession]("stored admin session", v)
		return nil, err == nil && !sess.Live(now), err
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: purge sessions: %w", err)
	}
	return n, nil
}
