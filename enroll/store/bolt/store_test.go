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

func TestBoltStoreConformance(t *testing.T) {
	storetest.Run(t, openBolt)
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

func TestBoltBackup(t *testing.T) {
	s, _ := newBolt(t)
	ctx := t.Context()
	now := time.Date(2025, 3, 14, 10, 42, 0, 0, time.UTC)
	want := enroll.Enrollment{Username: "JDoe", Phone: "+12015550101", Language: "fr",
		State: enroll.StateActive, Method: "sms", CreatedAt: now, UpdatedAt: now, VerifiedAt: now}
	if err := s.PutEnrollment(ctx, want); err != nil {
		t.Fatal(err)
	}
	seq, err := s.AppendAudit(ctx, enroll.Event{Time: now, Actor: "cli", Action: "enroll", Username: "JDoe", Outcome: "ok"})
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	n, err := s.Backup(t.Context(), &buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup reported %d bytes, wrote %d", n, buf.Len())
	}
	// The store stays usable during and after the backup.
	if err := s.PutEnrollment(ctx, enroll.Enrollment{Username: "later", State: enroll.StatePending}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("opening the backup: %v", err)
	}
	defer b.Close()
	if err := b.Check(t.Context()); err != nil {
		t.Errorf("backup Check: %v", err)
	}
	got, err := b.EnrollmentByPhone(ctx, "+12015550101")
	if err != nil || got.Username != "JDoe" || got.Language != "fr" || !got.VerifiedAt.Equal(now) {
		t.Errorf("backup EnrollmentByPhone = %+v, %v", got, err)
	}
	if _, err := b.Enrollment(ctx, "later"); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("backup holds a record written after it: %v", err)
	}
	evs, err := b.Audit(ctx, enroll.AuditFilter{})
	if err != nil || len(evs) != 1 || evs[0].Seq != seq {
		t.Errorf("backup Audit = %+v, %v", evs, err)
	}
}

func TestBoltCheck(t *testing.T) {
	s, _ := newBolt(t)
	ctx := t.Context()
	now := time.Date(2025, 3, 14, 10, 42, 0, 0, time.UTC)
	for i := range 200 {
		if _, err := s.AppendAudit(ctx, enroll.Event{Time: now, Actor: "cli", Action: "enroll", Outcome: "ok",
			Detail: strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	s.Close()
	if err := s.Check(t.Context()); !errors.Is(err, enroll.ErrClosed) {
		t.Errorf("Check after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Backup(t.Context(), &bytes.Buffer{}); !errors.Is(err, enroll.ErrClosed) {
		t.Errorf("Backup after Close: %v, want ErrClosed", err)
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
