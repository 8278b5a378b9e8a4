package enroll

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var _ TokenStore = (*BoltStore)(nil)

// apiTokenRecord is an API token as stored: the listed fields and the
// keyed hash of its secret.
type apiTokenRecord struct {
	APIToken
	Hash string `json:"hash"`
}

// PutAPIToken stores a new token and indexes it by hash and by name.
func (s *BoltStore) PutAPIToken(ctx context.Context, t APIToken, hash string) error {
	switch {
	case t.ID == "" || len(t.ID) > maxKeyLen:
		return invalidf("API token ID must be 1 to %d bytes", maxKeyLen)
	case t.CreatedAt.IsZero():
		return invalidf("API token %s has no creation time", t.Name)
	case t.Revoked():
		return invalidf("API token %s is already revoked", t.Name)
	}
	if err := CheckAPITokenName(t.Name); err != nil {
		return err
	}
	if err := checkKey("API token owner", t.Owner); err != nil {
		return err
	}
	scopes, err := checkScopes(t.Scopes)
	if err != nil {
		return err
	}
	t.Scopes = scopes
	if err := checkKey("API token hash", hash); err != nil {
		return err
	}
	val, err := json.Marshal(apiTokenRecord{APIToken: t, Hash: hash})
	if err != nil {
		return fmt.Errorf("enroll: encode API token %s: %w", t.Name, err)
	}
	id, h, name := []byte(t.ID), []byte(hash), []byte(strings.ToLower(t.Name))
	err = s.update(ctx, func(tx *bolt.Tx) error {
		recs, hashes, names := tx.Bucket(bucketAPITokens), tx.Bucket(bucketAPITokenHashes), tx.Bucket(bucketAPITokenNames)
		switch {
		case names.Get(name) != nil:
			return ErrAPITokenNameTaken
		case recs.Get(id) != nil:
			return invalidf("API token ID %s already exists", t.ID)
		case hashes.Get(h) != nil:
			return invalidf("API token hash already exists")
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
func (s *BoltStore) APITokenByHash(ctx context.Context, hash string) (APIToken, string, error) {
	if err := checkKey("API token hash", hash); err != nil {
		return APIToken{}, "", err
	}
	var rec apiTokenRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketAPITokenHashes).Get([]byte(hash))
		if id == nil {
			return ErrAPITokenUnknown
		}
		return getAPIToken(tx, id, &rec)
	})
	if err != nil {
		return APIToken{}, "", fmt.Errorf("enroll: API token by hash: %w", err)
	}
	return rec.APIToken, rec.Hash, nil
}

// getAPIToken decodes the record under id; a hash index pointing nowhere
// counts as an unknown token.
func getAPIToken(tx *bolt.Tx, id []byte, rec *apiTokenRecord) error {
	raw := tx.Bucket(bucketAPITokens).Get(id)
	if raw == nil {
		return ErrAPITokenUnknown
	}
	if err := json.Unmarshal(raw, rec); err != nil {
		return fmt.Errorf("decode stored API token: %w", err)
	}
	return nil
}

// APITokens lists every token, oldest first (ties by ID).
func (s *BoltStore) APITokens(ctx context.Context) ([]APIToken, error) {
	var list []APIToken
	err := s.view(ctx, func(tx *bolt.Tx) error {
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
	slices.SortStableFunc(list, func(a, b APIToken) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

// TouchAPIToken records a use of token id at at.
func (s *BoltStore) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	if err := checkKey("API token ID", id); err != nil {
		return err
	}
	if err := checkNow(at); err != nil {
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
func (s *BoltStore) RevokeAPIToken(ctx context.Context, name string, now time.Time) (APIToken, error) {
	if err := checkKey("API token name", name); err != nil {
		return APIToken{}, err
	}
	if err := checkNow(now); err != nil {
		return APIToken{}, err
	}
	var out APIToken
	lower := []byte(strings.ToLower(name))
	err := s.update(ctx, func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketAPITokenNames)
		id := names.Get(lower)
		if id == nil {
			return ErrNotFound
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
		return APIToken{}, fmt.Errorf("enroll: revoke API token %s: %w", name, err)
	}
	return out, nil
}

// updateAPIToken changes the record under id in one transaction; fn says
// whether it changed anything. An unknown id is ErrNotFound.
func (s *BoltStore) updateAPIToken(ctx context.Context, id []byte, fn func(*apiTokenRecord) (bool, error)) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return updateAPITokenTx(tx, id, fn) })
}

func updateAPITokenTx(tx *bolt.Tx, id []byte, fn func(*apiTokenRecord) (bool, error)) error {
	var rec apiTokenRecord
	if err := getAPIToken(tx, id, &rec); err != nil {
		if err == ErrAPITokenUnknown {
			return ErrNotFound
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
