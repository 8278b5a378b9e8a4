package enroll_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func TestSummary(t *testing.T) {
	h := newHarness(t)
	now := t0.Add(30 * 24 * time.Hour)
	h.clock.Set(now)
	h.enrolled("jdoe", phoneJdoe, "en")
	h.enrolled("asmith", phoneOther, "en")
	if _, err := h.svc.Deactivate(h.ctx, "asmith", "admin:root"); err != nil {
		t.Fatal(err)
	}
	if err := h.store.PutEnrollment(h.ctx, enroll.Enrollment{Username: "frozen1", Phone: phoneFR, State: enroll.StateFrozen,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	seed := []enroll.Event{
		{Time: ago(10 * 24 * time.Hour), Action: "reset", Outcome: "ok"}, // too old
		{Time: ago(8 * 24 * time.Hour), Action: "lockout_alert", Outcome: "ok", Username: "old", Detail: "locked at 1"},
		{Time: ago(6 * 24 * time.Hour), Action: "reset", Outcome: "ok"},
		{Time: ago(5 * 24 * time.Hour), Action: "reset", Outcome: "error"},
		{Time: ago(3 * 24 * time.Hour), Action: "lockout", Outcome: "not_enrolled", Username: "bob", Detail: "locked at 2"},
		{Time: ago(3 * 24 * time.Hour), Action: "reset_web", Outcome: "ok"},
		{Time: ago(2 * time.Hour), Action: "reset", Outcome: "ok"},
		{Time: ago(90 * time.Minute), Action: "reset", Outcome: "rate_limited"},
		{Time: ago(80 * time.Minute), Action: "reset_web", Outcome: "partial"},
		{Time: ago(70 * time.Minute), Action: "reset_web", Outcome: "bad_code"}, // a step, not a reset
		{Time: ago(time.Hour), Action: "lockout_alert", Outcome: "ok", Username: "jdoe", Detail: "locked at 3; message 7"},
		// The same lockout audited twice counts once.
		{Time: ago(59 * time.Minute), Action: "lockout_alert", Outcome: "error", Username: "JDoe", Detail: "locked at 3; queue failed"},
		{Time: ago(30 * time.Minute), Action: "lockout_storm_suppressed", Outcome: "suppressed", Username: "carol", Detail: "locked at 4"},
		{Time: ago(24*time.Hour + time.Second), Action: "reset", Outcome: "ok"}, // just outside the day, appended late
		{Time: ago(10 * time.Minute), Action: "reset", Outcome: "ok"},
		{Time: now.Add(time.Hour), Action: "reset", Outcome: "ok"}, // after now: not counted
	}
	for _, ev := range seed {
		ev.Actor = "system"
		if _, err := h.store.AppendAudit(h.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := h.svc.Summary(h.ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	wantStates := map[enroll.State]int{enroll.StatePending: 0, enroll.StateActive: 1, enroll.StateFrozen: 1, enroll.StateDeactivated: 1}
	if fmt.Sprint(sum.Enrollments) != fmt.Sprint(wantStates) {
		t.Errorf("enrollments %v, want %v", sum.Enrollments, wantStates)
	}
	for name, got := range map[string][2]int{
		"resets":        {sum.Resets.Day, sum.Resets.Week},
		"resets failed": {sum.ResetsFailed.Day, sum.ResetsFailed.Week},
		"lockouts":      {sum.Lockouts.Day, sum.Lockouts.Week},
		"web resets":    {sum.WebResets.Day, sum.WebResets.Week},
	} {
		want := map[string][2]int{"resets": {2, 4}, "resets failed": {1, 2}, "lockouts": {2, 3}, "web resets": {1, 2}}[name]
		if got != want {
			t.Errorf("%s (day, week) = %v, want %v", name, got, want)
		}
	}
	all, err := h.store.Audit(h.ctx, enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := len(all) - 1; i >= 0 && len(want) < 20; i-- {
		want = append(want, all[i].Seq)
	}
	var got []uint64
	for _, ev := range sum.Recent {
		got = append(got, ev.Seq)
	}
	if !slices.Equal(got, want) {
		t.Errorf("recent seqs %v, want the newest 20 newest first %v", got, want)
	}

	// An empty store has every state at zero and an empty (not nil) list.
	empty, err := newHarness(t).svc.Summary(h.ctx, now)
	if err != nil || len(empty.Enrollments) != 4 || empty.Recent == nil || len(empty.Recent) != 0 {
		t.Errorf("empty summary = %+v, %v", empty, err)
	}
}

// BenchmarkSummary measures the dashboard's Summary over 100,000 audit
// events (5,000 under -short): "spread" holds 90 days of activity (the usual case: the walk
// stops at the week), "week" has all of them in the last 7 days (the
// worst case: every event is read).
func BenchmarkSummary(b *testing.B) {
	for _, tc := range []struct {
		name string
		span time.Duration
	}{{"spread90d", 90 * 24 * time.Hour}, {"week", 7 * 24 * time.Hour}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b)
			now := t0.Add(100 * 24 * time.Hour)
			n, writers := 100_000, 100
			if testing.Short() { // make test runs every benchmark once, small
				n = 5_000
			}
			actions := []string{"reset", "lockout_alert", "enroll", "unlock", "reset_notice"}
			// Concurrent writers share commits (group commit), which makes
			// loading 100,000 events quick; fed in time order, they leave
			// the trail in time order to within a few events, as in real
			// life, where each event is stamped when it is appended.
			feed := make(chan enroll.Event)
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for ev := range feed {
						if _, err := h.store.AppendAudit(h.ctx, ev); err != nil {
							b.Error(err)
						}
					}
				})
			}
			for i := range n {
				at := now.Add(-tc.span + tc.span/time.Duration(n)*time.Duration(i))
				feed <- enroll.Event{Time: at, Actor: "sms:+12015550123", Action: actions[i%len(actions)],
					Username: fmt.Sprintf("user%05d", i%5000), Phone: "+12015550123", Outcome: "ok",
					Detail: "locked at " + at.Format(time.RFC3339)}
			}
			close(feed)
			wg.Wait()
			// One in five events is a reset: the week's share of them.
			want := int(float64(n/len(actions)) * float64(7*24*time.Hour) / float64(tc.span))
			s, err := h.svc.Summary(h.ctx, now)
			if err != nil || s.Resets.Week < want-2 || s.Resets.Week > want+2 || len(s.Recent) != 20 {
				b.Fatalf("Summary = %+v, %v; want about %d resets in the week", s.Resets, err, want)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.svc.Summary(h.ctx, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
