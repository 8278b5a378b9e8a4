package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

var _ enroll.LeaseStore = (*Store)(nil)

// Leases are one key per lease name:
//
//	leases  name → expiry (8, Unix ns) | holder
var bucketLeases = []byte("leases")

// checkLease validates the name and holder of a lease call.
func checkLease(name, holder string) error {
	if err := enroll.CheckKey("lease name", name); err != nil {
		return err
	}
	return enroll.CheckKey("lease holder", holder)
}

// AcquireLease implements enroll.LeaseStore; the read and the write share one
// write transaction.
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
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		got = false // the group commit may run this function again
		b := tx.Bucket(bucketLeases)
		if v := b.Get([]byte(name)); len(v) >= 8 {
			held := bytesNano(v[:8]) > unixNano(now)
			if held && !bytes.Equal(v[8:], []byte(holder)) {
				return nil
			}
		}
		got = true
		return b.Put([]byte(name), append(timeBytes(now.Add(ttl)), holder...))
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
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLeases)
		if v := b.Get([]byte(name)); len(v) >= 8 && bytes.Equal(v[8:], []byte(holder)) {
			return b.Delete([]byte(name))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: release lease %s: %w", name, err)
	}
	return nil
}

// dropLeases ends every lease in the file (Open: their holders are gone).
func dropLeases(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketLeases)
	var names [][]byte
	if err := b.ForEach(func(k, _ []byte) error { names = append(names, bytes.Clone(k)); return nil }); err != nil {
		return err
	}
	for _, k := range names {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
