package outbox_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// TestFollowerQueuedMessageWakesLeader: the worker runs on node A's etcd
// store and polls every 10 minutes; a message queued through node B's
// store (a follower answering a RESET) is sent long before the next poll,
// because A's worker watches the due index on the shared prefix.
func TestFollowerQueuedMessageWakesLeader(t *testing.T) {
	r := newUnknownRig(t)
	logs := &testkit.LockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ob := outbox.New(r.store1, r.sealer, testkit.TwilioSender(t, r.fake, nil, nil), log, outbox.Options{
		Poll: 10 * time.Minute, BackoffBase: 10 * time.Minute, BackoffMax: 10 * time.Minute, SendTimeout: 5 * time.Second, Audit: r.store1, Node: "node-a"})

	// The first pass sends what is already queued, then the worker sleeps
	// for the poll interval.
	r.enqueue("password", "+15550008001", "Your new password is Tulip-Canoe-42")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testkit.Eventually(t, "the first pass to send the first message", func() bool { return len(r.accepted("+15550008001")) == 1 })

	now := time.Now()
	_, err := r.store2.EnqueueMessage(t.Context(), enroll.OutboundMessage{Kind: enroll.KindSMS, To: "+15550008002",
		Sealed: r.sealer.Seal([]byte("Your new password is Maple-Kayak-17"), outbox.SealPurpose), Language: "en",
		Purpose: "password", Username: "jdoe", Priority: enroll.PriorityHigh, Status: enroll.StatusQueued,
		NextAttempt: now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testkit.Eventually(t, "node B's message to be sent by node A's worker before its next poll", func() bool {
		return len(r.accepted("+15550008002")) == 1
	})
	t.Logf("node B's message sent by node A's worker %v after it was queued (poll interval 10m)", time.Since(start).Round(time.Millisecond))
}
