package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// withKeyFile appends store.key_file to f's configuration.
func withKeyFile(t *testing.T, f configFile, key string) {
	t.Helper()
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.Path, string(raw)+"store:\n  key_file: "+q(key)+"\n")
}

// recordedFingerprint opens f's data file directly and returns the
// fingerprint it records ("" when none: a probe that records nothing is
// impossible, so a probe's own fingerprint coming back means none).
func recordedFingerprint(t *testing.T, f configFile) string {
	t.Helper()
	s, err := bolt.Open(filepath.Join(f.DataDir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Reading in a copy keeps the file as it was.
	var buf strings.Builder
	if _, err := s.Backup(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	writeFile(t, copyPath, buf.String())
	c, err := bolt.Open(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const probe = "00000000000000000000000000000000"
	got, err := c.SealKey(t.Context(), probe)
	if err != nil {
		t.Fatal(err)
	}
	if got == probe {
		return ""
	}
	return got
}

func auditCount(t *testing.T, f configFile) int {
	t.Helper()
	s, err := bolt.Open(filepath.Join(f.DataDir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.Audit(t.Context(), enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func TestSealKeyAnotherKeyRefused(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	keyA := filepath.Join(t.TempDir(), "a.key")
	withKeyFile(t, f, keyA)
	// First start with key A: the key file is created 0600 and its
	// fingerprint recorded.
	seedAudit(t, f, []enroll.Event{{Time: time.Now(), Actor: "cli:root", Action: "enroll", Username: "alice", Outcome: "ok"}})
	st, err := os.Stat(keyA)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 64 {
		t.Fatalf("store.key_file %s: %v, %v; want a 64-byte file, mode 0600", keyA, st, err)
	}
	a, err := enroll.LoadKey(keyA)
	if err != nil {
		t.Fatal(err)
	}
	if got := recordedFingerprint(t, f); got != a.Fingerprint() {
		t.Fatalf("recorded fingerprint %q, want key A's %s", got, a.Fingerprint())
	}
	if _, err := os.Stat(filepath.Join(f.DataDir, "replyreset.key")); !os.IsNotExist(err) {
		t.Errorf("a key was made in data_dir although store.key_file names another: %v", err)
	}
	events := auditCount(t, f)

	// Then with key B: every command that opens the store refuses, names
	// both fingerprints and the key file, and writes nothing.
	keyB := filepath.Join(t.TempDir(), "b.key")
	b, err := enroll.LoadOrCreateKey(keyB)
	if err != nil {
		t.Fatal(err)
	}
	g := configFile{Path: filepath.Join(t.TempDir(), "config.yaml"), DataDir: f.DataDir}
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, g.Path, strings.Replace(string(raw), q(keyA), q(keyB), 1))
	for _, args := range [][]string{
		{"serve", "-config", g.Path},
		{"audit", "-config", g.Path},
		{"backup", "-config", g.Path, "-o", filepath.Join(t.TempDir(), "b.db")},
	} {
		r := runCLI(t, args...)
		if r.code == 0 {
			t.Errorf("%s with another key exited 0:\n%v", args[0], r)
			continue
		}
		for _, want := range []string{"store.key_file", keyB, a.Fingerprint(), b.Fingerprint()} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: the error does not say %q:\n%v", args[0], want, r)
			}
		}
	}
	if got := recordedFingerprint(t, f); got != a.Fingerprint() {
		t.Errorf("after the refusals the store records %q, want key A's %s", got, a.Fingerprint())
	}
	if n := auditCount(t, f); n != events {
		t.Errorf("the refused commands wrote: %d audit events, want %d", n, events)
	}
	// A key file the refused start would have created is not left behind.
	keyC := filepath.Join(t.TempDir(), "c.key")
	writeFile(t, g.Path, strings.Replace(string(raw), q(keyA), q(keyC), 1))
	if r := runCLI(t, "audit", "-config", g.Path); r.code == 0 {
		t.Errorf("a new key was accepted by a store sealed with another:\n%v", r)
	}
	if _, err := os.Stat(keyC); !os.IsNotExist(err) {
		t.Errorf("the refused start left the key file it made: %v", err)
	}
	// Key A still works.
	mustRun(t, "audit", "-config", f.Path)
}

func TestSealKeyRecordedOnUpgrade(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	// A data directory from before fingerprints: a data file with data,
	// and its key file, but no fingerprint recorded.
	if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := enroll.LoadOrCreateKey(filepath.Join(f.DataDir, "replyreset.key"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := bolt.Open(filepath.Join(f.DataDir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.AppendAudit(t.Context(), enroll.Event{Time: time.Now(), Actor: "cli:root", Action: "enroll", Username: "bob", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	if got := recordedFingerprint(t, f); got != "" {
		t.Fatalf("the old data file already records %q", got)
	}
	r := mustRun(t, "audit", "-config", f.Path)
	if !strings.Contains(r.stdout, "bob") {
		t.Errorf("audit after the upgrade lost the data:\n%v", r)
	}
	if got := recordedFingerprint(t, f); got != key.Fingerprint() {
		t.Errorf("after the first start the store records %q, want the key's %s", got, key.Fingerprint())
	}
}

func TestSealKeyFileRefusals(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		content []byte
		mode    os.FileMode
		want    string
	}{
		"short":          {make([]byte, 10), 0o600, "holds 10 bytes"},
		"group readable": {make([]byte, 64), 0o640, "readable by others"},
	} {
		t.Run(name, func(t *testing.T) {
			f := writeConfig(t, offlineConfig())
			key := filepath.Join(t.TempDir(), "k.key")
			if err := os.WriteFile(key, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(key, tc.mode); err != nil {
				t.Fatal(err)
			}
			withKeyFile(t, f, key)
			r := runCLI(t, "audit", "-config", f.Path)
			if r.code == 0 || !strings.Contains(r.stderr, "store.key_file") || !strings.Contains(r.stderr, key) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want a non-zero exit naming store.key_file, %s and %q:\n%v", key, tc.want, r)
			}
		})
	}
}

func TestServeEtcdUnreachable(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.Path, string(raw)+"store:\n  backend: etcd\n  etcd: {endpoints: [\"http://127.0.0.1:1\"]}\n")
	r := runCLI(t, "serve", "-config", f.Path)
	if r.code == 0 || !strings.Contains(r.stderr, "store.etcd: ") || !strings.Contains(r.stderr, "unavailable") {
		t.Errorf("serve with no etcd member answering: want a non-zero exit naming store.etcd and the unavailable store:\n%v", r)
	}
}
