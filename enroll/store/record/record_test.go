package record

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func TestWindowAllowKeepsTheLimit(t *testing.T) {
	var w Window
	for i, want := range []bool{true, true, true, false} {
		if got := w.Allow(int64(10+i), 100, 3); got != want {
			t.Fatalf("hit %d: Allow = %v, want %v (hits %v)", i, got, want, w.Hits)
		}
	}
	if !w.Allow(111, 100, 3) { // the hits at 10 and 11 left the window (a hit counts while 111-100 < hit)
		t.Fatalf("Allow after the window moved = false, hits %v", w.Hits)
	}
	if !slices.Equal(w.Hits, []int64{12, 111}) {
		t.Fatalf("hits = %v, want [12 111]", w.Hits)
	}
}

func TestWindowAddInOrderAndRemove(t *testing.T) {
	w := Window{Window: 100}
	for _, at := range []int64{30, 10, 20, 20} {
		w.Add(at)
	}
	if !slices.Equal(w.Hits, []int64{10, 20, 20, 30}) {
		t.Fatalf("hits = %v, want sorted", w.Hits)
	}
	if !w.Remove(20) || !slices.Equal(w.Hits, []int64{10, 20, 30}) {
		t.Fatalf("Remove(20): hits %v, want one 20 removed", w.Hits)
	}
	if w.Remove(99) {
		t.Fatal("Remove of a hit that is not there = true")
	}
	if n := w.Count(30, 15); n != 2 {
		t.Fatalf("Count(30, 15) = %d, want 2 (20 and 30)", n)
	}
}

func TestWindowPurge(t *testing.T) {
	w := Window{Window: 10, Hits: []int64{1, 5, 20}}
	if drop, changed := w.Purge(12); drop || !changed || !slices.Equal(w.Hits, []int64{5, 20}) {
		t.Fatalf("Purge(12) = %v,%v hits %v", drop, changed, w.Hits)
	}
	if drop, changed := w.Purge(13); drop || changed {
		t.Fatalf("Purge(13) with nothing to drop = %v,%v", drop, changed)
	}
	if drop, _ := w.Purge(100); !drop {
		t.Fatal("Purge past every hit does not drop the record")
	}
}

func TestGuardBlocksAtTheLimitAndRefundLifts(t *testing.T) {
	var g Guard
	for i := range 2 {
		if ok, until := g.Attempt(int64(i), 100, 3, 1000); !ok || until != 0 {
			t.Fatalf("attempt %d = %v,%d", i, ok, until)
		}
	}
	if ok, until := g.Attempt(2, 100, 3, 1000); !ok || until != 1000 {
		t.Fatalf("third attempt = %v,%d, want allowed and blocked until 1000", ok, until)
	}
	if ok, until := g.Attempt(3, 100, 3, 2000); ok || until != 1000 {
		t.Fatalf("attempt while blocked = %v,%d, want refused until 1000", ok, until)
	}
	if !g.Refund(2, 4) || g.BlockedAt(5) || len(g.Hits) != 2 {
		t.Fatalf("refund during the block: %+v", g)
	}
	if g.Refund(2, 5) {
		t.Fatal("a second refund of the same attempt changed the record")
	}
}

func TestGuardEndedBlockStartsAfresh(t *testing.T) {
	g := Guard{Until: 50, Window: Window{Window: 100, Hits: []int64{1, 2, 3}}}
	if g.Refund(1, 60) {
		t.Fatal("refund after the block ended changed the record")
	}
	if drop, _ := g.Purge(60); !drop {
		t.Fatal("purge after the block ended keeps the record")
	}
	if ok, until := g.Attempt(60, 100, 3, 500); !ok || until != 0 || !slices.Equal(g.Hits, []int64{60}) {
		t.Fatalf("attempt after the block = %v,%d hits %v, want counting afresh", ok, until, g.Hits)
	}
	live := Guard{Until: 500, Window: Window{Window: 10, Hits: []int64{1}}}
	if drop, changed := live.Purge(100); drop || changed {
		t.Fatalf("purge of a live block = %v,%v, want it left with its attempts", drop, changed)
	}
}

func TestUpdateRulesKeepIdentity(t *testing.T) {
	msg := enroll.OutboundMessage{ID: 7, Kind: enroll.KindSMS, To: "+15551234567", Sealed: []byte{1, 2}, Status: enroll.StatusQueued, Purpose: "code"}
	if _, err := UpdateMessage(msg, func(m *enroll.OutboundMessage) error { m.ID = 8; return nil }); !errors.Is(err, enroll.ErrInvalid) {
		t.Fatalf("UpdateMessage changing the ID = %v, want ErrInvalid", err)
	}
	got, _ := UpdateMessage(msg, func(m *enroll.OutboundMessage) error { m.Sealed[0] = 9; return nil })
	if msg.Sealed[0] != 1 || got.Sealed[0] != 9 {
		t.Fatalf("UpdateMessage changed the stored copy's sealed body: old %v new %v", msg.Sealed, got.Sealed)
	}
	mail := enroll.QueuedMail{ID: 3}
	if _, err := UpdateMail(mail, func(m *enroll.QueuedMail) error { m.ID = 4; return nil }); !errors.Is(err, enroll.ErrInvalid) {
		t.Fatalf("UpdateMail changing the ID = %v, want ErrInvalid", err)
	}
	act := enroll.Activation{TokenHash: "h", Username: "jdoe"}
	if _, err := UpdateActivation(act, func(a *enroll.Activation) error { a.Username = "other"; return nil }); !errors.Is(err, enroll.ErrInvalid) {
		t.Fatalf("UpdateActivation changing the user = %v, want ErrInvalid", err)
	}
	if _, err := UsedLink("h", act, "other", enroll.Enrollment{Username: "other"}); !errors.Is(err, enroll.ErrInvalid) {
		t.Fatalf("UsedLink for another user = %v, want ErrInvalid", err)
	}
	verified := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := UsedLink("h", act, "jdoe", enroll.Enrollment{Username: "JDoe", VerifiedAt: verified})
	if err != nil || l.Reason != enroll.LinkUsed || !l.At.Equal(verified) || l.TokenHash != "h" {
		t.Fatalf("UsedLink = %+v, %v; want used at the verification", l, err)
	}
}
