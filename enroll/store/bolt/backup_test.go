package bolt_test

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// TestBoltBackupUnderWrites: a backup taken while writers keep appending
// opens, passes bbolt's check and holds every write acknowledged before it
// began (and nothing half-written).
func TestBoltBackupUnderWrites(t *testing.T) {
	s, _ := newBolt(t)
	ctx := t.Context()
	now := time.Date(2025, 3, 14, 10, 42, 0, 0, time.UTC)
	var (
		acked   sync.Map // seq → true, once AppendAudit returned
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				seq, err := s.AppendAudit(ctx, enroll.Event{Time: now, Actor: "test", Action: "write", Outcome: "ok",
					Detail: string(rune('a'+w)) + "-" + time.Duration(i).String()})
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(seq, true)
				written.Add(1)
			}
		})
	}
	for written.Load() < 2000 { // let the writers get going
		time.Sleep(time.Millisecond)
	}
	var before []uint64
	acked.Range(func(k, _ any) bool {
		before = append(before, k.(uint64))
		return true
	})
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(t.Context(), f); err != nil {
		t.Fatalf("Backup while writing: %v", err)
	}
	f.Close()
	stop.Store(true)
	wg.Wait()

	b, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("opening the backup: %v", err)
	}
	defer b.Close()
	if err := b.Check(t.Context()); err != nil {
		t.Fatalf("backup Check: %v", err)
	}
	evs, err := b.Audit(ctx, enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[uint64]bool, len(evs))
	for i, ev := range evs {
		have[ev.Seq] = true
		if ev.Action != "write" || ev.Detail == "" || (i > 0 && ev.Seq <= evs[i-1].Seq) {
			t.Fatalf("backup event %d is damaged: %+v", i, ev)
		}
	}
	for _, seq := range before {
		if !have[seq] {
			t.Fatalf("event %d was acknowledged before the backup began but is not in it", seq)
		}
	}
	if len(evs) < len(before) || int64(len(evs)) > written.Load() {
		t.Errorf("backup holds %d events: %d acknowledged before it began, %d written in all", len(evs), len(before), written.Load())
	}
	t.Logf("backup of %d events while writing; %d acknowledged before it, %d written in all", len(evs), len(before), written.Load())
}
