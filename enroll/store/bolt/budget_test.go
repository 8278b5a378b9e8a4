package bolt_test

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

func openBoltStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSpendBudgetIsAllOrNothing: a send is charged to every counter or to
// none, and each stops at its limit exactly.
func TestSpendBudgetIsAllOrNothing(t *testing.T) {
	s := openBoltStore(t)
	t0 := time.Date(2026, 3, 12, 10, 0, 0, 0, time.UTC)
	number := enroll.BudgetLimit{Key: "sms-budget:number:+15550003001", Limit: 3}
	day := enroll.BudgetLimit{Key: "sms-budget:day", Limit: 4}
	spend := func(at time.Time, limits ...enroll.BudgetLimit) int {
		t.Helper()
		i, err := s.SpendBudget(t.Context(), at, 24*time.Hour, limits)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	hits := func(key string, at time.Time) int {
		t.Helper()
		n, err := s.BudgetHits(t.Context(), key, at, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 3 {
		if got := spend(t0.Add(time.Duration(i)*time.Minute), number, day); got != -1 {
			t.Fatalf("send %d refused by limit %d", i+1, got)
		}
	}
	if got := spend(t0.Add(5*time.Minute), number, day); got != 0 {
		t.Fatalf("4th send to the number: %d, want refused by the number (0)", got)
	}
	if n := hits(day.Key, t0.Add(5*time.Minute)); n != 3 {
		t.Fatalf("the day counted %d, want 3: a refused send was charged", n)
	}
	other := enroll.BudgetLimit{Key: "sms-budget:number:+15550003002", Limit: 3}
	if got := spend(t0.Add(6*time.Minute), other, day); got != -1 {
		t.Fatalf("send to another number: %d", got)
	}
	if got := spend(t0.Add(7*time.Minute), other, day); got != 1 {
		t.Fatalf("5th send of the day: %d, want refused by the day (1)", got)
	}
	if n := hits(other.Key, t0.Add(7*time.Minute)); n != 1 {
		t.Fatalf("the other number counted %d, want 1", n)
	}
	// A refund frees one place; the window then moves on.
	if err := s.RefundBudget(t.Context(), []string{other.Key, day.Key}, t0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := hits(day.Key, t0.Add(7*time.Minute)); n != 3 {
		t.Fatalf("after a refund the day counts %d, want 3", n)
	}
	if n := hits(number.Key, t0.Add(24*time.Hour)); n != 2 {
		t.Fatalf("24 hours after the first send the number counts %d, want 2", n)
	}
	if _, err := s.SpendBudget(t.Context(), t0, 24*time.Hour, []enroll.BudgetLimit{{Key: "x", Limit: 0}}); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("zero limit: %v, want ErrInvalid", err)
	}
}

func TestSpendBudgetConcurrentExactly(t *testing.T) {
	s := openBoltStore(t)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 40 {
		wg.Go(func() {
			i, err := s.SpendBudget(t.Context(), now, 24*time.Hour, []enroll.BudgetLimit{{Key: "sms-budget:day", Limit: 25}})
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
}

// TestEnqueueRedactionOnce: one redaction per SID, carrying no number and
// no body; bad SIDs are refused.
func TestEnqueueRedactionOnce(t *testing.T) {
	s := openBoltStore(t)
	now := time.Now()
	sid := "SM" + strings.Repeat("ab", 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[uint64]bool{}
	created := 0
	for range 10 {
		wg.Go(func() {
			id, queued, err := s.EnqueueRedaction(t.Context(), sid, "password", "", now)
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
	due, err := s.DueMessages(t.Context(), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Kind != enroll.KindRedact || due[0].Target != sid || due[0].To != "" ||
		len(due[0].Sealed) != 0 || due[0].Priority != enroll.PriorityHigh {
		t.Fatalf("due = %+v", due)
	}
	for _, bad := range []string{"", "CA" + strings.Repeat("0", 32), "SM123", "SM" + strings.Repeat("z", 32)} {
		if _, _, err := s.EnqueueRedaction(t.Context(), bad, "code", "", now); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("EnqueueRedaction(%q): %v, want ErrInvalid", bad, err)
		}
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
