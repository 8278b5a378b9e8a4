package storetest

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

const budgetWindow = 24 * time.Hour

func spend(t *testing.T, s enroll.BudgetStore, at time.Time, limits ...enroll.BudgetLimit) int {
	t.Helper()
	i, err := s.SpendBudget(t.Context(), at, budgetWindow, limits)
	if err != nil {
		t.Fatalf("SpendBudget: %v", err)
	}
	return i
}

func budgetHits(t *testing.T, s enroll.BudgetStore, key string, at time.Time) int {
	t.Helper()
	n, err := s.BudgetHits(t.Context(), key, at, budgetWindow)
	if err != nil {
		t.Fatalf("BudgetHits(%s): %v", key, err)
	}
	return n
}

// testBudgetAllOrNothing: a send is charged to every counter or to none,
// each stops at its limit exactly, a refund frees one place, and the
// window moves on.
func testBudgetAllOrNothing(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	number := enroll.BudgetLimit{Key: "sms-budget:number:+15550003001", Limit: 3}
	day := enroll.BudgetLimit{Key: "sms-budget:day", Limit: 4}
	for i := range 3 {
		if got := spend(t, s, t0.Add(time.Duration(i)*time.Minute), number, day); got != -1 {
			t.Fatalf("send %d refused by limit %d", i+1, got)
		}
	}
	if got := spend(t, s, t0.Add(5*time.Minute), number, day); got != 0 {
		t.Fatalf("4th send to the number: %d, want refused by the number (0)", got)
	}
	if n := budgetHits(t, s, day.Key, t0.Add(5*time.Minute)); n != 3 {
		t.Fatalf("the day counted %d, want 3: a refused send was charged", n)
	}
	other := enroll.BudgetLimit{Key: "sms-budget:number:+15550003002", Limit: 3}
	if got := spend(t, s, t0.Add(6*time.Minute), other, day); got != -1 {
		t.Fatalf("send to another number: %d", got)
	}
	if got := spend(t, s, t0.Add(7*time.Minute), other, day); got != 1 {
		t.Fatalf("5th send of the day: %d, want refused by the day (1)", got)
	}
	if n := budgetHits(t, s, other.Key, t0.Add(7*time.Minute)); n != 1 {
		t.Fatalf("the other number counted %d, want 1", n)
	}
	if err := s.RefundBudget(t.Context(), []string{other.Key, day.Key}, t0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := budgetHits(t, s, day.Key, t0.Add(7*time.Minute)); n != 3 {
		t.Fatalf("after a refund the day counts %d, want 3", n)
	}
	if n := budgetHits(t, s, other.Key, t0.Add(7*time.Minute)); n != 0 {
		t.Fatalf("after a refund the other number counts %d, want 0", n)
	}
	// A refund of a time nothing was spent at changes nothing.
	if err := s.RefundBudget(t.Context(), []string{day.Key}, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := budgetHits(t, s, day.Key, t0.Add(7*time.Minute)); n != 3 {
		t.Fatalf("a refund of nothing changed the day to %d, want 3", n)
	}
	if n := budgetHits(t, s, number.Key, t0.Add(budgetWindow)); n != 2 {
		t.Fatalf("24 hours after the first send the number counts %d, want 2", n)
	}
	// Allow and SpendBudget share the windows: BudgetHits sees both.
	allow(t, s, "shared", t0, budgetWindow, 5)
	if n := budgetHits(t, s, "shared", t0.Add(time.Minute)); n != 1 {
		t.Fatalf("BudgetHits after one Allow = %d, want 1", n)
	}
}

// testBudgetConcurrent: of 40 concurrent sends against a budget of 25,
// exactly 25 are admitted.
func testBudgetConcurrent(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 40 {
		wg.Go(func() {
			i, err := s.SpendBudget(t.Context(), t0, budgetWindow, []enroll.BudgetLimit{{Key: "sms-budget:day", Limit: 25}})
			if err != nil {
				t.Error(err)
				return
			}
			if i == -1 {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 25 {
		t.Fatalf("%d sends admitted concurrently, want exactly 25", admitted)
	}
	if n := budgetHits(t, s, "sms-budget:day", t0); n != 25 {
		t.Fatalf("the day counts %d, want 25", n)
	}
}

func testBudgetInvalidInput(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	ok := enroll.BudgetLimit{Key: "sms-budget:day", Limit: 3}
	wantInvalid(t, map[string]func() error{
		"SpendBudget zero limit": func() error {
			_, err := s.SpendBudget(ctx, t0, budgetWindow, []enroll.BudgetLimit{ok, {Key: "x", Limit: 0}})
			return err
		},
		"SpendBudget empty key": func() error {
			_, err := s.SpendBudget(ctx, t0, budgetWindow, []enroll.BudgetLimit{{Key: "", Limit: 1}})
			return err
		},
		"SpendBudget long key": func() error {
			_, err := s.SpendBudget(ctx, t0, budgetWindow, []enroll.BudgetLimit{{Key: strings.Repeat("k", 513), Limit: 1}})
			return err
		},
		"SpendBudget zero now": func() error {
			_, err := s.SpendBudget(ctx, time.Time{}, budgetWindow, []enroll.BudgetLimit{ok})
			return err
		},
		"SpendBudget zero window": func() error {
			_, err := s.SpendBudget(ctx, t0, 0, []enroll.BudgetLimit{ok})
			return err
		},
		"RefundBudget zero time": func() error { return s.RefundBudget(ctx, []string{ok.Key}, time.Time{}) },
		"RefundBudget empty key": func() error { return s.RefundBudget(ctx, []string{""}, t0) },
		"BudgetHits empty key":   func() error { _, err := s.BudgetHits(ctx, "", t0, budgetWindow); return err },
		"BudgetHits zero now":    func() error { _, err := s.BudgetHits(ctx, ok.Key, time.Time{}, budgetWindow); return err },
		"BudgetHits zero window": func() error { _, err := s.BudgetHits(ctx, ok.Key, t0, 0); return err },
	})
	if n := budgetHits(t, s, ok.Key, t0); n != 0 {
		t.Errorf("refused calls counted %d hits", n)
	}
}

const redactSID = "SMabababababababababababababababab"

// testRedactionOnce: of concurrent EnqueueRedaction calls for one SID,
// exactly one queues it; the redaction carries no number and no body, is
// due at once at high priority, and cannot be given either later.
func testRedactionOnce(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[uint64]bool{}
	created := 0
	for range 10 {
		wg.Go(func() {
			id, queued, err := s.EnqueueRedaction(t.Context(), redactSID, "password", "jdoe", t0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[id] = true
			if queued {
				created++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ids) != 1 || created != 1 {
		t.Fatalf("ids %v, %d created; want one", ids, created)
	}
	due, err := s.DueMessages(t.Context(), t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Kind != enroll.KindRedact || due[0].Target != redactSID || due[0].To != "" ||
		len(due[0].Sealed) != 0 || due[0].Priority != enroll.PriorityHigh || due[0].Purpose != "password" ||
		due[0].Username != "jdoe" || due[0].Status != enroll.StatusQueued {
		t.Fatalf("due = %+v", due)
	}
	// Once settled, the SID is still remembered: a late report queues nothing.
	if err := s.UpdateMessage(t.Context(), due[0].ID, func(m *enroll.OutboundMessage) error {
		m.Status = enroll.StatusSent
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if id, queued, err := s.EnqueueRedaction(t.Context(), redactSID, "password", "jdoe", t0.Add(time.Hour)); err != nil || queued || id != due[0].ID {
		t.Errorf("EnqueueRedaction after it was sent = %d, %v, %v; want %d, false", id, queued, err, due[0].ID)
	}
	// A redaction is not an SMS: it cannot be given a number or a body.
	err = s.UpdateMessage(t.Context(), due[0].ID, func(m *enroll.OutboundMessage) error {
		m.To, m.Sealed = "+15550003003", []byte("x")
		return nil
	})
	if !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("redaction with a recipient: %v, want ErrInvalid", err)
	}
}

func testRedactionInvalidInput(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	bad := map[string]func() error{
		"EnqueueRedaction zero now": func() error {
			_, _, err := s.EnqueueRedaction(ctx, redactSID, "code", "", time.Time{})
			return err
		},
	}
	for _, sid := range []string{"", "CA" + strings.Repeat("0", 32), "SM123", "SM" + strings.Repeat("z", 32)} {
		bad["EnqueueRedaction "+sid] = func() error {
			_, _, err := s.EnqueueRedaction(ctx, sid, "code", "", t0)
			return err
		}
	}
	wantInvalid(t, bad)
	if due, err := s.DueMessages(ctx, t0.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("refused redactions queued %d messages, %v", len(due), err)
	}
}
