package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/directory"

	"github.com/replyreset/replyreset/enroll"
)

// everyoneAdmin is a directory where every name is an enabled admin.
type everyoneAdmin struct{}

func (everyoneAdmin) FindUser(_ context.Context, name string) (directory.User, error) {
	return directory.User{Username: name}, nil
}
func (everyoneAdmin) IsAdmin(context.Context, string) (bool, error) { return true, nil }

// TestLegacyTokenRefused: a token stored by a version without owners and
// scopes (its record as that version wrote it) is listed with neither and
// refused on use with ErrAPITokenNoOwner, whatever the directory says.
func TestLegacyTokenRefused(t *testing.T) {
	dir := t.TempDir()
	store, err := Open(filepath.Join(dir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sealer, err := enroll.NewSealer(make([]byte, 64)) // the sealer's key size
	if err != nil {
		t.Fatal(err)
	}
	secret := "rr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	hash := sealer.Hash("api-token", secret)
	legacy := `{"id":"0011223344556677","name":"old-script","created_at":"2026-01-05T10:00:00Z","created_by":"cli:root","hash":"` + hash + `"}`
	err = store.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketAPITokens).Put([]byte("0011223344556677"), []byte(legacy)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAPITokenHashes).Put([]byte(hash), []byte("0011223344556677")); err != nil {
			return err
		}
		return tx.Bucket(bucketAPITokenNames).Put([]byte("old-script"), []byte("0011223344556677"))
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := enroll.NewService(enroll.ServiceDeps{Store: store, Sealer: sealer, TokenOwners: everyoneAdmin{}, Now: time.Now}, enroll.ServiceSettings{})
	list, err := svc.ListTokens(context.Background())
	if err != nil || len(list) != 1 || list[0].Owner != "" || len(list[0].Scopes) != 0 || list[0].Name != "old-script" {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
	for _, scope := range []string{enroll.ScopeRead, enroll.ScopeWrite} {
		if _, err := svc.VerifyToken(context.Background(), secret, scope); !errors.Is(err, enroll.ErrAPITokenNoOwner) {
			t.Errorf("VerifyToken(legacy, %s) = %v, want ErrAPITokenNoOwner", scope, err)
		}
	}
	// It can still be revoked, which frees its name for the new token.
	if _, err := svc.RevokeToken(context.Background(), "old-script", "cli:root"); err != nil {
		t.Errorf("RevokeToken(legacy): %v", err)
	}
}
