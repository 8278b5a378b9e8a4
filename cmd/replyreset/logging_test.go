package main

import (
	"bytes"
	"strings"
	"testing"
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
