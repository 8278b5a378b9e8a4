package outbox_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// outageScale divides every duration of the outbox and of the outage in
// TestTwilioOutageOneMinute; 1 is real time (what CI runs).
const outageScale = 1

// TestTwilioOutageOneMinute is a one-minute Twilio outage in real time:
// the outbox runs with its default settings (backoff from 5 s, longest
// wait 10 m, send timeout 30 s, poll 15 s, 12 attempts), and the outage
// lasts 60 s: first 30 s of 500 answers, then 30 s in which Twilio answers
// too late (every call times out). Codes and alerts are
// queued before and during it. Once Twilio is back, every message is
// delivered, and each exactly once: the fake counts one accepted message
// per recipient, though it saw failed and timed-out attempts. (While
// Twilio fails, the worker pauses the whole queue on its backoff instead
// of trying each message, so messages queued late in the outage may see
// Twilio only once it is back.) Since backoff and attempts are relative,
// a smaller outageScale replays it faster with the same attempts.
func TestTwilioOutageOneMinute(t *testing.T) {
	r := testkit.NewOutboxRig(t)
	const minute = time.Minute / outageScale
	opt := outbox.Options{
		BackoffBase: 5 * time.Second / outageScale,
		BackoffMax:  10 * time.Minute / outageScale,
		SendTimeout: 30 * time.Second / outageScale,
		Poll:        15 * time.Second / outageScale,
	}
	start := time.Now()
	r.Fake.Down(minute / 2) // 500s
	type queued struct {
		id uint64
		to string
		at time.Duration
	}
	var msgs []queued
	n := 0
	enqueue := func(kind, body string) {
		n++
		to := fmt.Sprintf("+1555000%04d", 4000+n)
		msgs = append(msgs, queued{r.Enqueue(kind, to, body, enroll.PriorityHigh), to, time.Since(start)})
	}
	enqueue(enroll.KindSMS, "Your code is 100001")
	enqueue(enroll.KindSMS, "Your account jdoe was locked at 10:42. Reply UNLOCK to unlock it.")
	ob, _ := r.Start(opt)
	time.Sleep(minute / 4)
	enqueue(enroll.KindCall, "Your code is 100002")
	enqueue(enroll.KindSMS, "Your account asmith was locked at 10:43. Reply UNLOCK to unlock it.")
	ob.Notify()
	time.Sleep(time.Until(start.Add(minute / 2)))

	// Second half: Twilio takes longer than the send timeout to answer.
	r.Fake.SetDelay(opt.SendTimeout + opt.SendTimeout/2)
	r.Fake.Down(minute / 2)
	enqueue(enroll.KindSMS, "Your code is 100003")
	ob.Notify()
	time.Sleep(minute / 4)
	enqueue(enroll.KindSMS, "Your account bdoe was locked at 10:44. Reply UNLOCK to unlock it.")
	ob.Notify()
	time.Sleep(time.Until(start.Add(minute)))
	for _, m := range msgs {
		if n := r.Accepted(m.to); n != 0 {
			t.Fatalf("a message to %s was accepted during the outage", m.to)
		}
	}
	// What each message waits for now, on its own backoff.
	waiting := map[uint64]time.Time{}
	for _, m := range msgs {
		if got := r.Message(m.id); got.Status == enroll.StatusRetry {
			waiting[m.id] = got.NextAttempt
		}
	}
	r.Fake.SetDelay(0)
	r.Fake.Up()
	recovered := time.Now()

	var last time.Duration
	for _, m := range msgs {
		// The longest backoff reached in a minute is 80 s: wait up to 3.
		var got enroll.OutboundMessage
		for deadline := time.Now().Add(3 * time.Minute / outageScale); ; time.Sleep(20 * time.Millisecond) {
			if got = r.Message(m.id); got.Status == enroll.StatusSent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the message to %s is %s %v after recovery", m.to, got.Status, time.Since(recovered))
			}
		}
		last = max(last, time.Since(recovered))
		// Recovery is noticed by a probe, and the waiting messages go at
		// once instead of sitting out their backoffs (up to 80 s here).
		if next, ok := waiting[m.id]; ok && next.Sub(recovered) > opt.Poll+opt.SendTimeout && !got.UpdatedAt.Before(next) {
			t.Errorf("the message to %s was sent at %v, only when its backoff ran out (%v after recovery)",
				m.to, got.UpdatedAt.Sub(recovered), next.Sub(recovered))
		}
		t.Logf("queued at %v: %s to %s sent after %d attempts", m.at.Round(time.Millisecond), got.Kind, m.to, got.Attempts)
	}
	// Anything sent twice would show now: wait for two longest backoffs
	// beyond the last retry the worker could have scheduled.
	time.Sleep(4 * opt.BackoffBase)
	failed, timedOut := 0, 0
	for _, req := range r.Fake.Requests() {
		switch {
		case req.Status == 0:
			timedOut++
		case req.Status >= 500:
			failed++
		}
	}
	for _, m := range msgs {
		if n := r.Accepted(m.to); n != 1 {
			t.Errorf("the message to %s was accepted %d times, want exactly once", m.to, n)
		}
	}
	if failed == 0 || timedOut == 0 {
		t.Errorf("the outage was not felt: %d 5xx answers, %d timed-out requests", failed, timedOut)
	}
	t.Logf("outage %v: %d messages, %d requests answered 500, %d timed out; all delivered %v after recovery",
		minute, len(msgs), failed, timedOut, last.Round(time.Millisecond))
}
