package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ended links are stored under the token hash of their activation
// (ended_links); a used link is written in the transaction that completes
// the enrollment, an expired one in the purge that deletes its activation.

func putEndedLink(tx *bolt.Tx, l EndedLink) error {
	val, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode ended link: %w", err)
	}
	return tx.Bucket(bucketEndedLinks).Put([]byte(l.TokenHash), val)
}

// purgeEndedLinks forgets the ended links older than EndedLinkRetention.
func purgeEndedLinks(ctx context.Context, tx *bolt.Tx, now time.Time) error {
	b := tx.Bucket(bucketEndedLinks)
	var old [][]byte
	i := 0
	err := b.ForEach(func(k, v []byte) error {
		i++
		if err := errIfDone(ctx, i); err != nil {
			return err
		}
		var l EndedLink
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode ended link: %w", err)
		}
		if !now.Before(l.At.Add(EndedLinkRetention)) {
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
func (s *BoltStore) EndedLink(ctx context.Context, hash string) (EndedLink, error) {
	if err := checkKey("activation token hash", hash); err != nil {
		return EndedLink{}, err
	}
	var l EndedLink
	err := s.view(ctx, func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketEndedLinks).Get([]byte(hash))
		if raw == nil {
			return ErrTokenUnknown
		}
		return json.Unmarshal(raw, &l)
	})
	if err != nil {
		return EndedLink{}, fmt.Errorf("enroll: ended link: %w", err)
	}
	return l, nil
}

// Activations lists every stored activation, ordered by username
// (case-insensitively).
func (s *BoltStore) Activations(ctx context.Context) ([]Activation, error) {
	var out []Activation
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		i := 0
		return tx.Bucket(bucketActivations).ForEach(func(_, v []byte) error {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var a Activation
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
	slices.SortFunc(out, func(a, b Activation) int {
		return strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username))
	})
	return out, nil
}
