package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// auditFixture appends four events a minute apart and returns their
// sequence numbers.
func auditFixture(t *testing.T, s enroll.Store) []uint64 {
	t.Helper()
	events := []enroll.Event{
		{Time: t0, Actor: "admin:helpdesk", Action: "enroll", Username: "JDoe", Phone: phone1, Outcome: "ok", SourceIP: "192.0.2.7"},
		{Time: t0.Add(1 * time.Minute), Actor: "sms:" + phone1, Action: "reset", Username: "jdoe", Phone: phone1, Outcome: "ok"},
		{Time: t0.Add(2 * time.Minute), Actor: "sms:" + phone2, Action: "reset", Username: "asmith", Phone: phone2, Outcome: "rate_limited", Detail: "3 per hour"},
		{Time: t0.Add(3 * time.Minute), Actor: "system", Action: "unlock", Username: "jdoe", Outcome: "error", Detail: "directory down"},
	}
	var seqs []uint64
	for _, ev := range events {
		ev.Seq = 999 // the store assigns Seq; this must be ignored
		seq, err := s.AppendAudit(t.Context(), ev)
		if err != nil {
			t.Fatalf("AppendAudit(%s): %v", ev.Action, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func testAuditSequence(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	seqs := auditFixture(t, s)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("sequence numbers %v are not strictly increasing", seqs)
		}
	}
	got, err := s.Audit(t.Context(), enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(seqs) {
		t.Fatalf("Audit returned %d events, want %d", len(got), len(seqs))
	}
	for i, ev := range got {
		if ev.Seq != seqs[i] {
			t.Errorf("event %d: Seq %d, want %d (the one AppendAudit returned)", i, ev.Seq, seqs[i])
		}
	}
	first := got[0]
	if !first.Time.Equal(t0) || first.Actor != "admin:helpdesk" || first.Action != "enroll" || first.Username != "JDoe" ||
		first.Phone != phone1 || first.Outcome != "ok" || first.SourceIP != "192.0.2.7" {
		t.Errorf("first event = %+v: fields did not round-trip", first)
	}
	if got[2].Detail != "3 per hour" {
		t.Errorf("Detail = %q, want %q", got[2].Detail, "3 per hour")
	}
}

func testAuditFilters(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	seq := auditFixture(t, s)
	tests := []struct {
		name string
		f    enroll.AuditFilter
		want []uint64
	}{
		{"all", enroll.AuditFilter{}, seq},
		{"username", enroll.AuditFilter{Username: "jdoe"}, []uint64{seq[0], seq[1], seq[3]}},
		{"username any case", enroll.AuditFilter{Username: "JDOE"}, []uint64{seq[0], seq[1], seq[3]}},
		{"unknown username", enroll.AuditFilter{Username: "nobody"}, nil},
		{"action", enroll.AuditFilter{Action: "reset"}, []uint64{seq[1], seq[2]}},
		{"username and action", enroll.AuditFilter{Username: "jdoe", Action: "reset"}, []uint64{seq[1]}},
		{"since is inclusive", enroll.AuditFilter{Since: t0.Add(time.Minute)}, seq[1:]},
		{"until is exclusive", enroll.AuditFilter{Until: t0.Add(2 * time.Minute)}, seq[:2]},
		{"since and until", enroll.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, seq[1:3]},
		{"since in another zone", enroll.AuditFilter{Since: t0.Add(3 * time.Minute).In(time.FixedZone("CET", 3600))}, seq[3:]},
		{"after seq", enroll.AuditFilter{AfterSeq: seq[1]}, seq[2:]},
		{"after last", enroll.AuditFilter{AfterSeq: seq[3]}, nil},
		{"limit", enroll.AuditFilter{Limit: 2}, seq[:2]},
		{"after seq and limit (paging)", enroll.AuditFilter{AfterSeq: seq[0], Limit: 2}, seq[1:3]},
		{"limit counts matches", enroll.AuditFilter{Username: "jdoe", Limit: 2}, []uint64{seq[0], seq[1]}},
		{"before seq", enroll.AuditFilter{BeforeSeq: seq[2]}, seq[:2]},
		{"before first", enroll.AuditFilter{BeforeSeq: seq[0]}, nil},
		{"after and before", enroll.AuditFilter{AfterSeq: seq[0], BeforeSeq: seq[3]}, seq[1:3]},
		{"after and before, none between", enroll.AuditFilter{AfterSeq: seq[1], BeforeSeq: seq[2]}, nil},
		{"newest first", enroll.AuditFilter{Newest: true}, []uint64{seq[3], seq[2], seq[1], seq[0]}},
		{"newest limit keeps the newest", enroll.AuditFilter{Newest: true, Limit: 2}, []uint64{seq[3], seq[2]}},
		{"newest page below a seq", enroll.AuditFilter{Newest: true, BeforeSeq: seq[2], Limit: 1}, []uint64{seq[1]}},
		{"newest before a seq past the end", enroll.AuditFilter{Newest: true, BeforeSeq: seq[3] + 100}, []uint64{seq[3], seq[2], seq[1], seq[0]}},
		{"newest after seq", enroll.AuditFilter{Newest: true, AfterSeq: seq[1]}, []uint64{seq[3], seq[2]}},
		{"newest with filters", enroll.AuditFilter{Newest: true, Username: "jdoe", Limit: 2}, []uint64{seq[3], seq[1]}},
	}
	for _, tt := range tests {
		got, err := s.Audit(t.Context(), tt.f)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var seqs []uint64
		for _, ev := range got {
			seqs = append(seqs, ev.Seq)
		}
		if !slices.Equal(seqs, tt.want) {
			t.Errorf("%s: Audit(%+v) gave seqs %v, want %v", tt.name, tt.f, seqs, tt.want)
		}
	}
}

func testWalkAudit(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	seq := auditFixture(t, s)
	walk := func(f enroll.AuditFilter, stopAfter int) []uint64 {
		t.Helper()
		var got []uint64
		err := s.WalkAudit(t.Context(), f, func(ev enroll.Event) bool {
			got = append(got, ev.Seq)
			return len(got) < stopAfter
		})
		if err != nil {
			t.Fatalf("WalkAudit(%+v): %v", f, err)
		}
		return got
	}
	if got := walk(enroll.AuditFilter{}, 99); !slices.Equal(got, seq) {
		t.Errorf("WalkAudit gave %v, want %v (what Audit gives)", got, seq)
	}
	if got := walk(enroll.AuditFilter{Newest: true}, 2); !slices.Equal(got, []uint64{seq[3], seq[2]}) {
		t.Errorf("WalkAudit newest first, stopped after 2, gave %v, want %v", got, []uint64{seq[3], seq[2]})
	}
	if got := walk(enroll.AuditFilter{Action: "reset"}, 99); !slices.Equal(got, seq[1:3]) {
		t.Errorf("WalkAudit action reset gave %v, want %v", got, seq[1:3])
	}
	if got := walk(enroll.AuditFilter{Limit: 1, Newest: true}, 99); !slices.Equal(got, seq[3:]) {
		t.Errorf("WalkAudit limit 1 newest gave %v, want %v", got, seq[3:])
	}
	// The walk may read other things from the store meanwhile.
	n := 0
	err := s.WalkAudit(t.Context(), enroll.AuditFilter{}, func(enroll.Event) bool {
		if _, err := s.Enrollments(t.Context()); err != nil {
			t.Errorf("Enrollments inside WalkAudit: %v", err)
		}
		n++
		return true
	})
	if err != nil || n != len(seq) {
		t.Errorf("WalkAudit reading the store = %d events, %v; want %d", n, err, len(seq))
	}
}
