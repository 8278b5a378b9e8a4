package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
)

const (
	tokensPrefix     = "api_tokens/"
	tokenHashPrefix  = "api_token_hashes/"
	tokenNamesPrefix = "api_token_names/"
)

// apiTokenRecord is a stored token: the token and its secret's hash.
type apiTokenRecord struct {
	enroll.APIToken
	Hash string `json:"hash"`
}

// PutAPIToken stores a new token: its record, hash and live-name keys are
// all created if absent in one transaction, so two tokens can never share
// a live name, an ID or a hash.
func (s *Store) PutAPIToken(ctx context.Context, t enroll.APIToken, hash string) error {
	t, err := enroll.CheckAPIToken(t, hash)
	if err != nil {
		return err
	}
	val, err := json.Marshal(apiTokenRecord{APIToken: t, Hash: hash})
	if err != nil {
		return fmt.Errorf("enroll: encode API token %s: %w", t.Name, err)
	}
	name := tokenNamesPrefix + strings.ToLower(t.Name)
	err = s.update(ctx, func(tx *tx) error {
		for _, k := range []string{name, tokensPrefix + t.ID, tokenHashPrefix + hash} {
			v, err := tx.get(k)
			switch {
			case err != nil:
				return err
			case v == nil:
			case k == name:
				return enroll.ErrAPITokenNameTaken
			case strings.HasPrefix(k, tokensPrefix):
				return enroll.Invalidf("API token ID %s already exists", t.ID)
			default:
				return enroll.Invalidf("API token hash already exists")
			}
		}
		tx.put(tokensPrefix+t.ID, val)
		tx.put(tokenHashPrefix+hash, []byte(t.ID))
		tx.put(name, []byte(t.ID))
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: put API token %s: %w", t.Name, err)
	}
	return nil
}

func (t *tx) apiToken(id string) (apiTokenRecord, error) {
	v, err := t.get(tokensPrefix + id)
	if err != nil {
		return apiTokenRecord{}, err
	}
	if v == nil {
		return apiTokenRecord{}, enroll.ErrAPITokenUnknown
	}
	return decode[apiTokenRecord]("stored API token", v)
}

// APITokenByHash returns the token whose secret hashes to hash.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (enroll.APIToken, string, error) {
	if err := enroll.CheckKey("API token hash", hash); err != nil {
		return enroll.APIToken{}, "", err
	}
	var rec apiTokenRecord
	err := s.view(ctx, func(t *tx) error {
		id, err := t.get(tokenHashPrefix + hash)
		if err != nil {
			return err
		}
		if id == nil {
			return enroll.ErrAPITokenUnknown
		}
		rec, err = t.apiToken(string(id))
		return err
	})
	if err != nil {
		return enroll.APIToken{}, "", fmt.Errorf("enroll: API token by hash: %w", err)
	}
	return rec.APIToken, rec.Hash, nil
}

// APITokens lists every token, oldest first.
func (s *Store) APITokens(ctx context.Context) ([]enroll.APIToken, error) {
	var list []enroll.APIToken
	err := s.view(ctx, func(t *tx) error {
		return t.scan(tokensPrefix, "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			rec, err := decode[apiTokenRecord](k, kv.Value)
			list = append(list, rec.APIToken)
			return err == nil, err
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

// TouchAPIToken moves the token's LastUsedAt forward to at: a CAS.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	if err := enroll.CheckKey("API token ID", id); err != nil {
		return err
	}
	if err := enroll.CheckNow(at); err != nil {
		return err
	}
	err := s.update(ctx, func(t *tx) error {
		return t.updateAPIToken(id, func(rec *apiTokenRecord) bool {
			if !at.After(rec.LastUsedAt) {
				return false
			}
			rec.LastUsedAt = at
			return true
		})
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
	nameKey := tokenNamesPrefix + strings.ToLower(name)
	err := s.update(ctx, func(t *tx) error {
		id, err := t.get(nameKey)
		if err != nil {
			return err
		}
		if id == nil {
			return enroll.ErrNotFound
		}
		err = t.updateAPIToken(string(id), func(rec *apiTokenRecord) bool {
			rec.RevokedAt = now
			out = rec.APIToken
			return true
		})
		if err != nil {
			return err
		}
		t.del(nameKey)
		return nil
	})
	if err != nil {
		return enroll.APIToken{}, fmt.Errorf("enroll: revoke API token %s: %w", name, err)
	}
	return out, nil
}

// updateAPIToken lets fn change token id, written back if fn says so.
func (t *tx) updateAPIToken(id string, fn func(*apiTokenRecord) bool) error {
	rec, err := t.apiToken(id)
	if err == enroll.ErrAPITokenUnknown {
		return enroll.ErrNotFound
	}
	if err != nil || !fn(&rec) {
		return err
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode API token: %w", err)
	}
	t.put(tokensPrefix+id, val)
	return nil
}
