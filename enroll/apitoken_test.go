package enroll_test

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// rw is the spec of a read-write token named name owned by tokenOwner.
func rw(name string) enroll.TokenSpec {
	return enroll.TokenSpec{Name: name, Owner: tokenOwner, Scopes: []string{enroll.ScopeWrite, enroll.ScopeRead}}
}

func TestCreateAndVerifyToken(t *testing.T) {
	h := newHarness(t)
	secret, tok, err := h.svc.CreateToken(h.adminCtx(), rw("grafana.prod-1"), "cli:root")
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	raw, ok := strings.CutPrefix(secret, "rr_")
	if b, err := base64.RawURLEncoding.DecodeString(raw); !ok || err != nil || len(b) != 32 {
		t.Fatalf("secret %q is not rr_ and 32 bytes of base64url", secret)
	}
	if tok.ID == "" || tok.Name != "grafana.prod-1" || tok.Owner != tokenOwner || !slices.Equal(tok.Scopes, []string{"read", "write"}) ||
		tok.CreatedBy != "cli:root" || !tok.CreatedAt.Equal(t0) ||
		!tok.LastUsedAt.IsZero() || tok.Revoked() {
		t.Errorf("token %+v", tok)
	}
	// Stored under the keyed hash only.
	got, stored, err := h.store.APITokenByHash(h.ctx, h.sealer.Hash("api-token", secret))
	if err != nil || got.ID != tok.ID || stored != h.sealer.Hash("api-token", secret) {
		t.Fatalf("APITokenByHash(hash of the secret) = %+v, %q, %v", got, stored, err)
	}
	ev := h.lastEvent("api_token_create")
	if ev.Actor != "cli:root" || ev.Outcome != "ok" || ev.SourceIP != adminIP || !strings.Contains(ev.Detail, "grafana.prod-1") ||
		strings.Contains(ev.Detail, secret) {
		t.Errorf("audit %+v", ev)
	}

	h.clock.Advance(10 * time.Second)
	v, err := h.svc.VerifyToken(h.ctx, secret, enroll.ScopeRead)
	if err != nil || v.ID != tok.ID || !v.LastUsedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("VerifyToken = %+v, %v; want the token, used now", v, err)
	}
	// Within a minute of the last recorded use, nothing is written.
	h.clock.Advance(30 * time.Second)
	if v, err := h.svc.VerifyToken(h.ctx, secret, enroll.ScopeRead); err != nil || !v.LastUsedAt.Equal(t0.Add(10*time.Second)) {
		t.Errorf("VerifyToken 30 s later = %+v, %v; want LastUsedAt unchanged", v, err)
	}
	h.clock.Advance(31 * time.Second)
	if v, err := h.svc.VerifyToken(h.ctx, secret, enroll.ScopeRead); err != nil || !v.LastUsedAt.Equal(t0.Add(71*time.Second)) {
		t.Errorf("VerifyToken a minute later = %+v, %v; want LastUsedAt moved", v, err)
	}
	list, err := h.svc.ListTokens(h.ctx)
	if err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(t0.Add(71*time.Second)) {
		t.Errorf("ListTokens = %+v, %v", list, err)
	}
}

func TestVerifyTokenRefusals(t *testing.T) {
	h := newHarness(t)
	secret, _, err := h.svc.CreateToken(h.ctx, rw("ci"), "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	other := "rr_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, bad := range []string{"", "rr_", "Bearer " + secret, strings.TrimPrefix(secret, "rr_"), secret + "x",
		secret[:len(secret)-1], "rr_" + strings.Repeat("!", 43), other, strings.ToUpper(secret)} {
		if _, err := h.svc.VerifyToken(h.ctx, bad, enroll.ScopeRead); !errors.Is(err, enroll.ErrAPITokenUnknown) {
			t.Errorf("VerifyToken(%q) = %v, want ErrAPITokenUnknown", bad, err)
		}
	}
	if _, err := h.svc.RevokeToken(h.adminCtx(), "CI", "admin:jdoe"); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, secret, enroll.ScopeRead); !errors.Is(err, enroll.ErrAPITokenRevoked) {
		t.Errorf("VerifyToken(revoked) = %v, want ErrAPITokenRevoked", err)
	}
	ev := h.lastEvent("api_token_revoke")
	if ev.Actor != "admin:jdoe" || ev.Outcome != "ok" || ev.SourceIP != adminIP || !strings.Contains(ev.Detail, "ci") {
		t.Errorf("audit %+v", ev)
	}
}

func TestTokenNamesAndRevoke(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []string{"", "a b", "é", "x/y", strings.Repeat("n", 65), "semi;colon"} {
		if _, _, err := h.svc.CreateToken(h.ctx, rw(bad), "cli:root"); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("CreateToken(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := h.svc.CreateToken(h.ctx, rw(strings.Repeat("n", 64)), "cli:root"); err != nil {
		t.Errorf("a 64-character name: %v", err)
	}
	first, _, err := h.svc.CreateToken(h.ctx, rw("backup"), "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.CreateToken(h.adminCtx(), rw("Backup"), "cli:root"); !errors.Is(err, enroll.ErrAPITokenNameTaken) {
		t.Errorf("a live name again = %v, want ErrAPITokenNameTaken", err)
	}
	if ev := h.lastEvent("api_token_create"); ev.Outcome != "denied" {
		t.Errorf("refused create audited as %+v", ev)
	}
	if _, err := h.svc.RevokeToken(h.ctx, "nope", "cli:root"); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("RevokeToken(unknown) = %v, want ErrNotFound", err)
	}
	revoked, err := h.svc.RevokeToken(h.ctx, "backup", "cli:root")
	if err != nil || !revoked.Revoked() || !revoked.RevokedAt.Equal(t0) {
		t.Fatalf("RevokeToken = %+v, %v", revoked, err)
	}
	second, _, err := h.svc.CreateToken(h.ctx, rw("backup"), "cli:root")
	if err != nil {
		t.Fatalf("the name of a revoked token cannot be reused: %v", err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, second, enroll.ScopeRead); err != nil {
		t.Errorf("the new token: %v", err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, first, enroll.ScopeRead); !errors.Is(err, enroll.ErrAPITokenRevoked) {
		t.Errorf("the revoked token with the reused name: %v, want ErrAPITokenRevoked", err)
	}
	list, err := h.svc.ListTokens(h.ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListTokens = %+v, %v; want 3", list, err)
	}
}

func TestTokenScopes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"read", []string{"read"}},
		{"write,read", []string{"read", "write"}},
		{" Read , write ,read", []string{"read", "write"}},
		{"msp", []string{"msp"}},
		{"read,write,msp", []string{"read", "write", "msp"}},
	} {
		if got, err := enroll.ParseScopes(tc.in); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseScopes(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", ",", "admin", "read,admin", "read write"} {
		if got, err := enroll.ParseScopes(bad); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("ParseScopes(%q) = %q, %v; want ErrInvalid", bad, got, err)
		}
	}

	h := newHarness(t)
	reader, _, err := h.svc.CreateToken(h.ctx, enroll.TokenSpec{Name: "grafana", Owner: tokenOwner, Scopes: []string{"read"}}, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, reader, enroll.ScopeRead); err != nil {
		t.Errorf("read token, read call: %v", err)
	}
	for _, need := range []string{enroll.ScopeWrite, enroll.ScopeMSP} {
		if _, err := h.svc.VerifyToken(h.ctx, reader, need); !errors.Is(err, enroll.ErrAPITokenScope) {
			t.Errorf("read token, %s call: %v, want ErrAPITokenScope", need, err)
		}
	}
	writer, _, err := h.svc.CreateToken(h.ctx, enroll.TokenSpec{Name: "bot", Owner: tokenOwner, Scopes: []string{"write"}}, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, writer, enroll.ScopeRead); !errors.Is(err, enroll.ErrAPITokenScope) {
		t.Errorf("write does not imply read: %v", err)
	}
	for _, spec := range []enroll.TokenSpec{
		{Name: "x", Owner: tokenOwner},
		{Name: "x", Owner: tokenOwner, Scopes: []string{"root"}},
		{Name: "x", Scopes: []string{"read"}},
	} {
		if _, _, err := h.svc.CreateToken(h.ctx, spec, "cli:root"); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("CreateToken(%+v) = %v, want ErrInvalid", spec, err)
		}
	}
}

// TestTokenOwnerMustStayAdmin: a token is made only for an enabled admin and
// stops at the first use after its owner leaves the admin group, is
// disabled or leaves the directory; the refusal is audited.
func TestTokenOwnerMustStayAdmin(t *testing.T) {
	h := newHarness(t)
	for owner, why := range map[string]string{"jdoe": "not a member of directory.admin_group", "ghost": "not in the directory"} {
		_, _, err := h.svc.CreateToken(h.adminCtx(), enroll.TokenSpec{Name: "t-" + owner, Owner: owner, Scopes: []string{"read"}}, "cli:root")
		if !errors.Is(err, enroll.ErrAPITokenOwner) || !strings.Contains(err.Error(), why) {
			t.Errorf("CreateToken for %s = %v, want ErrAPITokenOwner: %s", owner, err, why)
		}
	}
	if ev := h.lastEvent("api_token_create"); ev.Outcome != "denied" {
		t.Errorf("refused create audited as %+v", ev)
	}
	if list, _ := h.svc.ListTokens(h.ctx); len(list) != 0 {
		t.Fatalf("refused tokens stored: %+v", list)
	}

	h.users["second"] = directory.User{Username: "second", DisplayName: "Second Admin"}
	h.admins["second"] = true
	for _, tc := range []struct {
		name, why string
		leave     func()
	}{
		{"left-group", "not a member of directory.admin_group", func() { delete(h.admins, tokenOwner) }},
		{"disabled", "disabled in the directory", func() { u := h.users[tokenOwner]; u.Disabled = true; h.users[tokenOwner] = u }},
		{"deleted", "not in the directory", func() { delete(h.users, tokenOwner) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.users[tokenOwner] = directory.User{Username: tokenOwner, DisplayName: "Help Desk"}
			h.admins[tokenOwner] = true
			secret, _, err := h.svc.CreateToken(h.ctx, rw("tok-"+tc.name), "cli:root")
			if err != nil {
				t.Fatal(err)
			}
			other, _, err := h.svc.CreateToken(h.ctx, enroll.TokenSpec{Name: "other-" + tc.name, Owner: "second", Scopes: []string{"read"}}, "cli:root")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.VerifyToken(h.ctx, secret, enroll.ScopeRead); err != nil {
				t.Fatalf("before: %v", err)
			}
			tc.leave()
			_, err = h.svc.VerifyToken(h.ctx, secret, enroll.ScopeRead)
			if !errors.Is(err, enroll.ErrAPITokenOwner) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("after the owner %s: %v, want ErrAPITokenOwner: %s", tc.name, err, tc.why)
			}
			ev := h.lastEvent("api_token_use")
			if ev.Outcome != "denied" || ev.Actor != "api:tok-"+tc.name || ev.Username != tokenOwner || !strings.Contains(ev.Detail, tc.why) ||
				strings.Contains(ev.Detail, secret) {
				t.Errorf("refusal audited as %+v", ev)
			}
			if _, err := h.svc.VerifyToken(h.ctx, other, enroll.ScopeRead); err != nil {
				t.Errorf("another admin's token: %v", err)
			}
		})
	}
}
