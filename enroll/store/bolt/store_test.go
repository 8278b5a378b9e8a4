package bolt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/storetest"
)

func openBolt(t *testing.T, dir string) enroll.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(dir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// restoreBolt puts a backup in place as the data file of dir, as
// `replyreset restore` does.
func restoreBolt(t *testing.T, dir string, backup []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "replyreset.db"), backup, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBoltStoreConformance(t *testing.T) {
	storetest.Run(t, openBolt, restoreBolt)
}

// newBolt opens a Store in a temporary directory, closed at the end.
func newBolt(t *testing.T) (*bolt.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "replyreset.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestBoltFileMode(t *testing.T) {
	_, path := newBolt(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("data file mode = %v, want 0600", mode)
	}
}

func TestBoltSecondOpenFails(t *testing.T) {
	_, path := newBolt(t)
	start := time.Now()
	s2, err := bolt.Open(path, bolt.WithLockTimeout(100*time.Millisecond))
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("second Open took %s to fail", elapsed)
	}
	if !errors.Is(err, bolt.ErrInUse) {
		t.Errorf("error %v does not match ErrInUse", err)
	}
	want := "data file " + path + " is in use by another replyreset process"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestBoltDefaultLockTimeout(t *testing.T) {
	_, path := newBolt(t)
	start := time.Now()
	_, err := bolt.Open(path)
	if !errors.Is(err, bolt.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("second Open gave up after %s, want about 1s", elapsed)
	}
}

func TestBoltOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := bolt.Open(filepath.Join(dir, "missing", "replyreset.db")); err == nil ||
		!strings.Contains(err.Error(), "missing") {
		t.Errorf("Open in a missing directory: %v, want an error naming the path", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("Open of a non-bbolt file: %v, want an error naming the file", err)
	}
}

func TestBoltRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replyreset.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte{0, 0, 0, 0, 0, 0, 0, 99})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = bolt.Open(path)
	if err == nil || !strings.Contains(err.Error(), "schema version 99 was written by a newer replyreset") {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

// TestBoltDropsLeasesOfACrashedProcess: a data file left by a process
// that died holding a lease (here, a copy of the file taken while the
// lease was held: what a kill -9 leaves) opens with no lease held, so
// the restarted serve runs its jobs at once instead of waiting out the TTL;
// the rest of the data is kept.
func TestBoltDropsLeasesOfACrashedProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(filepath.Join(dir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	if ok, err := s.AcquireLease(t.Context(), "outbox-worker", "dead-node/1", now, time.Hour); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	if _, err := s.AppendAudit(t.Context(), enroll.Event{Action: "reset", Username: "jdoe", Time: now}); err != nil {
		t.Fatal(err)
	}
	var crashed bytes.Buffer
	if _, err := s.Backup(t.Context(), &crashed); err != nil {
		t.Fatal(err)
	}
	restarted := t.TempDir()
	restoreBolt(t, restarted, crashed.Bytes())
	r, err := bolt.Open(filepath.Join(restarted, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if ok, err := r.AcquireLease(t.Context(), "outbox-worker", "new-node/1", now.Add(time.Second), time.Hour); err != nil || !ok {
		t.Errorf("AcquireLease after the restart = %v, %v; want the dead process's lease gone", ok, err)
	}
	evs, err := r.Audit(t.Context(), enroll.AuditFilter{})
	if err != nil || len(evs) != 1 || evs[0].Username != "jdoe" {
		t.Errorf("audit after the restart = %v, %v; want the one event kept", evs, err)
	}
	// The original, still open, holds its lease: only an open drops leases.
	if ok, err := s.AcquireLease(t.Context(), "outbox-worker", "new-node/1", now.Add(time.Second), time.Hour); err != nil || ok {
		t.Errorf("AcquireLease on the live file = %v, %v; want refused", ok, err)
	}
}
