package etcd

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

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
	rctx, cancel := context.WithTimeout(ctx, l.s.timeout)
	defer cancel()
	ttl := 2 * c
	resp, err := l.s.cli.Grant(rctx, int64(ttl/time.Second))
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("grant an etcd lease: %w", l.s.clientErr(ctx, err))
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
