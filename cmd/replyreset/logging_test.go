package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/web"
)

func TestLoggerRedactsSecretsAndMasksPhones(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log := newLogger(&buf, "debug", format)
		log.Info("event", "password", "Hunter2#secret", "auth_token", "tok-123456", "code", "482913",
			"Body", "RESET 482913", "phone", "+12015550142", "from", "+33612345678", "user", "jdoe")
		out := buf.String()
		for _, secret := range []string{"Hunter2#secret", "tok-123456", "482913", "+12015550142", "+33612345678"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s log holds %q: %s", format, secret, out)
			}
		}
		for _, want := range []string{"[redacted]", "+12*******42", "jdoe"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s log lacks %q: %s", format, want, out)
			}
		}
	}
}

func TestLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, "warn", "json")
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Fatalf("level warn: %s", buf.String())
	}
}

// TestLoggerAddsRequestID: a record logged with a request's context names
// the request; others do not, and the handler's attributes still apply.
func TestLoggerAddsRequestID(t *testing.T) {
	var buf strings.Builder
	log := newLogger(&buf, "info", "json").With("component", "gateway")
	log.InfoContext(web.WithRequestID(context.Background(), "req-42"), "webhook handled", "phone", "+15555550101")
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"request_id":"req-42"`) || !strings.Contains(lines[0], `"component":"gateway"`) ||
		strings.Contains(lines[0], "5555550101") || strings.Contains(lines[1], "request_id") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
