package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// TestMetrics: requests count by route pattern (never the path, which may
// hold a token), the store's writes count as resets, lockouts and sends,
// directory operations by name and error kind; /metrics serves them.
func TestMetrics(t *testing.T) {
	m := NewMetrics()
	store, _, _, pages := testData(t)
	store.SetObserver(m)
	ctx := context.Background()
	now := time.Now()
	for _, ev := range []enroll.Event{
		{Action: "reset", Outcome: "ok"}, {Action: "reset", Outcome: "ok"}, {Action: "reset", Outcome: "rate_limited"},
		{Action: "lockout_alert", Outcome: "ok"}, {Action: "lockout", Outcome: "not_enrolled"},
	} {
		ev.Time, ev.Actor = now, "test"
		if _, err := store.AppendAudit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	id, err := store.EnqueueMessage(ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: "+15555550101", Sealed: []byte("x"),
		Language: "en", Purpose: "code", Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpdateMessage(ctx, id, func(msg *enroll.OutboundMessage) error {
		msg.Status, msg.ProviderID = enroll.StatusSent, "SM0123456789abcdef0123456789abcdef"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m.ObserveDirectory("set_password", 30*time.Millisecond, nil)
	m.ObserveDirectory("find", 2*time.Millisecond, fmt.Errorf("wrapped: %w", directory.ErrUnavailable))

	e := NewEcho(Deps{Metrics: m, Pages: pages})
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, path := range []string{"/healthz", "/enroll/secret-token-abc", "/no/such/page"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`replyreset_resets_total{outcome="ok"} 2`,
		`replyreset_resets_total{outcome="rate_limited"} 1`,
		`replyreset_lockouts_found_total{outcome="ok"} 1`,
		`replyreset_lockouts_found_total{outcome="not_enrolled"} 1`,
		`replyreset_outbox_messages_total{kind="sms",purpose="code",status="queued"} 1`,
		`replyreset_outbox_messages_total{kind="sms",purpose="code",status="sent"} 1`,
		`replyreset_directory_operation_duration_seconds_count{op="set_password",result="ok"} 1`,
		`replyreset_directory_operation_duration_seconds_count{op="find",result="unavailable"} 1`,
		`replyreset_http_requests_total{code="503",method="GET",route="/healthz"} 1`, // no directory: degraded
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, "secret-token-abc") || strings.Contains(text, "+15555550101") {
		t.Error("/metrics shows a path token or a phone number")
	}
}
