package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

var _ enroll.SealKeyStore = (*Store)(nil)

// keySealKey is the meta key of the sealing key's fingerprint:
//
//	meta  "seal_key" → fingerprint (lower-case hex)
var keySealKey = []byte("seal_key")

// SealKey implements enroll.SealKeyStore; the read and the write share one
// write transaction.
func (s *Store) SealKey(ctx context.Context, fingerprint string) (string, error) {
	if err := enroll.CheckFingerprint(fingerprint); err != nil {
		return "", err
	}
	var recorded string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySealKey); v != nil {
			recorded = string(v)
			return nil
		}
		recorded = fingerprint
		return meta.Put(keySealKey, []byte(fingerprint))
	})
	if err != nil {
		return "", fmt.Errorf("enroll: record the sealing key's fingerprint: %w", err)
	}
	return recorded, nil
}
