package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
)

func TestGroupCommitSemantics(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	g := &groupCommit{db: db}
	errOdd := errors.New("refused")

	const n = 300
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g.update(func(tx *bbolt.Tx) error {
				b := tx.Bucket(bucket)
				// Every writer writes first, then some refuse: a refusal
				// must undo its own write and nobody else's.
				if err := b.Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
				switch {
				case i%7 == 3:
					return errOdd
				case i%50 == 11:
					panic("boom")
				}
				// Insert-if-absent on a shared key: exactly one wins.
				if b.Get([]byte("shared")) == nil {
					return b.Put([]byte("shared"), fmt.Appendf(nil, "%d", i))
				}
				return nil
			})
		}()
	}
	wg.Wait()

	var committed int
	for i, err := range results {
		switch {
		case i%7 == 3:
			if !errors.Is(err, errOdd) {
				t.Errorf("writer %d: %v, want its own refusal", i, err)
			}
		case i%50 == 11:
			if err == nil {
				t.Errorf("writer %d panicked but got no error", i)
			}
		default:
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
			committed++
		}
	}
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for i := 0; i < n; i++ {
			got := b.Get(fmt.Appendf(nil, "k%03d", i)) != nil
			if want := results[i] == nil; got != want {
				t.Errorf("key of writer %d present=%v, want %v", i, got, want)
			}
		}
		if b.Get([]byte("shared")) == nil {
			t.Error("no writer won the shared key")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if committed == 0 {
		t.Fatal("nothing committed")
	}
}
