package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// sendsOnly hides every method of a Sender but SendSMS and Call: a
// provider that cannot say whether it accepted a message.
type sendsOnly struct{ s outbox.Sender }

func (p sendsOnly) SendSMS(ctx context.Context, to, body string) (outbox.Receipt, error) {
	return p.s.SendSMS(ctx, to, body)
}

func (p sendsOnly) Call(ctx context.Context, to, say, lang string) (outbox.Receipt, error) {
	return p.s.Call(ctx, to, say, lang)
}

// pausedMidSend is term 1's sender: the real send goes out (or, with
// skip, the leader stops just before it), then the leader "pauses" past
// its term (depose deletes the election key) before the worker records
// the outcome, so that its write is fenced.
type pausedMidSend struct {
	outbox.Sender
	skip   bool
	depose func()
	sent   chan outbox.Receipt
}

func (p pausedMidSend) SendSMS(ctx context.Context, to, body string) (outbox.Receipt, error) {
	r, err := outbox.Receipt{}, error(&outbox.SendError{Message: "paused before the send"})
	if !p.skip {
		r, err = p.Sender.SendSMS(ctx, to, body)
	}
	p.depose()
	p.sent <- r
	return r, err
}

// term1Store gives the outbox lease back outside the fence when term 1's
// worker stops, as if the lease had run out: term 2's worker then starts at
// once instead of after the lease's 30 s (the lease is gateway/jobs'
// business; here only the message writes are fenced).
type term1Store struct{ *etcd.Store }

func (s term1Store) ReleaseLease(_ context.Context, name, holder string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Store.ReleaseLease(ctx, name, holder)
}

// unknownRig is two nodes' stores on one real etcd cluster, the fake
// Twilio, and the election key whose revision fences each term.
type unknownRig struct {
	t      *testing.T
	cli    *clientv3.Client
	store1 *etcd.Store // term 1's node
	store2 *etcd.Store // term 2's node
	sealer *enroll.Sealer
	fake   *twiliotest.Fake
	key    string // the election key
}

func newUnknownRig(t *testing.T) *unknownRig {
	c := etcdlab.New(t, etcdlab.Options{Members: 1})
	cli := c.Client(t)
	prefix := c.Prefix(t)
	open := func() *etcd.Store {
		s, err := etcd.New(t.Context(), cli, etcd.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1, s2 := open(), open()
	return &unknownRig{t: t, cli: cli, store1: s1, store2: s2, sealer: testkit.Sealer(t),
		fake: testkit.NewFake(t), key: s1.Prefix() + "election/outbox-test"}
}

// term starts a term: the election key created anew (its creation
// revision is the fence), its fence in ctx.
func (r *unknownRig) term(node string) context.Context {
	r.depose()
	put, err := r.cli.Put(r.t.Context(), r.key, node)
	if err != nil {
		r.t.Fatal(err)
	}
	return enroll.WithFence(context.Background(), enroll.Fence{Key: r.key, Revision: put.Header.Revision})
}

// depose ends the current term: the election key is gone.
func (r *unknownRig) depose() {
	if _, err := r.cli.Delete(context.Background(), r.key); err != nil {
		r.t.Error(err)
	}
}

func (r *unknownRig) enqueue(purpose, to, body string) uint64 {
	now := time.Now()
	id, err := r.store1.EnqueueMessage(r.t.Context(), enroll.OutboundMessage{Kind: enroll.KindSMS, To: to,
		Sealed: r.sealer.Seal([]byte(body), outbox.SealPurpose), Language: "en", Purpose: purpose, Username: "jdoe",
		Priority: enroll.PriorityHigh, Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *unknownRig) message(id uint64) enroll.OutboundMessage {
	all, err := r.store2.Messages(r.t.Context(), enroll.OutboxFilter{})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	r.t.Fatalf("message %d is not in the store", id)
	return enroll.OutboundMessage{}
}

// accepted lists the SMS the fake accepted for to.
func (r *unknownRig) accepted(to string) []twiliotest.Resource {
	var out []twiliotest.Resource
	for _, res := range r.fake.Resources() {
		if res.To == to {
			out = append(out, res)
		}
	}
	return out
}

// run runs a worker on store with ctx (a term's fence) until stop.
func (r *unknownRig) run(ctx context.Context, store outbox.Store, sender outbox.Sender, logs *testkit.LockedBuffer) (stop func()) {
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ob := outbox.New(store, r.sealer, sender, log, outbox.Options{BackoffBase: 300 * time.Millisecond,
		BackoffMax: time.Second, Poll: 50 * time.Millisecond, SendTimeout: 5 * time.Second,
		Audit: r.store2, Node: "node-" + strings.ReplaceAll(r.t.Name(), "/", "-")})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := ob.Run(ctx)
		if ctx.Err() == nil {
			r.t.Errorf("Run returned before it was stopped: %v", err)
		}
		done <- err
	}()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, enroll.ErrFenced) {
				r.t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			r.t.Error("Run did not return after its context ended")
		}
	}
}

// TestSendOutcomeUnknownAfterDeposedLeader is PauseLeaderMidSend on a real
// store: term 1's worker claims a message and Twilio accepts it, then the
// leader is deposed before it records the outcome, so its write is fenced
// (ErrFenced) and the message keeps its claim and its send mark. Term 2's
// worker finds the claim run out. When the sender can ask Twilio
// (twilio.Sender.FindSent), the message found there is recorded as sent,
// with the first send's SID: one SMS. When it cannot, a lockout alert is
// not texted again (one SMS; the message ends unknown), while a password,
// whose loss would leave the user without one, is (two SMS). And a claim
// whose send never left is found missing at Twilio and sent: one SMS.
// Each settlement of a doubt is audited, without the number or the body.
func TestSendOutcomeUnknownAfterDeposedLeader(t *testing.T) {
	r := newUnknownRig(t)
	cases := []struct {
		name, purpose, to, body string
		lookup                  bool // term 2's sender can ask Twilio
		skip                    bool // term 1 stops before the send
		wantStatus              string
		wantSMS                 int
		wantAudit               string // "": no audit event
		wantFirstSID            bool   // recorded under term 1's send
	}{
		{"lockout/no-lookup", "lockout", "+15550007001", "Your account jdoe was locked at 10:42. Reply UNLOCK to unlock it.",
			false, false, enroll.StatusUnknown, 1, "unknown", false},
		{"password/no-lookup", "password", "+15550007002", "Your new password is Tulip-Canoe-42",
			false, false, enroll.StatusSent, 2, "resent", false},
		{"lockout/found-at-twilio", "lockout", "+15550007003", "Your account asmith was locked at 10:43. Reply UNLOCK to unlock it.",
			true, false, enroll.StatusSent, 1, "found", true},
		{"lockout/never-sent", "lockout", "+15550007004", "Your account bdoe was locked at 10:44. Reply UNLOCK to unlock it.",
			true, true, enroll.StatusSent, 1, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := r.enqueue(tc.purpose, tc.to, tc.body)
			logs1, logs2 := &testkit.LockedBuffer{}, &testkit.LockedBuffer{}

			// Term 1: the send goes out (or not), the outcome write is fenced.
			sent := make(chan outbox.Receipt, 1)
			sender1 := pausedMidSend{Sender: sendsOnly{testkit.TwilioSender(t, r.fake, nil, nil)}, skip: tc.skip,
				depose: r.depose, sent: sent}
			stop1 := r.run(r.term("node-1"), term1Store{r.store1}, sender1, logs1)
			var first outbox.Receipt
			select {
			case first = <-sent:
			case <-time.After(20 * time.Second):
				t.Fatalf("term 1 never reached the send; logs:\n%s", logs1)
			}
			testkit.Eventually(t, "term 1's outcome write to fail", func() bool {
				l := logs1.String()
				return strings.Contains(l, "the result cannot be recorded") || strings.Contains(l, "cannot record a failed send")
			})
			stop1()
			if !strings.Contains(logs1.String(), "fenced") {
				t.Errorf("term 1's outcome write did not fail on its fence; logs:\n%s", logs1)
			}
			m := r.message(id)
			if !m.Pending() || m.SendStarted.IsZero() || m.ProviderID != "" || m.Attempts != 1 {
				t.Fatalf("after term 1, message = %+v; want pending, claimed once, send mark set, no provider ID", m)
			}

			// Term 2: another node finds the claim run out.
			var sender2 outbox.Sender = testkit.TwilioSender(t, r.fake, nil, nil)
			if !tc.lookup {
				sender2 = sendsOnly{sender2}
			}
			stop2 := r.run(r.term("node-2"), r.store2, sender2, logs2)
			testkit.Eventually(t, "term 2 to settle the message", func() bool { return !r.message(id).Pending() })
			stop2()
			m = r.message(id)
			if m.Status != tc.wantStatus {
				t.Errorf("status = %s (%s); want %s", m.Status, m.LastError, tc.wantStatus)
			}
			if got := r.accepted(tc.to); len(got) != tc.wantSMS {
				t.Errorf("the fake accepted %d SMS for %s; want %d", len(got), tc.to, tc.wantSMS)
			}
			switch {
			case tc.wantStatus == enroll.StatusUnknown:
				if m.SendStarted.IsZero() || !strings.Contains(m.LastError, "unknown") || m.ProviderID != "" {
					t.Errorf("unknown message = %+v; want its send mark kept and the reason in LastError", m)
				}
			case tc.wantFirstSID:
				if m.ProviderID != first.ProviderID || !m.SendStarted.IsZero() {
					t.Errorf("message = %+v; want term 1's SID %s, no send mark", m, first.ProviderID)
				}
			default:
				if m.ProviderID == "" || m.ProviderID == first.ProviderID || !m.SendStarted.IsZero() {
					t.Errorf("message = %+v; want a new send's SID, no send mark", m)
				}
			}
			evs, err := r.store2.Audit(t.Context(), enroll.AuditFilter{Action: "send_unknown"})
			if err != nil {
				t.Fatal(err)
			}
			var mine []enroll.Event
			for _, ev := range evs {
				if strings.Contains(ev.Detail, fmt.Sprintf("sms message %d,", id)) {
					mine = append(mine, ev)
				}
			}
			switch {
			case tc.wantAudit == "" && len(mine) != 0:
				t.Errorf("audit events %+v; want none", mine)
			case tc.wantAudit != "" && (len(mine) != 1 || mine[0].Outcome != tc.wantAudit):
				t.Errorf("audit events %+v; want one, outcome %s", mine, tc.wantAudit)
			}
			for _, ev := range mine {
				if strings.Contains(ev.Detail, tc.to) || strings.Contains(ev.Detail, tc.body) {
					t.Errorf("audit event %+v holds the number or the body", ev)
				}
			}
			if logs := logs1.String() + logs2.String(); strings.Contains(logs, tc.body) || strings.Contains(logs, tc.to) {
				t.Errorf("the logs hold the body or the number:\n%s", logs)
			}
		})
	}
}
