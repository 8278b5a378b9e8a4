package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

// The fingerprint of the sealing key the store's secrets are sealed with
// (enroll.SealKeyStore).

const (
	fingerprintA = "0123456789abcdef"
	fingerprintB = "fedcba9876543210"
)

func sealKey(t *testing.T, s enroll.SealKeyStore, fp string) string {
	t.Helper()
	got, err := s.SealKey(t.Context(), fp)
	if err != nil {
		t.Fatalf("SealKey(%s): %v", fp, err)
	}
	return got
}

func testSealKeyFirstRecorded(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	if got := sealKey(t, s, fingerprintA); got != fingerprintA {
		t.Errorf("SealKey(A) on an empty store = %q, want A recorded and returned", got)
	}
	if got := sealKey(t, s, fingerprintA); got != fingerprintA {
		t.Errorf("SealKey(A) again = %q, want A", got)
	}
	// Another key does not replace the recorded one: it is told which.
	if got := sealKey(t, s, fingerprintB); got != fingerprintA {
		t.Errorf("SealKey(B) after A = %q, want A (unchanged)", got)
	}
	long := strings.Repeat("ab", 64)
	if got := sealKey(t, s, long); got != fingerprintA {
		t.Errorf("SealKey(128 digits) after A = %q, want A", got)
	}
}

func testSealKeyConcurrent(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	got := make([]string, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			fp := fmt.Sprintf("%016x", i+1)
			r, err := s.SealKey(t.Context(), fp)
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		})
	}
	wg.Wait()
	for i, r := range got {
		if r != got[0] {
			t.Fatalf("concurrent first SealKey calls got %q and %q (call %d): want one fingerprint recorded for all", got[0], r, i)
		}
	}
	if got[0] == "" {
		t.Fatal("concurrent SealKey calls recorded nothing")
	}
	if r := sealKey(t, s, fingerprintB); r != got[0] {
		t.Errorf("SealKey after the race = %q, want %q", r, got[0])
	}
}

func sealKeyCalls(s enroll.SealKeyStore) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"SealKey": func(ctx context.Context) error { _, err := s.SealKey(ctx, fingerprintA); return err },
	}
}

// wantNoSealKey checks that failing calls recorded nothing.
func wantNoSealKey(t *testing.T, s enroll.SealKeyStore) {
	t.Helper()
	if got := sealKey(t, s, fingerprintB); got != fingerprintB {
		t.Errorf("SealKey(B) = %q: a failed call recorded a fingerprint", got)
	}
}

func testSealKeyInvalidInput(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	call := func(fp string) func() error {
		return func() error { _, err := s.SealKey(t.Context(), fp); return err }
	}
	wantInvalid(t, map[string]func() error{
		"empty":         call(""),
		"too short":     call("0123456789abcde"),
		"too long":      call(strings.Repeat("a", 129)),
		"upper case":    call("0123456789ABCDEF"),
		"not hex":       call("0123456789abcdeg"),
		"space":         call("0123456789abcde "),
		"key-like junk": call(strings.Repeat("\x00", 64)),
	})
	wantNoSealKey(t, s)
}

func testSealKeyCancelled(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	wantEachFails(t, cancelled(t), sealKeyCalls(s), context.Canceled, "with a cancelled context")
	wantNoSealKey(t, s)
}

func testSealKeyClosed(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	wantClosedFails(t, s, sealKeyCalls(s))
}

func testSealKeyReopen(t *testing.T, open Opener) {
	s, dir := newStore(t, open)
	sealKey(t, s, fingerprintA)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openAt(t, open, dir)
	if got := sealKey(t, s, fingerprintB); got != fingerprintA {
		t.Errorf("SealKey(B) after reopen = %q, want A (the fingerprint survives)", got)
	}
}

func testSealKeyBackup(t *testing.T, open Opener, restore Restorer) {
	s, _ := newStore(t, open)
	sealKey(t, s, fingerprintA)
	var buf strings.Builder
	if _, err := s.Backup(t.Context(), &buf); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	dir := t.TempDir()
	restore(t, dir, []byte(buf.String()))
	c := openAt(t, open, dir)
	if got := sealKey(t, c, fingerprintB); got != fingerprintA {
		t.Errorf("SealKey(B) on the restored copy = %q, want A: a backup must carry the fingerprint of the key its secrets need", got)
	}
}
