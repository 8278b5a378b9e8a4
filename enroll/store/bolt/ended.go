package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// Ended links are stored under the token hash of their activation
// (ended_links); a used link is written in the transaction that completes
// the enrollment, an expired one in the purge that deletes its activation.

func putEndedLink(tx *bbolt.Tx, l enroll.EndedLink) error {
	val, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode ended link: %w", err)
	}
	return tx.Bucket(bucketEndedLinks).Put([]byte(l.TokenHash), val)
}

// purgeEndedLinks forgets the ended links older than EndedLinkRetention.
func purgeEndedLinks(ctx context.Context, tx *bbolt.Tx, now time.Time) error {
	b := tx.Bucket(bucketEndedLinks)
	var old [][]byte
	i := 0
	err := b.ForEach(func(k, v []byte) error {
		i++
		if err := errIfDone(ctx, i); err != nil {
			return err
		}
		var l enroll.EndedLink
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode ended link: %w", err)
		}
		if !now.Before(l.At.Add(enroll.EndedLinkRetention)) {
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// EndedLink returns the record of the used or expired link whose
// activation was stored under hash, or ErrTokenUnknown.
func (s *Store) EndedLink(ctx context.Context, hash string) (enroll.EndedLink, error) {
	if err := enroll.CheckKey("activation token hash", hash); err != nil {
		return enroll.EndedLink{}, err
	}
	var l enroll.EndedLink
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketEndedLinks).Get([]byte(hash))
		if raw == nil {
			return enroll.ErrTokenUnknown
		}
		return json.Unmarshal(raw, &l)
	})
	if err != nil {
		return enroll.EndedLink{}, fmt.Errorf("enroll: ended link: %w", err)
	}
	return l, nil
}

// Activations lists every stored activation, ordered by username
// (case-insensitively).
func (s *Store) Activations(ctx context.Context) ([]enroll.Activation, error) {
	var out []enroll.Activation
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = out[:0]
		i := 0
		return tx.Bucket(bucketActivations).ForEach(func(_, v []byte) error {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var a enroll.Activation
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode stored activation: %w", err)
			}
			out = append(out, a)
			return nil
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
