package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func tokenStore(t *testing.T, open Opener) (enroll.Store, enroll.TokenStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

// apiToken is a fixture: the token and the hash of its (imaginary) secret.
func apiToken(n int, name string) (enroll.APIToken, string) {
	return enroll.APIToken{ID: fmt.Sprintf("id%03d", n), Name: name, Owner: "helpdesk", Scopes: []string{enroll.ScopeRead, enroll.ScopeWrite},
		CreatedAt: t0.Add(time.Duration(n) * time.Minute), CreatedBy: "cli:root"}, fmt.Sprintf("%064x", 1000+n)
}

func putToken(t *testing.T, ts enroll.TokenStore, tok enroll.APIToken, hash string) {
	t.Helper()
	if err := ts.PutAPIToken(t.Context(), tok, hash); err != nil {
		t.Fatalf("PutAPIToken(%s): %v", tok.Name, err)
	}
}

func wantToken(t *testing.T, got, want enroll.APIToken) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Owner != want.Owner || !slices.Equal(got.Scopes, want.Scopes) ||
		got.CreatedBy != want.CreatedBy || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.LastUsedAt.Equal(want.LastUsedAt) || !got.RevokedAt.Equal(want.RevokedAt) {
		t.Errorf("token = %+v\nwant    %+v", got, want)
	}
}

func tokenByHash(t *testing.T, ts enroll.TokenStore, hash string) enroll.APIToken {
	t.Helper()
	tok, stored, err := ts.APITokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("APITokenByHash: %v", err)
	}
	if stored != hash {
		t.Errorf("APITokenByHash returned the stored hash %q, want %q", stored, hash)
	}
	return tok
}

func listTokens(t *testing.T, ts enroll.TokenStore) []enroll.APIToken {
	t.Helper()
	list, err := ts.APITokens(t.Context())
	if err != nil {
		t.Fatalf("APITokens: %v", err)
	}
	return list
}

func testTokenPutGet(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	b, hb := apiToken(2, "backup-job")
	a, ha := apiToken(1, "Grafana.prod_1")
	b.Owner, b.Scopes = "ops", []string{enroll.ScopeRead} // each token keeps its own owner and scopes
	putToken(t, ts, b, hb)
	putToken(t, ts, a, ha)
	wantToken(t, tokenByHash(t, ts, ha), a)
	wantToken(t, tokenByHash(t, ts, hb), b)
	if _, _, err := ts.APITokenByHash(t.Context(), fmt.Sprintf("%064x", 7)); !errors.Is(err, enroll.ErrAPITokenUnknown) {
		t.Errorf("APITokenByHash(unknown) = %v, want ErrAPITokenUnknown", err)
	}
	list := listTokens(t, ts)
	if len(list) != 2 {
		t.Fatalf("APITokens = %+v, want 2", list)
	}
	wantToken(t, list[0], a) // oldest first
	wantToken(t, list[1], b)
}

func testTokenNameUnique(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	a, ha := apiToken(1, "grafana")
	putToken(t, ts, a, ha)
	dup, hdup := apiToken(2, "GRAFANA")
	if err := ts.PutAPIToken(t.Context(), dup, hdup); !errors.Is(err, enroll.ErrAPITokenNameTaken) {
		t.Fatalf("PutAPIToken with a live name in another case = %v, want ErrAPITokenNameTaken", err)
	}
	if _, _, err := ts.APITokenByHash(t.Context(), hdup); !errors.Is(err, enroll.ErrAPITokenUnknown) {
		t.Errorf("the refused token was stored: %v", err)
	}
	// Reusing an ID or a hash is refused too.
	sameID, _ := apiToken(1, "other")
	if err := ts.PutAPIToken(t.Context(), sameID, fmt.Sprintf("%064x", 9)); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("PutAPIToken with a stored ID = %v, want ErrInvalid", err)
	}
	other, _ := apiToken(3, "other")
	if err := ts.PutAPIToken(t.Context(), other, ha); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("PutAPIToken with a stored hash = %v, want ErrInvalid", err)
	}
	if n := len(listTokens(t, ts)); n != 1 {
		t.Errorf("%d tokens stored after refused puts, want 1", n)
	}
}

func testTokenTouch(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	ctx := t.Context()
	a, ha := apiToken(1, "grafana")
	putToken(t, ts, a, ha)
	used := t0.Add(time.Hour)
	if err := ts.TouchAPIToken(ctx, a.ID, used); err != nil {
		t.Fatalf("TouchAPIToken: %v", err)
	}
	a.LastUsedAt = used
	wantToken(t, tokenByHash(t, ts, ha), a)
	// An older use (a slow request finishing late) does not move it back.
	if err := ts.TouchAPIToken(ctx, a.ID, used.Add(-time.Minute)); err != nil {
		t.Fatalf("TouchAPIToken: %v", err)
	}
	wantToken(t, tokenByHash(t, ts, ha), a)
	if err := ts.TouchAPIToken(ctx, "nope", used); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("TouchAPIToken(unknown id) = %v, want ErrNotFound", err)
	}
}

func testTokenRevoke(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	ctx := t.Context()
	a, ha := apiToken(1, "grafana")
	putToken(t, ts, a, ha)
	at := t0.Add(2 * time.Hour)
	got, err := ts.RevokeAPIToken(ctx, "Grafana", at)
	if err != nil {
		t.Fatalf("RevokeAPIToken: %v", err)
	}
	a.RevokedAt = at
	wantToken(t, got, a)
	wantToken(t, tokenByHash(t, ts, ha), a) // still found, as revoked
	if _, err := ts.RevokeAPIToken(ctx, "grafana", at); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("revoking again = %v, want ErrNotFound (no live token has the name)", err)
	}
	if _, err := ts.RevokeAPIToken(ctx, "never", at); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("RevokeAPIToken(unknown) = %v, want ErrNotFound", err)
	}
	// The name is free again; both are listed.
	b, hb := apiToken(2, "grafana")
	putToken(t, ts, b, hb)
	list := listTokens(t, ts)
	if len(list) != 2 || list[0].ID != a.ID || !list[0].Revoked() || list[1].ID != b.ID || list[1].Revoked() {
		t.Errorf("APITokens = %+v, want the revoked %s then the live %s", list, a.ID, b.ID)
	}
	if got, err := ts.RevokeAPIToken(ctx, "grafana", at.Add(time.Hour)); err != nil || got.ID != b.ID {
		t.Errorf("RevokeAPIToken of the new token = %+v, %v; want %s revoked", got, err, b.ID)
	}
}

func testTokenConcurrentNames(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			tok, hash := apiToken(i, "same")
			err := ts.PutAPIToken(t.Context(), tok, hash)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, enroll.ErrAPITokenNameTaken):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 1 {
		t.Errorf("%d of %d concurrent tokens named alike were stored, want 1", n, concurrency)
	}
}

func tokenCalls(ts enroll.TokenStore) map[string]func(context.Context) error {
	tok, hash := apiToken(1, "grafana")
	return map[string]func(context.Context) error{
		"PutAPIToken": func(ctx context.Context) error { return ts.PutAPIToken(ctx, tok, hash) },
		"APITokenByHash": func(ctx context.Context) error {
			_, _, err := ts.APITokenByHash(ctx, hash)
			return err
		},
		"APITokens": func(ctx context.Context) error {
			_, err := ts.APITokens(ctx)
			return err
		},
		"TouchAPIToken": func(ctx context.Context) error { return ts.TouchAPIToken(ctx, tok.ID, t0) },
		"RevokeAPIToken": func(ctx context.Context) error {
			_, err := ts.RevokeAPIToken(ctx, tok.Name, t0)
			return err
		},
	}
}

func wantTokensUntouched(t *testing.T, ts enroll.TokenStore) {
	t.Helper()
	if list := listTokens(t, ts); len(list) != 0 {
		t.Errorf("APITokens = %+v after failing calls, want none", list)
	}
}

func testTokenInvalidInput(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	ctx := t.Context()
	put := func(edit func(*enroll.APIToken), hash string) func() error {
		return func() error {
			tok, _ := apiToken(1, "grafana")
			edit(&tok)
			return ts.PutAPIToken(ctx, tok, hash)
		}
	}
	good := fmt.Sprintf("%064x", 1)
	bad := map[string]func() error{
		"put empty ID":        put(func(tok *enroll.APIToken) { tok.ID = "" }, good),
		"put empty name":      put(func(tok *enroll.APIToken) { tok.Name = "" }, good),
		"put name with space": put(func(tok *enroll.APIToken) { tok.Name = "my token" }, good),
		"put name too long":   put(func(tok *enroll.APIToken) { tok.Name = strings.Repeat("a", 65) }, good),
		"put zero creation":   put(func(tok *enroll.APIToken) { tok.CreatedAt = time.Time{} }, good),
		"put revoked":         put(func(tok *enroll.APIToken) { tok.RevokedAt = t0 }, good),
		"put empty hash":      put(func(*enroll.APIToken) {}, ""),
		"put no owner":        put(func(tok *enroll.APIToken) { tok.Owner = "" }, good),
		"put no scope":        put(func(tok *enroll.APIToken) { tok.Scopes = nil }, good),
		"put unknown scope":   put(func(tok *enroll.APIToken) { tok.Scopes = []string{enroll.ScopeRead, "admin"} }, good),
		"by empty hash": func() error {
			_, _, err := ts.APITokenByHash(ctx, "")
			return err
		},
		"touch empty ID":  func() error { return ts.TouchAPIToken(ctx, "", t0) },
		"touch zero time": func() error { return ts.TouchAPIToken(ctx, "id001", time.Time{}) },
		"revoke empty name": func() error {
			_, err := ts.RevokeAPIToken(ctx, "", t0)
			return err
		},
		"revoke zero time": func() error {
			_, err := ts.RevokeAPIToken(ctx, "grafana", time.Time{})
			return err
		},
	}
	wantInvalid(t, bad)
	wantTokensUntouched(t, ts)
}

func testTokenCancelled(t *testing.T, open Opener) {
	_, ts, _ := tokenStore(t, open)
	wantEachFails(t, cancelled(t), tokenCalls(ts), context.Canceled, "with a cancelled context")
	wantTokensUntouched(t, ts)
}

func testTokenClosed(t *testing.T, open Opener) {
	s, ts, _ := tokenStore(t, open)
	wantClosedFails(t, s, tokenCalls(ts))
}

func testTokenReopen(t *testing.T, open Opener) {
	s, ts, dir := tokenStore(t, open)
	a, ha := apiToken(1, "grafana")
	b, hb := apiToken(2, "backup")
	putToken(t, ts, a, ha)
	putToken(t, ts, b, hb)
	if _, err := ts.RevokeAPIToken(t.Context(), "backup", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ts = openAt(t, open, dir)
	wantToken(t, tokenByHash(t, ts, ha), a)
	b.RevokedAt = t0.Add(time.Hour)
	wantToken(t, tokenByHash(t, ts, hb), b)
	dup, hdup := apiToken(3, "grafana")
	if err := ts.PutAPIToken(t.Context(), dup, hdup); !errors.Is(err, enroll.ErrAPITokenNameTaken) {
		t.Errorf("after reopen, the live name is free: %v", err)
	}
}
