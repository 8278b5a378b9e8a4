package enroll_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func TestCreateAndVerifyToken(t *testing.T) {
	h := newHarness(t)
	secret, tok, err := h.svc.CreateToken(h.adminCtx(), "grafana.prod-1", "cli:root")
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	raw, ok := strings.CutPrefix(secret, "rr_")
	if b, err := base64.RawURLEncoding.DecodeString(raw); !ok || err != nil || len(b) != 32 {
		t.Fatalf("secret %q is not rr_ and 32 bytes of base64url", secret)
	}
	if tok.ID == "" || tok.Name != "grafana.prod-1" || tok.CreatedBy != "cli:root" || !tok.CreatedAt.Equal(t0) ||
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
	v, err := h.svc.VerifyToken(h.ctx, secret)
	if err != nil || v.ID != tok.ID || !v.LastUsedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("VerifyToken = %+v, %v; want the token, used now", v, err)
	}
	// Within a minute of the last recorded use, nothing is written.
	h.clock.Advance(30 * time.Second)
	if v, err := h.svc.VerifyToken(h.ctx, secret); err != nil || !v.LastUsedAt.Equal(t0.Add(10*time.Second)) {
		t.Errorf("VerifyToken 30 s later = %+v, %v; want LastUsedAt unchanged", v, err)
	}
	h.clock.Advance(31 * time.Second)
	if v, err := h.svc.VerifyToken(h.ctx, secret); err != nil || !v.LastUsedAt.Equal(t0.Add(71*time.Second)) {
		t.Errorf("VerifyToken a minute later = %+v, %v; want LastUsedAt moved", v, err)
	}
	list, err := h.svc.ListTokens(h.ctx)
	if err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(t0.Add(71*time.Second)) {
		t.Errorf("ListTokens = %+v, %v", list, err)
	}
}

func TestVerifyTokenRefusals(t *testing.T) {
	h := newHarness(t)
	secret, _, err := h.svc.CreateToken(h.ctx, "ci", "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	other := "rr_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, bad := range []string{"", "rr_", "Bearer " + secret, strings.TrimPrefix(secret, "rr_"), secret + "x",
		secret[:len(secret)-1], "rr_" + strings.Repeat("!", 43), other, strings.ToUpper(secret)} {
		if _, err := h.svc.VerifyToken(h.ctx, bad); !errors.Is(err, enroll.ErrAPITokenUnknown) {
			t.Errorf("VerifyToken(%q) = %v, want ErrAPITokenUnknown", bad, err)
		}
	}
	if _, err := h.svc.RevokeToken(h.adminCtx(), "CI", "admin:jdoe"); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, secret); !errors.Is(err, enroll.ErrAPITokenRevoked) {
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
		if _, _, err := h.svc.CreateToken(h.ctx, bad, "cli:root"); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("CreateToken(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := h.svc.CreateToken(h.ctx, strings.Repeat("n", 64), "cli:root"); err != nil {
		t.Errorf("a 64-character name: %v", err)
	}
	first, _, err := h.svc.CreateToken(h.ctx, "backup", "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.CreateToken(h.adminCtx(), "Backup", "cli:root"); !errors.Is(err, enroll.ErrAPITokenNameTaken) {
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
	second, _, err := h.svc.CreateToken(h.ctx, "backup", "cli:root")
	if err != nil {
		t.Fatalf("the name of a revoked token cannot be reused: %v", err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, second); err != nil {
		t.Errorf("the new token: %v", err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, first); !errors.Is(err, enroll.ErrAPITokenRevoked) {
		t.Errorf("the revoked token with the reused name: %v, want ErrAPITokenRevoked", err)
	}
	list, err := h.svc.ListTokens(h.ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListTokens = %+v, %v; want 3", list, err)
	}
}
