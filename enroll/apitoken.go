package enroll

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// APIToken is a bearer token of the JSON admin API, as listed: the secret
// is shown once at creation and stored only as its keyed hash
// (Sealer.Hash("api-token", secret)), which no listing returns. A token
// belongs to an admin (Owner, a directory username) and works only while
// that admin is an enabled member of directory.admin_group; it grants only
// its Scopes. A token stored before tokens had owners has neither and is
// refused (ErrAPITokenNoOwner): it must be created again.
type APIToken struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Owner      string    `json:"owner,omitempty"`
	Scopes     []string  `json:"scopes,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether the token was revoked.
func (t APIToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// Has reports whether the token carries scope.
func (t APIToken) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

// The scopes of an API token. Each API route needs one: reading needs
// ScopeRead, every change ScopeWrite (neither implies the other).
// ScopeMSP is reserved for the MSP mode's tenant management: a token may
// carry it, but no route grants anything for it yet.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeMSP   = "msp"
)

// apiScopes are the known scopes, in the order they are listed.
var apiScopes = []string{ScopeRead, ScopeWrite, ScopeMSP}

// ParseScopes reads a comma-separated list of scopes ("read,write") into
// the canonical list (known order, no repeats). An empty list or an
// unknown scope is an ErrInvalid error.
func ParseScopes(list string) ([]string, error) {
	var in []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			in = append(in, strings.ToLower(f))
		}
	}
	return checkScopes(in)
}

// checkScopes validates scopes and returns them in canonical order.
func checkScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, Invalidf("a token needs at least one scope (%s)", strings.Join(apiScopes, ", "))
	}
	for _, sc := range scopes {
		if !slices.Contains(apiScopes, sc) {
			return nil, Invalidf("unknown scope %q: the scopes are %s", sc, strings.Join(apiScopes, ", "))
		}
	}
	var out []string
	for _, sc := range apiScopes {
		if slices.Contains(scopes, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// API token errors, tested with errors.Is.
var (
	// ErrAPITokenUnknown: the bearer secret is malformed or matches no token.
	ErrAPITokenUnknown = errors.New("enroll: API token unknown")
	// ErrAPITokenRevoked: the secret belongs to a revoked token.
	ErrAPITokenRevoked = errors.New("enroll: API token revoked")
	// ErrAPITokenNameTaken: a live (not revoked) token already has the name.
	ErrAPITokenNameTaken = errors.New("enroll: a live API token already has this name")
	// ErrAPITokenNoOwner: the token was stored before tokens had an owner
	// and scopes; it no longer works and must be created again.
	ErrAPITokenNoOwner = errors.New("enroll: API token has no owner (made before tokens had owners and scopes): create a new one")
	// ErrAPITokenOwner: the token's owner is not (or no longer) an enabled
	// member of directory.admin_group; the error says why.
	ErrAPITokenOwner = errors.New("enroll: API token owner is not an enabled admin")
	// ErrAPITokenScope: the token lacks the scope the call needs.
	ErrAPITokenScope = errors.New("enroll: API token lacks the scope")
)

// TokenOwnerDirectory answers whether a token's owner may still use it
// (directory.Client): the owner must exist, be enabled and be a member of
// directory.admin_group, nested groups included.
type TokenOwnerDirectory interface {
	FindUser(ctx context.Context, username string) (directory.User, error)
	IsAdmin(ctx context.Context, username string) (bool, error)
}

// TokenSpec is what CreateToken makes: a name, the admin who owns the
// token and its scopes (see ParseScopes).
type TokenSpec struct {
	Name   string
	Owner  string
	Scopes []string
}

// TokenStore keeps API tokens. Names match case-insensitively and are unique among live
// tokens; a revoked token keeps its name but frees it for a new token.
type TokenStore interface {
	// PutAPIToken stores a new token whose secret hashes to hash.
	// ErrAPITokenNameTaken when a live token has t.Name; ErrInvalid for an
	// empty ID, name, owner or hash, no or an unknown scope, a zero
	// CreatedAt, a revoked t, or an ID or hash already stored. Tokens stored
	// before owners existed are read back with an empty Owner and no Scopes.
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
		return Invalidf("token name must be 1 to %d characters", maxAPITokenName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return Invalidf("token name %q: only letters, digits, '.', '_' and '-' are allowed", name)
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

// CreateToken makes a new API token and returns its secret, "rr_" and 32
// random bytes in base64url: it is shown to the caller once and stored
// only as its keyed hash. Names are 1 to 64 letters, digits, '.', '_' or
// '-', unique among live tokens (ErrAPITokenNameTaken). The owner must be
// an enabled member of directory.admin_group now (ErrAPITokenOwner, or the
// directory's error when it cannot tell); the scopes must be known
// (ErrInvalid). Audited as "api_token_create" (never with the secret).
func (s *Service) CreateToken(ctx context.Context, spec TokenSpec, actor string) (string, APIToken, error) {
	secret, t, err := s.createToken(ctx, spec, actor)
	s.audit(ctx, tokenEvent(actor, "api_token_create", spec.Name, t, err))
	return secret, t, err
}

func (s *Service) createToken(ctx context.Context, spec TokenSpec, actor string) (string, APIToken, error) {
	if err := CheckAPITokenName(spec.Name); err != nil {
		return "", APIToken{}, err
	}
	owner := strings.TrimSpace(spec.Owner)
	if err := CheckKey("token owner", owner); err != nil {
		return "", APIToken{}, err
	}
	scopes, err := checkScopes(spec.Scopes)
	if err != nil {
		return "", APIToken{}, err
	}
	u, err := s.tokenOwner(ctx, owner)
	if err != nil {
		return "", APIToken{}, err
	}
	raw := make([]byte, apiTokenBytes)
	rand.Read(raw) // never fails since Go 1.24
	secret := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	id := make([]byte, 8)
	rand.Read(id)
	t := APIToken{ID: hex.EncodeToString(id), Name: spec.Name, Owner: u.Username, Scopes: scopes, CreatedAt: s.deps.Now(), CreatedBy: actor}
	if err := s.deps.Store.PutAPIToken(ctx, t, s.deps.Sealer.Hash("api-token", secret)); err != nil {
		return "", APIToken{}, err
	}
	s.deps.Log.Info("enroll: API token created", "name", t.Name, "id", t.ID, "owner", t.Owner, "scopes", scopes, "actor", actor)
	return secret, t, nil
}

// tokenOwner returns the directory user owner when it is an enabled member
// of the admin group: ErrAPITokenOwner (saying why) when it is not, the
// directory's error when it cannot tell.
func (s *Service) tokenOwner(ctx context.Context, owner string) (directory.User, error) {
	dir := s.deps.TokenOwners
	if dir == nil {
		dir, _ = s.deps.Directory.(TokenOwnerDirectory)
	}
	if dir == nil {
		return directory.User{}, errors.New("enroll: no directory to check API token owners against")
	}
	u, err := dir.FindUser(ctx, owner)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		// The default user filters leave disabled accounts out: they land here.
		return u, fmt.Errorf("%w: %s is not in the directory (removed, disabled, or outside directory.user_filter)", ErrAPITokenOwner, owner)
	case err != nil:
		return u, fmt.Errorf("enroll: check API token owner %s: %w", owner, err)
	case u.Disabled:
		return u, fmt.Errorf("%w: %s is disabled in the directory", ErrAPITokenOwner, u.Username)
	}
	admin, err := dir.IsAdmin(ctx, u.Username)
	switch {
	case errors.Is(err, directory.ErrNotFound): // the user or the admin group went away meanwhile
		return u, fmt.Errorf("%w: %s: %v", ErrAPITokenOwner, u.Username, err)
	case err != nil:
		return u, fmt.Errorf("enroll: check API token owner %s: %w", owner, err)
	case !admin:
		return u, fmt.Errorf("%w: %s is not a member of directory.admin_group", ErrAPITokenOwner, u.Username)
	}
	return u, nil
}

// VerifyToken returns the live token whose secret is secret, when it
// carries scope: ErrAPITokenUnknown for a malformed or unknown secret,
// ErrAPITokenRevoked for a revoked token's, ErrAPITokenNoOwner for a token
// stored before tokens had owners, ErrAPITokenScope when it lacks scope,
// ErrAPITokenOwner when its owner is gone, disabled or out of
// directory.admin_group (audited as "api_token_use" "denied"), and the
// directory's error when the owner cannot be checked (with the last four,
// the token is returned too, to name it in the answer). The owner is checked
// against the directory on every call, nothing cached, so a token stops
// at the first request after its owner leaves. The secret is looked up by
// its keyed hash and the stored hash compared in constant time. LastUsedAt
// is written at most once a minute per token, so a busy API client does
// not write on every call.
func (s *Service) VerifyToken(ctx context.Context, secret, scope string) (APIToken, error) {
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
	case t.Owner == "":
		return t, ErrAPITokenNoOwner
	case !t.Has(scope):
		return t, fmt.Errorf("%w %s (it has %s)", ErrAPITokenScope, scope, strings.Join(t.Scopes, ", "))
	}
	if _, err := s.tokenOwner(ctx, t.Owner); err != nil {
		if errors.Is(err, ErrAPITokenOwner) {
			s.audit(ctx, Event{Actor: "api:" + t.Name, Action: "api_token_use", Username: t.Owner, Outcome: "denied",
				Detail: "token " + t.Name + " (id " + t.ID + "): " + err.Error()})
		}
		return t, err
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
