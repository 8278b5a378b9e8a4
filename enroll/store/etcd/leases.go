package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/replyreset/replyreset/enroll"
)

const leasesPrefix = "leases/"

// sessionTTL is the TTL of the store's etcd session: the job leases of a
// process that died without closing its store end at most this long after.
const sessionTTL = 10 // seconds

// jobLease is a job lease's record. It is written on the store's etcd
// session lease, kept alive while the store is open: Close revokes it, so
// the leases end with the store that granted them, and a crashed process's
// go when its session's TTL runs out.
type jobLease struct {
	Expires int64  `json:"expires"` // Unix ns, by the callers' clock
	Holder  string `json:"holder"`
}

// sessionLease returns the store's etcd session lease, opening a new
// session when there is none or the last one ended.
func (s *Store) sessionLease(ctx context.Context) (clientv3.LeaseID, error) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sess != nil {
		select {
		case <-s.sess.Done():
			s.sess = nil
		default:
			return s.sess.Lease(), nil
		}
	}
	resp, err := s.grant(ctx, sessionTTL)
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("open an etcd session: %w", err)
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(resp.ID), concurrency.WithTTL(sessionTTL))
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("open an etcd session: %w", s.clientErr(ctx, err))
	}
	s.sess = sess
	return sess.Lease(), nil
}

func checkLease(name, holder string) error {
	if err := enroll.CheckKey("lease name", name); err != nil {
		return err
	}
	return enroll.CheckKey("lease holder", holder)
}

// AcquireLease implements enroll.LeaseStore as a CAS on the lease's key.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if err := checkLease(name, holder); err != nil {
		return false, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, enroll.Invalidf("lease %s: ttl %s is not positive", name, ttl)
	}
	got := false
	err := s.update(ctx, func(t *tx) error {
		got = false
		v, err := t.get(leasesPrefix + name)
		if err != nil {
			return err
		}
		if v != nil {
			var l jobLease
			if err := json.Unmarshal(v, &l); err == nil && l.Expires > unixNano(now) && l.Holder != holder {
				return nil
			}
		}
		lease, err := s.sessionLease(ctx)
		if err != nil {
			return err
		}
		got = true
		val, _ := json.Marshal(jobLease{Expires: unixNano(now.Add(ttl)), Holder: holder})
		t.putLease(leasesPrefix+name, val, lease)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("enroll: acquire lease %s: %w", name, err)
	}
	return got, nil
}

// ReleaseLease implements enroll.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := checkLease(name, holder); err != nil {
		return err
	}
	err := s.update(ctx, func(t *tx) error {
		v, err := t.get(leasesPrefix + name)
		if err != nil || v == nil {
			return err
		}
		var l jobLease
		if json.Unmarshal(v, &l) == nil && l.Holder == holder {
			t.del(leasesPrefix + name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: release lease %s: %w", name, err)
	}
	return nil
}

// forgetLeases drops the cached etcd leases after a write found one gone:
// the TTL leases, and the session when its lease is the one that ended.
func (s *Store) forgetLeases(ctx context.Context) {
	s.ttl.forget()
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sess == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if resp, err := s.cli.TimeToLive(rctx, s.sess.Lease()); err == nil && resp.TTL > 0 {
		return
	}
	s.sess.Orphan()
	s.sess = nil
}

// ttlLeases hands out the etcd leases TTL records (message IDs, rate-limit
// windows, guard entries, sessions) are written on, so that they disappear
// by themselves. A lease is shared by the records of one lifetime class
// for a while instead of granting one per write: a record of life d gets a
// lease that still has at least d to run, and lives at most about twice
// as long. Only the caller's now decides whether a record has expired
// (records are read with their own expiry); the lease just bounds how long
// a forgotten one stays.
type ttlLeases struct {
	s  *Store
	mu sync.Mutex
	// by class: the lease and when it expires by the wall clock.
	leases map[time.Duration]grantedLease
}

type grantedLease struct {
	id      clientv3.LeaseID
	expires time.Time
}

// maxLeaseLife is the longest life a TTL record gets a lease for; a record
// meant to live longer has none and goes with Purge.
const maxLeaseLife = 90 * 24 * time.Hour

// class rounds a life up to the lease class it is granted in.
func class(d time.Duration) time.Duration {
	c := time.Minute
	for c < d {
		c *= 4
	}
	return c
}

// lease returns a lease that lives at least d from now by the wall clock,
// or NoLease when d is beyond maxLeaseLife.
func (l *ttlLeases) lease(ctx context.Context, d time.Duration) (clientv3.LeaseID, error) {
	if d > maxLeaseLife {
		return clientv3.NoLease, nil
	}
	c := class(d)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.leases[c]; ok && g.expires.Sub(now) >= d+time.Minute {
		return g.id, nil
	}
	ttl := 2 * c
	resp, err := l.s.grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("grant an etcd lease: %w", err)
	}
	if l.leases == nil {
		l.leases = map[time.Duration]grantedLease{}
	}
	l.leases[c] = grantedLease{id: resp.ID, expires: now.Add(time.Duration(resp.TTL) * time.Second)}
	return resp.ID, nil
}

// forget drops the cached leases (one was found gone).
func (l *ttlLeases) forget() {
	l.mu.Lock()
	l.leases = nil
	l.mu.Unlock()
}
