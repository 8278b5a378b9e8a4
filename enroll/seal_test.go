package enroll

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replyreset.key")
	s, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != keySize {
		t.Fatalf("key file: %v %v", st, err)
	}
	sealed := s.Seal([]byte("JBSWY3DPEHPK3PXP"), "totp:jdoe")
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("sealed data holds the plain text")
	}
	// The same key file opens it again; another purpose or key does not.
	s2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := s2.Open(sealed, "totp:jdoe"); err != nil || string(plain) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", plain, err)
	}
	if _, err := s2.Open(sealed, "totp:other"); !errors.Is(err, ErrSealed) {
		t.Errorf("open for another purpose: %v", err)
	}
	other, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if _, err := other.Open(sealed, "totp:jdoe"); !errors.Is(err, ErrSealed) {
		t.Errorf("open with another key: %v", err)
	}
	if _, err := s.Open([]byte("short"), "x"); !errors.Is(err, ErrSealed) {
		t.Errorf("open garbage: %v", err)
	}
	// Keyed hashes: stable for one key and purpose, different otherwise.
	if s.Hash("code", "123456") != s2.Hash("code", "123456") || s.Hash("code", "123456") == s.Hash("token", "123456") ||
		s.Hash("code", "123456") == other.Hash("code", "123456") {
		t.Error("Hash is not keyed and purpose-separated")
	}
	if !Equal(s.Hash("code", "1"), s2.Hash("code", "1")) || Equal(s.Hash("code", "1"), s.Hash("code", "2")) {
		t.Error("Equal")
	}
	// A key file others can read is refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Error("a world-readable key file was accepted")
	}
}
