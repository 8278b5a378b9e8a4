package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// apiTokenRecord is an API token as stored: the listed fields and the
// keyed hash of its secret.
type apiTokenRecord struct {
	enroll.APIToken
	Hash string `json:"hash"`
}

// PutAPIToken stores a new token and indexes it by hash and by name.
func (s *Store) PutAPIToken(ctx context.Context, t enroll.APIToken, hash string) error {
	t, err := enroll.CheckAPIToken(t, hash)
	if err != nil {
		return err
	}
	val, err := json.Marshal(apiTokenRecord{APIToken: t, Hash: hash})
	if err != nil {
		return fmt.Errorf("enroll: encode API token %s: %w", t.Name, err)
	}
	id, h, name := []byte(t.ID), []byte(hash), []byte(strings.ToLower(t.Name))
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		recs, hashes, names := tx.Bucket(bucketAPITokens), tx.Bucket(bucketAPITokenHashes), tx.Bucket(bucketAPITokenNames)
		switch {
		case names.Get(name) != nil:
			return enroll.ErrAPITokenNameTaken
		case recs.Get(id) != nil:
			return enroll.Invalidf("API token ID %s already exists", t.ID)
		case hashes.Get(h) != nil:
			return enroll.Invalidf("API token hash already exists")
		}
		if err := recs.Put(id, val); err != nil {
			return err
		}
		if err := hashes.Put(h, id); err != nil {
			return err
		}
		return names.Put(name, id)
	})
	if err != nil {
		return fmt.Errorf("enroll: put API token %s: %w", t.Name, err)
	}
	return nil
}

// APITokenByHash returns the token whose secret hashes to hash.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (enroll.APIToken, string, error) {
	if err := enroll.CheckKey("API token hash", hash); err != nil {
		return enroll.APIToken{}, "", err
	}
	var rec apiTokenRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketAPITokenHashes).Get([]byte(hash))
		if id == nil {
			return enroll.ErrAPITokenUnknown
		}
		return getAPIToken(tx, id, &rec)
	})
	if err != nil {
		return enroll.APIToken{}, "", fmt.Errorf("enroll: API token by hash: %w", err)
	}
	return rec.APIToken, rec.Hash, nil
}

// getAPIToken decodes the record under id; a hash index pointing nowhere
// counts as an unknown token.
func getAPIToken(tx *bbolt.Tx, id []byte, rec *apiTokenRecord) error {
	raw := tx.Bucket(bucketAPITokens).Get(id)
	if raw == nil {
		return enroll.ErrAPITokenUnknown
	}
	if err := json.Unmarshal(raw, rec); err != nil {
		return fmt.Errorf("decode stored API token: %w", err)
	}
	return nil
}

// APITokens lists every token, oldest first (ties by ID).
func (s *Store) APITokens(ctx context.Context) ([]enroll.APIToken, error) {
	var list []enroll.APIToken
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAPITokens).ForEach(func(k, v []byte) error {
			var rec apiTokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode stored API token %q: %w", k, err)
			}
			list = append(list, rec.APIToken)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list API tokens: %w", err)
	}
	slices.SortStableFunc(list, func(a, b enroll.APIToken) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

// TouchAPIToken records a use of token id at at.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	if err := enroll.CheckKey("API token ID", id); err != nil {
		return err
	}
	if err := enroll.CheckNow(at); err != nil {
		return err
	}
	err := s.updateAPIToken(ctx, []byte(id), func(rec *apiTokenRecord) (bool, error) {
		if !at.After(rec.LastUsedAt) {
			return false, nil
		}
		rec.LastUsedAt = at
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("enroll: record API token use: %w", err)
	}
	return nil
}

// RevokeAPIToken revokes the live token named name and frees the name.
func (s *Store) RevokeAPIToken(ctx context.Context, name string, now time.Time) (enroll.APIToken, error) {
	if err := enroll.CheckKey("API token name", name); err != nil {
		return enroll.APIToken{}, err
	}
	if err := enroll.CheckNow(now); err != nil {
		return enroll.APIToken{}, err
	}
	var out enroll.APIToken
	lower := []byte(strings.ToLower(name))
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		names := tx.Bucket(bucketAPITokenNames)
		id := names.Get(lower)
		if id == nil {
			return enroll.ErrNotFound
		}
		id = slices.Clone(id)
		err := updateAPITokenTx(tx, id, func(rec *apiTokenRecord) (bool, error) {
			rec.RevokedAt = now
			out = rec.APIToken
			return true, nil
		})
		if err != nil {
			return err
		}
		return names.Delete(lower)
	})
	if err != nil {
		return enroll.APIToken{}, fmt.Errorf("enroll: revoke API token %s: %w", name, err)
	}
	return out, nil
}

// updateAPIToken changes the record under id in one transaction; fn says
// whether it changed anything. An unknown id is ErrNotFound.
func (s *Store) updateAPIToken(ctx context.Context, id []byte, fn func(*apiTokenRecord) (bool, error)) error {
	return s.update(ctx, func(tx *bbolt.Tx) error { return updateAPITokenTx(tx, id, fn) })
}

func updateAPITokenTx(tx *bbolt.Tx, id []byte, fn func(*apiTokenRecord) (bool, error)) error {
	var rec apiTokenRecord
	if err := getAPIToken(tx, id, &rec); err != nil {
		if err == enroll.ErrAPITokenUnknown {
			return enroll.ErrNotFound
		}
		return err
	}
	changed, err := fn(&rec)
	if err != nil || !changed {
		return err
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode API token: %w", err)
	}
	return tx.Bucket(bucketAPITokens).Put(id, val)
}
