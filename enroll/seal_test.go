package enroll

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

func TestSealerFingerprint(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateKey(filepath.Join(dir, "a.key"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateKey(filepath.Join(dir, "a.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKey(filepath.Join(dir, "b.key"))
	if err != nil {
		t.Fatal(err)
	}
	fp := a.Fingerprint()
	if err := CheckFingerprint(fp); err != nil || len(fp) != 16 {
		t.Fatalf("Fingerprint() = %q (%v): want 16 lower-case hex digits a store accepts", fp, err)
	}
	if again.Fingerprint() != fp {
		t.Errorf("one key file, two fingerprints: %s and %s", fp, again.Fingerprint())
	}
	if b.Fingerprint() == fp {
		t.Errorf("two keys, one fingerprint %s", fp)
	}
	// Known answer: SHA-256("replyreset seal key fingerprint" || key).
	key := bytes.Repeat([]byte{7}, keySize)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte("replyreset seal key fingerprint"), key...))
	if want := hex.EncodeToString(sum[:])[:16]; s.Fingerprint() != want {
		t.Errorf("Fingerprint() = %s, want %s", s.Fingerprint(), want)
	}
	// Never the key itself, nor a plain hash of it.
	plain := sha256.Sum256(key)
	if strings.Contains(hex.EncodeToString(key), s.Fingerprint()) || strings.HasPrefix(hex.EncodeToString(plain[:]), s.Fingerprint()) {
		t.Error("the fingerprint is the key or its bare hash")
	}
}

func TestLoadOrCreateKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	created := filepath.Join(dir, "new.key")
	if _, err := LoadOrCreateKey(created); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(created); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("created key file: %v, %v; want mode 0600", st, err)
	}
	for _, tc := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    []string
	}{
		{"short.key", bytes.Repeat([]byte{1}, 32), 0o600, []string{"short.key", "holds 32 bytes", "64"}},
		{"long.key", bytes.Repeat([]byte{1}, 65), 0o600, []string{"long.key", "holds 65 bytes"}},
		{"empty.key", nil, 0o600, []string{"empty.key", "holds 0 bytes"}},
		{"group.key", bytes.Repeat([]byte{1}, keySize), 0o640, []string{"group.key", "readable by others", "chmod 600"}},
		{"world.key", bytes.Repeat([]byte{1}, keySize), 0o604, []string{"world.key", "readable by others"}},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		_, err := LoadOrCreateKey(path)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("%s: the refused key file was changed", tc.name)
		}
	}
	// A key file in a directory that does not exist is not created
	// somewhere else.
	if _, err := LoadOrCreateKey(filepath.Join(dir, "missing", "k")); err == nil {
		t.Error("a key file in a missing directory was accepted")
	}
}
