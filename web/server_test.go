package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

// pingStore is a Store that only answers Ping (no site is served).
type pingStore struct {
	Store
	ping pingFunc
}

func (s pingStore) Ping(ctx context.Context) error { return s.ping(ctx) }

func serve(t *testing.T, d Deps, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	NewEcho(d).ServeHTTP(rec, req)
	return rec
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	d := Deps{Directory: pingFunc(func(context.Context) error { return nil }), Store: pingStore{ping: func(context.Context) error { return nil }}}
	for _, path := range []string{"/healthz", "/no-such-page"} {
		rec := serve(t, d, httptest.NewRequest(http.MethodGet, path, nil))
		for h, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		} {
			if got := rec.Header().Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
		if rec.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
	}
}

func TestHealthz(t *testing.T) {
	ok := pingFunc(func(context.Context) error { return nil })
	down := pingFunc(func(context.Context) error { return errors.New("ldaps://dc1: tcp: connection refused") })
	for _, c := range []struct {
		name      string
		dir       Pinger
		code      int
		status    string
		dirOK     bool
		dirErrHas string
	}{
		{"ready", ok, 200, "ok", true, ""},
		{"directory down", down, 503, "degraded", false, "connection refused"},
		{"directory not configured", nil, 503, "degraded", false, "not configured"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := serve(t, Deps{Directory: c.dir, Store: pingStore{ping: ok}, Version: "v1"}, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			var body struct {
				Status    string
				Version   string
				Directory struct {
					OK    bool
					Error string
				}
				Store struct{ OK bool }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("not JSON: %v: %s", err, rec.Body)
			}
			if rec.Code != c.code || body.Status != c.status || body.Directory.OK != c.dirOK || !body.Store.OK ||
				!strings.Contains(body.Directory.Error, c.dirErrHas) || body.Version != "v1" {
				t.Fatalf("got %d %+v", rec.Code, body)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", rec.Header().Get("Cache-Control"))
			}
		})
	}
}

func TestHealthzPingTimeout(t *testing.T) {
	hang := pingFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	rec := serve(t, Deps{Directory: hang, Store: pingStore{ping: hang}, HealthCheck: 50 * time.Millisecond}, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "deadline exceeded") {
		t.Fatalf("hanging dependencies: %d %s", rec.Code, rec.Body)
	}
}

// Without pages (a bare server) errors are plain text, JSON under /api/;
// errors_test.go has the pages.
func TestErrorsAndBodiesBounded(t *testing.T) {
	rec := serve(t, Deps{}, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if rec.Code != 404 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("404: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	rec = serve(t, Deps{}, httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"not_found"`) {
		t.Fatalf("API 404: %d %s", rec.Code, rec.Body)
	}
	webhook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = r.ParseForm() })
	big := httptest.NewRequest(http.MethodPost, "/sms/twilio", strings.NewReader(strings.Repeat("a", 300<<10)))
	big.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := serve(t, Deps{SMSWebhook: webhook}, big); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", rec.Code)
	}
}

// A forged X-Forwarded-For must not change the client address that rate
// limits and logs see.
func TestClientIPIgnoresForwardedHeaders(t *testing.T) {
	e := NewEcho(Deps{})
	var seen string
	e.GET("/ip", func(c echo.Context) error { seen = c.RealIP(); return nil })
	req := httptest.NewRequest(http.MethodGet, "/ip", nil)
	req.RemoteAddr = "192.0.2.10:5555"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Real-Ip", "203.0.113.8")
	e.ServeHTTP(httptest.NewRecorder(), req)
	if seen != "192.0.2.10" {
		t.Fatalf("RealIP = %q, want the TCP peer 192.0.2.10", seen)
	}
}

func TestAccessLogNeverHoldsThePath(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	e := NewEcho(Deps{Logger: log})
	e.GET("/enroll/:token", func(c echo.Context) error { return c.NoContent(204) })
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/enroll/SECRET-TOKEN-123?x=SECRET-Q", nil))
	out := buf.String()
	if strings.Contains(out, "SECRET") || !strings.Contains(out, `"route":"/enroll/:token"`) {
		t.Fatalf("access log: %s", out)
	}
}
