package etcd_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcd"
)

// benchStores opens the two implementations side by side.
func benchStores(b *testing.B) map[string]enroll.Store {
	cli, base := cluster(b)
	e, err := etcd.New(b.Context(), cli, etcd.Options{Prefix: base + "bench/"})
	if err != nil {
		b.Fatal(err)
	}
	bs, err := bolt.Open(filepath.Join(b.TempDir(), "replyreset.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(); bs.Close() })
	return map[string]enroll.Store{"etcd": e, "bolt": bs}
}

// resetWrites makes the store writes of one RESET: the webhook's dedupe,
// the queued password, its send, and the audit event.
func resetWrites(b *testing.B, s enroll.Store, n int64) error {
	ctx := b.Context()
	now := t0.Add(time.Duration(n) * time.Millisecond)
	if first, err := s.MarkMessage(ctx, fmt.Sprintf("SM%032d", n), now, time.Hour); err != nil || !first {
		return fmt.Errorf("MarkMessage = %v, %w", first, err)
	}
	id, err := s.EnqueueMessage(ctx, sms("+12015550101"))
	if err != nil {
		return err
	}
	if err := s.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error {
		m.Status, m.ProviderID, m.Attempts = enroll.StatusSent, fmt.Sprintf("SMout%d", n), 1
		return nil
	}); err != nil {
		return err
	}
	_, err = s.AppendAudit(ctx, enroll.Event{Time: now, Actor: "sms:+12015550101", Action: "reset", Username: "jdoe", Outcome: "ok"})
	return err
}

// BenchmarkResetWrites: one RESET's writes (MarkMessage, EnqueueMessage,
// UpdateMessage, AppendAudit) one after another, on etcd and on bbolt.
func BenchmarkResetWrites(b *testing.B) {
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := resetWrites(b, s, benchSeq.Add(1)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSeq numbers the benchmarks' RESETs across their runs, so that no
// message SID repeats.
var benchSeq atomic.Int64

// BenchmarkResetWritesParallel: the same from many goroutines at once
// (many RESETs at the same time, contending on the audit and outbox
// counters).
func BenchmarkResetWritesParallel(b *testing.B) {
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := resetWrites(b, s, benchSeq.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
