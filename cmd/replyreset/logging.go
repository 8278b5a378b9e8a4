package main

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/replyreset/replyreset/web"
)

// newLogger builds the process logger: JSON or text, at the configured
// level, behind a handler that redacts secrets and masks phone numbers.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: redactAttr}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}

// requestIDHandler adds the HTTP request's ID (web.RequestID) to every
// record logged with that request's context, so a webhook's or a page's
// log lines can be found together.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := web.RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// secretKeys are attribute names whose values never reach a log.
var secretKeys = []string{"password", "passwd", "secret", "token", "code", "otp", "body", "auth", "signature"}

// redactAttr hides secret-looking attributes and masks phone numbers. It
// is the last line of defence: code must not log secrets in the first place.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	key := strings.ToLower(a.Key)
	for _, s := range secretKeys {
		if strings.Contains(key, s) {
			return slog.String(a.Key, "[redacted]")
		}
	}
	if strings.Contains(key, "phone") || key == "from" || key == "to" {
		return slog.String(a.Key, maskPhone(a.Value.String()))
	}
	return a
}

// maskPhone keeps the country code start and the last two digits.
func maskPhone(p string) string {
	if len(p) <= 5 {
		return "***"
	}
	return p[:3] + strings.Repeat("*", len(p)-5) + p[len(p)-2:]
}
