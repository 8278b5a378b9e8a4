package etcd_test

import (
	"bytes"
	"testing"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
)

// TestPagedListings: listings and the backup read more keys than one page
// (500) holds, in order, without losing a record at a page boundary.
func TestPagedListings(t *testing.T) {
	s, cli := newStore(t)
	ctx := t.Context()
	const n = 1100
	for range n {
		if _, err := s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "cli", Action: "enroll", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.Audit(ctx, enroll.AuditFilter{})
	if err != nil || len(evs) != n {
		t.Fatalf("Audit = %d events, %v; want %d", len(evs), err, n)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d", i, ev.Seq)
		}
	}
	newest, err := s.Audit(ctx, enroll.AuditFilter{Newest: true, BeforeSeq: 1000, Limit: 600})
	if err != nil || len(newest) != 600 || newest[0].Seq != 999 || newest[599].Seq != 400 {
		t.Fatalf("newest page = %d events, %v", len(newest), err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	copyPrefix := s.Prefix() + "copy/"
	keys, err := etcd.Restore(ctx, cli, copyPrefix, &buf)
	if err != nil || keys < n {
		t.Fatalf("Restore = %d keys, %v", keys, err)
	}
	c, err := etcd.New(ctx, cli, etcd.Options{Prefix: copyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if evs, err := c.Audit(ctx, enroll.AuditFilter{}); err != nil || len(evs) != n {
		t.Errorf("restored Audit = %d events, %v; want %d", len(evs), err, n)
	}
	if _, err := etcd.Restore(ctx, cli, copyPrefix, bytes.NewReader(nil)); err == nil {
		t.Error("Restore into a prefix that holds keys succeeded")
	}
}
