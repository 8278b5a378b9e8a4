package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

func TestOutboxDelivers(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	ob, _ := r.Start(outbox.Options{Poll: time.Hour}) // only Notify wakes it
	time.Sleep(20 * time.Millisecond)                 // let the first pass find nothing
	sms := r.Enqueue(enroll.KindSMS, "+15550001001", "Your code is 314159", enroll.PriorityHigh)
	call := r.Enqueue(enroll.KindCall, "+15550001002", "Your code is 271828", enroll.PriorityHigh)
	ob.Notify()
	m := r.WaitStatus(sms, enroll.StatusSent)
	c := r.WaitStatus(call, enroll.StatusSent)
	for _, got := range []enroll.OutboundMessage{m, c} {
		res, ok := r.Fake.Resource(got.ProviderID)
		if !ok || got.Attempts != 1 || got.ErrorCode != 0 || got.LastError != "" {
			t.Errorf("message %+v (fake: %v)", got, ok)
		}
		switch got.Kind {
		case enroll.KindSMS:
			if res.Body != "Your code is 314159" || res.To != "+15550001001" {
				t.Errorf("fake got SMS %+v", res)
			}
		case enroll.KindCall:
			if !strings.Contains(res.Twiml, "2 7 1 8 2 8") || !strings.Contains(res.Twiml, `language="en-US"`) {
				t.Errorf("fake got call TwiML %s", res.Twiml)
			}
		}
	}
}

func TestOutboxNotifyNeverBlocks(t *testing.T) {
	ob := outbox.New(testkit.OpenStore(t), testkit.Sealer(t), outbox.LocalSender{}, nil, outbox.Options{})
	done := make(chan struct{})
	go func() {
		for range 100 {
			ob.Notify()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocked without a running worker")
	}
}

func TestOutboxRunsOnce(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	ob, _ := r.Start(outbox.Options{})
	time.Sleep(10 * time.Millisecond)
	if err := ob.Run(t.Context()); !errors.Is(err, jobs.ErrRunning) {
		t.Errorf("a second Run on the same Outbox: %v, want jobs.ErrRunning", err)
	}
	// Another node's worker on the same store is kept out by the lease.
	other := outbox.New(r.Store, r.Sealer, r.Sender, nil, outbox.Options{Node: "node-b"})
	if err := other.Run(t.Context()); !errors.Is(err, jobs.ErrRunning) {
		t.Errorf("a second node's Run: %v, want jobs.ErrRunning", err)
	}
}

// TestOutboxLeaseEndsWithRun: a Run that ends gives the worker's lease
// back, so the next runner (a restarted process, another node) starts at
// once.
func TestOutboxLeaseEndsWithRun(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	_, stop := r.Start(outbox.Options{})
	time.Sleep(10 * time.Millisecond)
	stop()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	other := outbox.New(r.Store, r.Sealer, r.Sender, nil, outbox.Options{Node: "node-b", Poll: time.Hour})
	go func() { done <- other.Run(ctx) }()
	sms := r.Enqueue(enroll.KindSMS, "+15550001003", "Your code is 161803", enroll.PriorityHigh)
	other.Notify()
	r.WaitStatus(sms, enroll.StatusSent)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the next runner's Run: %v", err)
	}
}

func TestOutboxRetriesUntilTheProviderRecovers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		outage func(f *twiliotest.Fake)
	}{
		{"down", func(f *twiliotest.Fake) { f.Down(300 * time.Millisecond) }},
		{"rate limited", func(f *twiliotest.Fake) { f.FailNext(4, 429, 20429) }},
		{"unavailable", func(f *twiliotest.Fake) { f.FailNext(3, 503, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testkit.NewOutboxRig(t)
			tc.outage(r.Fake)
			var ids []uint64
			for i := range 3 {
				ids = append(ids, r.Enqueue(enroll.KindSMS, fmt.Sprintf("+1555000200%d", i), "Your code is 112358", enroll.PriorityHigh))
			}
			r.Start(outbox.Options{})
			for i, id := range ids {
				m := r.WaitStatus(id, enroll.StatusSent)
				to := fmt.Sprintf("+1555000200%d", i)
				if n := r.Accepted(to); n != 1 {
					t.Errorf("message %d was delivered %d times", id, n)
				}
				if i == 0 && m.Attempts < 2 {
					t.Errorf("first message sent after %d attempts; the outage should have cost some", m.Attempts)
				}
			}
			// Failed attempts were spaced by the backoff, not fired in a burst.
			var last time.Time
			for _, req := range r.Fake.Requests() {
				if req.Status < 400 {
					continue
				}
				if !last.IsZero() && req.Time.Sub(last) < 10*time.Millisecond {
					t.Errorf("failed requests %v apart; the backoff is at least 10ms", req.Time.Sub(last))
				}
				last = req.Time
			}
			// Nothing more is sent later.
			time.Sleep(300 * time.Millisecond)
			for i := range ids {
				if n := r.Accepted(fmt.Sprintf("+1555000200%d", i)); n != 1 {
					t.Errorf("message %d delivered %d times", i, n)
				}
			}
		})
	}
}

func TestOutboxFinalErrorsAreNotRetried(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	r.Fake.Reject("+15550003001", 400, 21610)
	r.Fake.Reject("+15550003002", 400, 21211)
	optedOut := r.Enqueue(enroll.KindSMS, "+15550003001", "Your code is 999111", enroll.PriorityHigh)
	invalid := r.Enqueue(enroll.KindCall, "+15550003002", "Your code is 999222", enroll.PriorityHigh)
	fine := r.Enqueue(enroll.KindSMS, "+15550003003", "Your code is 999333", enroll.PriorityHigh)
	r.Start(outbox.Options{})
	r.WaitStatus(fine, enroll.StatusSent)
	for id, code := range map[uint64]int{optedOut: 21610, invalid: 21211} {
		m := r.WaitStatus(id, enroll.StatusRejected)
		if m.ErrorCode != code || m.Attempts != 1 || m.LastError == "" || m.ProviderID != "" {
			t.Errorf("rejected message %+v, want error code %d after 1 attempt", m, code)
		}
	}
	time.Sleep(300 * time.Millisecond) // longer than BackoffMax
	for _, to := range []string{"+15550003001", "+15550003002"} {
		if n := r.Attempts(to); n != 1 {
			t.Errorf("%s was tried %d times after a final error", to, n)
		}
	}
}

func TestOutboxExpires(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	r.Fake.Down(time.Hour)
	id := r.Enqueue(enroll.KindSMS, "+15550004001", "Your code is 555666", enroll.PriorityHigh)
	r.Start(outbox.Options{MaxAttempts: 3, BackoffMax: 40 * time.Millisecond})
	m := r.WaitStatus(id, enroll.StatusExpired)
	if m.Attempts != 3 || r.Attempts("+15550004001") != 3 || !strings.Contains(m.LastError, "3 attempts") {
		t.Errorf("expired message %+v after %d requests, want 3", m, r.Attempts("+15550004001"))
	}

	// Too old to be worth sending: expired without a request.
	r2 := testkit.NewOutboxRig(t)
	old := time.Now().Add(-25 * time.Hour)
	id2, err := r2.Store.EnqueueMessage(t.Context(), enroll.OutboundMessage{Kind: enroll.KindSMS, To: "+15550004002",
		Sealed: r2.Sealer.Seal([]byte("stale"), "outbox"), Priority: enroll.PriorityHigh, Status: enroll.StatusQueued,
		NextAttempt: old, CreatedAt: old, UpdatedAt: old})
	if err != nil {
		t.Fatal(err)
	}
	r2.Start(outbox.Options{})
	r2.WaitStatus(id2, enroll.StatusExpired)
	if n := len(r2.Fake.Requests()); n != 0 {
		t.Errorf("a message older than MaxAge cost %d requests", n)
	}
}

func TestOutboxContinuesAfterRestart(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	r.Fake.Down(time.Hour)
	var ids []uint64
	for i := range 3 {
		ids = append(ids, r.Enqueue(enroll.KindSMS, fmt.Sprintf("+1555000500%d", i), "Your code is 424242", enroll.PriorityHigh))
	}
	_, stop := r.Start(outbox.Options{})
	testkit.Eventually(t, "a failed attempt", func() bool { return r.Message(ids[0]).Status == enroll.StatusRetry })
	stop()
	before := len(r.Fake.Requests())
	time.Sleep(100 * time.Millisecond)
	if after := len(r.Fake.Requests()); after != before {
		t.Errorf("%d requests after Run returned", after-before)
	}
	r.Fake.Up()

	// A new worker on the same store, never notified: it finds the work itself.
	r.Start(outbox.Options{})
	for i, id := range ids {
		r.WaitStatus(id, enroll.StatusSent)
		if n := r.Accepted(fmt.Sprintf("+1555000500%d", i)); n != 1 {
			t.Errorf("message %d delivered %d times", id, n)
		}
	}
}

func TestOutboxResendsAMessageClaimedBeforeACrash(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	id := r.Enqueue(enroll.KindSMS, "+15550006001", "Your code is 808080", enroll.PriorityHigh)
	// What a worker leaves when it dies during the provider call.
	err := r.Store.UpdateMessage(t.Context(), id, func(m *enroll.OutboundMessage) error {
		m.Attempts, m.NextAttempt = 1, time.Now().Add(150*time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Start(outbox.Options{})
	m := r.WaitStatus(id, enroll.StatusSent)
	if time.Since(start) < 100*time.Millisecond || m.Attempts != 2 {
		t.Errorf("resent after %v with %d attempts; want it after the claim ran out, as attempt 2", time.Since(start), m.Attempts)
	}
}

func TestOutboxPriorityOrder(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	calls := &callTimes{Sender: r.Sender}
	r.Sender = calls
	var low, high []uint64
	for i := range 3 {
		low = append(low, r.Enqueue(enroll.KindSMS, fmt.Sprintf("+1555000700%d", i), "Reminder", enroll.PriorityLow))
	}
	for i := range 3 {
		high = append(high, r.Enqueue(enroll.KindSMS, fmt.Sprintf("+1555000800%d", i), "Your code is 1", enroll.PriorityHigh))
	}
	r.Start(outbox.Options{Batch: 2, RatePerSecond: 10})
	for _, id := range append(high, low...) {
		r.WaitStatus(id, enroll.StatusSent)
	}
	var order []string
	for _, res := range r.Fake.Resources() {
		order = append(order, res.To)
	}
	want := []string{"+15550008000", "+15550008001", "+15550008002", "+15550007000", "+15550007001", "+15550007002"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("send order %v, want %v", order, want)
	}
	// 10 per second: the three low-priority sends span about 200 ms. An
	// unpaced queue sends them within a few milliseconds; the bound leaves
	// room for a loaded machine (it can only make the span longer, bar the
	// jitter of the store write before each send).
	lowTimes := calls.times("Reminder")
	if len(lowTimes) != 3 {
		t.Fatalf("%d low-priority sends, want 3", len(lowTimes))
	}
	if span := lowTimes[2].Sub(lowTimes[0]); span < 120*time.Millisecond {
		t.Errorf("low-priority sends spread over %v, want about 200ms (10 per second)", span)
	}
}

// callTimes records when the sender was asked to send each body.
type callTimes struct {
	outbox.Sender
	mu  sync.Mutex
	log []struct {
		body string
		at   time.Time
	}
}

func (c *callTimes) SendSMS(ctx context.Context, to, body string) (outbox.Receipt, error) {
	c.mu.Lock()
	c.log = append(c.log, struct {
		body string
		at   time.Time
	}{body, time.Now()})
	c.mu.Unlock()
	return c.Sender.SendSMS(ctx, to, body)
}

func (c *callTimes) times(body string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, e := range c.log {
		if e.body == body {
			out = append(out, e.at)
		}
	}
	return out
}

// echoingSender fails with an error that repeats what it was asked to send.
type echoingSender struct{ final bool }

func (s echoingSender) SendSMS(_ context.Context, to, body string) (outbox.Receipt, error) {
	return outbox.Receipt{}, &outbox.SendError{Final: s.final, Code: 21617, Message: "cannot send " + body}
}

func (s echoingSender) Call(_ context.Context, to, text, _ string) (outbox.Receipt, error) {
	return outbox.Receipt{}, errors.New("cannot say " + text)
}

func TestOutboxNeverLogsOrStoresTheBody(t *testing.T) {
	const (
		code     = "Your code is 602214"
		password = "Your new password is Qx7-Mv2-Lp9"
		spoken   = "Your code is 161803"
	)
	r := testkit.NewOutboxRig(t)
	r.Fake.FailNext(2, 500, 20500)
	r.Fake.Reject("+15550009002", 400, 21610)
	ids := []uint64{
		r.Enqueue(enroll.KindSMS, "+15550009001", code, enroll.PriorityHigh),
		r.Enqueue(enroll.KindSMS, "+15550009002", password, enroll.PriorityHigh),
		r.Enqueue(enroll.KindCall, "+15550009003", spoken, enroll.PriorityHigh),
	}
	r.Start(outbox.Options{})
	r.WaitStatus(ids[0], enroll.StatusSent)
	r.WaitStatus(ids[1], enroll.StatusRejected)
	r.WaitStatus(ids[2], enroll.StatusSent)

	// A sender whose errors echo the body, final and not.
	r2 := testkit.NewOutboxRig(t)
	r2.Logs = r.Logs
	r2.Sender = echoingSender{final: true}
	e1 := r2.Enqueue(enroll.KindSMS, "+15550009004", password, enroll.PriorityHigh)
	_, stop := r2.Start(outbox.Options{})
	r2.WaitStatus(e1, enroll.StatusRejected)
	stop()
	r2.Sender = echoingSender{}
	e2 := r2.Enqueue(enroll.KindCall, "+15550009005", spoken, enroll.PriorityHigh)
	r2.Start(outbox.Options{MaxAttempts: 2})
	r2.WaitStatus(e2, enroll.StatusExpired)

	logs := r.Logs.String()
	if !strings.Contains(logs, "outbox: sent") || !strings.Contains(logs, "will retry") || !strings.Contains(logs, "rejected") {
		t.Errorf("the logs miss the expected events:\n%s", logs)
	}
	stored := ""
	for _, s := range []*bolt.Store{r.Store, r2.Store} {
		all, err := s.Messages(t.Context(), enroll.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range all {
			stored += m.LastError + "\n"
		}
	}
	for _, secret := range []string{code, password, spoken, "602214", "Qx7-Mv2-Lp9", "161803", "1 6 1 8 0 3"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q:\n%s", secret, logs)
		}
		if strings.Contains(stored, secret) {
			t.Errorf("a stored error holds %q:\n%s", secret, stored)
		}
	}
	for _, phone := range []string{"+15550009001", "+15550009002", "+15550009003"} {
		if strings.Contains(logs, phone) {
			t.Errorf("the logs hold the phone number %s", phone)
		}
	}
}

func TestOutboxWithLocalSender(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	r.Sender = outbox.LocalSender{}
	id := r.Enqueue(enroll.KindSMS, "+15550009101", "demo", enroll.PriorityHigh)
	r.Start(outbox.Options{})
	m := r.WaitStatus(id, enroll.StatusSent)
	if !strings.HasPrefix(m.ProviderID, "OB") || len(r.Fake.Requests()) != 0 {
		t.Errorf("local send gave %+v and %d provider requests", m, len(r.Fake.Requests()))
	}
}
