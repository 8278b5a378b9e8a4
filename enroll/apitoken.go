package enroll

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIToken is a bearer token of the JSON admin API, as listed: the secret
// is shown once at creation and stored only as its keyed hash
// (Sealer.Hash("api-token", secret)), which no listing returns.
type APIToken struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether the token was revoked.
func (t APIToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// API token errors, tested with errors.Is.
var (
	// ErrAPITokenUnknown: the bearer secret is malformed or matches no token.
	ErrAPITokenUnknown = errors.New("enroll: API token unknown")
	// ErrAPITokenRevoked: the secret belongs to a revoked token.
	ErrAPITokenRevoked = errors.New("enroll: API token revoked")
	// ErrAPITokenNameTaken: a live (not revoked) token already has the name.
	ErrAPITokenNameTaken = errors.New("enroll: a live API token already has this name")
)

// TokenStore keeps API tokens. Every Store must also be one; storetest
// checks it. Names match case-insensitively and are unique among live
// tokens; a revoked token keeps its name but frees it for a new token.
type TokenStore interface {
	// PutAPIToken stores a new token whose secret hashes to hash.
	// ErrAPITokenNameTaken when a live token has t.Name; ErrInvalid for an
	// empty ID, name or hash, a zero CreatedAt, a revoked t, or an ID or
	// hash already stored.
	PutAPIToken(ctx context.Context, t APIToken, hash string) error
	// APITokenByHash returns the token whose secret hashes to hash, with
	// the hash as stored (for a constant-time comparison), or
	// ErrAPITokenUnknown. Revoked tokens are returned too.
	APITokenByHash(ctx context.Context, hash string) (APIToken, string, error)
	// APITokens lists every token, revoked ones included, oldest first.
	APITokens(ctx context.Context) ([]APIToken, error)
	// TouchAPIToken sets the token's LastUsedAt to at, unless it already
	// holds a later time. ErrNotFound for an unknown ID.
	TouchAPIToken(ctx context.Context, id string, at time.Time) error
	// RevokeAPIToken revokes the live token named name at now and returns
	// it; ErrNotFound when no live token has that name.
	RevokeAPIToken(ctx context.Context, name string, now time.Time) (APIToken, error)
}

// apiTokenPrefix starts every secret, so that a leaked one is recognisable
// (secret scanners, logs) and a mistyped header fails early.
const apiTokenPrefix = "rr_"

// apiTokenBytes is the randomness of a secret.
const apiTokenBytes = 32

// apiTokenUseEvery bounds how often a token's LastUsedAt is written.
const apiTokenUseEvery = time.Minute

// maxAPITokenName bounds a token name.
const maxAPITokenName = 64

// CheckAPITokenName returns an ErrInvalid error unless name is 1 to 64
// letters, digits, dots, underscores or hyphens.
func CheckAPITokenName(name string) error {
	if name == "" || len(name) > maxAPITokenName {
		return invalidf("token name must be 1 to %d characters", maxAPITokenName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return invalidf("token name %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

// wellFormedAPIToken reports whether secret has the shape CreateToken gives.
func wellFormedAPIToken(secret string) bool {
	rest, ok := strings.CutPrefix(secret, apiTokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(apiTokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// CreateToken makes a new API token named name and returns its secret,
// "rr_" and 32 random bytes in base64url: it is shown to the caller once
// and stored only as its keyed hash. Names are 1 to 64 letters, digits, '.',
// '_' or '-', unique among live tokens (ErrAPITokenNameTaken). Audited as
// "api_token_create" (never with the secret).
func (s *Service) CreateToken(ctx context.Context, name, actor string) (string, APIToken, error) {
	secret, t, err := s.createToken(ctx, name, actor)
	s.audit(ctx, tokenEvent(actor, "api_token_create", name, t, err))
	return secret, t, err
}

func (s *Service) createToken(ctx context.Context, name, actor string) (string, APIToken, error) {
	if err := CheckAPITokenName(name); err != nil {
		return "", APIToken{}, err
	}
	raw := make([]byte, apiTokenBytes)
	rand.Read(raw) // never fails since Go 1.24
	secret := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	id := make([]byte, 8)
	rand.Read(id)
	t := APIToken{ID: hex.EncodeToString(id), Name: name, CreatedAt: s.deps.Now(), CreatedBy: actor}
	if err := s.deps.Store.PutAPIToken(ctx, t, s.deps.Sealer.Hash("api-token", secret)); err != nil {
		return "", APIToken{}, err
	}
	s.deps.Log.Info("enroll: API token created", "name", name, "id", t.ID, "actor", actor)
	return secret, t, nil
}

// VerifyToken returns the live token whose secret is secret:
// ErrAPITokenUnknown for a malformed or unknown secret, ErrAPITokenRevoked
// for a revoked token's. The secret is looked up by its keyed hash and the
// stored hash compared in constant time. LastUsedAt is written at most once
// a minute per token, so a busy API client does not write on every call.
func (s *Service) VerifyToken(ctx context.Context, secret string) (APIToken, error) {
	if !wellFormedAPIToken(secret) {
		return APIToken{}, ErrAPITokenUnknown
	}
	hash := s.deps.Sealer.Hash("api-token", secret)
	t, stored, err := s.deps.Store.APITokenByHash(ctx, hash)
	switch {
	case errors.Is(err, ErrAPITokenUnknown):
		return APIToken{}, ErrAPITokenUnknown
	case err != nil:
		return APIToken{}, fmt.Errorf("enroll: verify API token: %w", err)
	case !Equal(stored, hash):
		return APIToken{}, ErrAPITokenUnknown
	case t.Revoked():
		return APIToken{}, ErrAPITokenRevoked
	}
	if now := s.deps.Now(); now.Sub(t.LastUsedAt) >= apiTokenUseEvery {
		if err := s.deps.Store.TouchAPIToken(ctx, t.ID, now); err != nil {
			// The caller is who it says: a lost "last used" must not refuse it.
			s.deps.Log.Warn("enroll: API token last use not recorded", "name", t.Name, "err", err)
		} else {
			t.LastUsedAt = now
		}
	}
	return t, nil
}

// ListTokens lists every API token, revoked ones included, oldest first.
// No secret or hash is returned.
func (s *Service) ListTokens(ctx context.Context) ([]APIToken, error) {
	return s.deps.Store.APITokens(ctx)
}

// RevokeToken revokes the live token named name (ErrNotFound when none):
// its secret stops working at once and its name may be used again. Audited
// as "api_token_revoke".
func (s *Service) RevokeToken(ctx context.Context, name, actor string) (APIToken, error) {
	t, err := s.revokeToken(ctx, name)
	s.audit(ctx, tokenEvent(actor, "api_token_revoke", name, t, err))
	return t, err
}

// tokenEvent is the audit event of a token operation on name that gave t
// or err; it names the token, never its secret.
func tokenEvent(actor, action, name string, t APIToken, err error) Event {
	ev := Event{Actor: actor, Action: action, Outcome: outcomeOf(err), Detail: "token " + name}
	if err == nil {
		ev.Detail = "token " + t.Name + " (id " + t.ID + ")"
	} else {
		ev.Detail += ": " + err.Error()
	}
	return ev
}

func (s *Service) revokeToken(ctx context.Context, name string) (APIToken, error) {
	if err := CheckAPITokenName(name); err != nil {
		return APIToken{}, err
	}
	t, err := s.deps.Store.RevokeAPIToken(ctx, name, s.deps.Now())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return APIToken{}, fmt.Errorf("%w: no live API token is named %q", ErrNotFound, name)
		}
		return APIToken{}, err
	}
	s.deps.Log.Info("enroll: API token revoked", "name", t.Name, "id", t.ID)
	return t, nil
}
