package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
)

// outageScale shrinks time in TestTwilioOutageMinuteScaled1to20: every
// duration of the outbox and of the outage is divided by it.
const outageScale = 20

// TestTwilioOutageMinuteScaled1to20 is a one-minute Twilio outage played
// at 1/20 scale: the outbox runs with its default settings divided by 20
// (backoff 5 s → 250 ms, longest wait 10 m → 30 s, send timeout 30 s →
// 1.5 s, poll 15 s → 750 ms, 12 attempts as by default), and the outage
// lasts 60 s / 20 = 3 s: first 1.5 s of 500 answers, then 1.5 s in which
// Twilio answers too late (every call times out). Codes and alerts are
// queued before and during it. Once Twilio is back, every message is
// delivered, and each exactly once: the fake counts one accepted message
// per recipient, though it saw failed and timed-out attempts. (While
// Twilio fails, the worker pauses the whole queue on its backoff instead
// of trying each message, so messages queued late in the outage may see
// Twilio only once it is back.) Since backoff and attempts are relative,
// the attempts spent on the outage are those of a real minute.
func TestTwilioOutageMinuteScaled1to20(t *testing.T) {
	r := newRig(t)
	const minute = time.Minute / outageScale
	opt := gateway.OutboxOptions{
		BackoffBase: 5 * time.Second / outageScale,
		BackoffMax:  10 * time.Minute / outageScale,
		SendTimeout: 30 * time.Second / outageScale,
		Poll:        15 * time.Second / outageScale,
	}
	start := time.Now()
	r.fake.Down(minute / 2) // 500s
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
		msgs = append(msgs, queued{r.enqueue(kind, to, body, enroll.PriorityHigh), to, time.Since(start)})
	}
	enqueue(enroll.KindSMS, "Your code is 100001")
	enqueue(enroll.KindSMS, "Your account jdoe was locked at 10:42. Reply UNLOCK to unlock it.")
	ob, _ := r.start(opt)
	time.Sleep(minute / 4)
	enqueue(enroll.KindCall, "Your code is 100002")
	enqueue(enroll.KindSMS, "Your account asmith was locked at 10:43. Reply UNLOCK to unlock it.")
	ob.Notify()
	time.Sleep(time.Until(start.Add(minute / 2)))

	// Second half: Twilio takes longer than the send timeout to answer.
	r.fake.SetDelay(opt.SendTimeout + opt.SendTimeout/2)
	r.fake.Down(minute / 2)
	enqueue(enroll.KindSMS, "Your code is 100003")
	ob.Notify()
	time.Sleep(minute / 4)
	enqueue(enroll.KindSMS, "Your account bdoe was locked at 10:44. Reply UNLOCK to unlock it.")
	ob.Notify()
	time.Sleep(time.Until(start.Add(minute)))
	for _, m := range msgs {
		if n := r.accepted(m.to); n != 0 {
			t.Fatalf("a message to %s was accepted during the outage", m.to)
		}
	}
	r.fake.SetDelay(0)
	r.fake.Up()
	recovered := time.Now()

	var last time.Duration
	for _, m := range msgs {
		got := r.waitStatus(m.id, enroll.StatusSent)
		last = max(last, time.Since(recovered))
		t.Logf("queued at %v: %s to %s sent after %d attempts", m.at.Round(time.Millisecond), got.Kind, m.to, got.Attempts)
	}
	// Anything sent twice would show now: wait for two longest backoffs
	// beyond the last retry the worker could have scheduled.
	time.Sleep(4 * opt.BackoffBase)
	failed, timedOut := 0, 0
	for _, req := range r.fake.Requests() {
		switch {
		case req.Status == 0:
			timedOut++
		case req.Status >= 500:
			failed++
		}
	}
	for _, m := range msgs {
		if n := r.accepted(m.to); n != 1 {
			t.Errorf("the message to %s was accepted %d times, want exactly once", m.to, n)
		}
	}
	if failed == 0 || timedOut == 0 {
		t.Errorf("the outage was not felt: %d 5xx answers, %d timed-out requests", failed, timedOut)
	}
	t.Logf("outage %v (scaled minute): %d messages, %d requests answered 500, %d timed out; all delivered %v after recovery (%v real-time equivalent)",
		minute, len(msgs), failed, timedOut, last.Round(time.Millisecond), (last * outageScale).Round(time.Second))
}
