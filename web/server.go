package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Pinger is a dependency whose readiness /healthz reports.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are what the server routes to. Only cmd builds it.
type Deps struct {
	Logger      *slog.Logger
	SMSWebhook  http.Handler  // POST /sms/twilio
	Directory   Pinger        // readiness for /healthz
	Store       Pinger        // readiness for /healthz
	HealthCheck time.Duration // per-dependency timeout (default 2 s)
	Version     string
}

// maxBody bounds every request body; forms and webhooks are small.
const maxBody = "256K"

// NewEcho builds the HTTP server: middleware in order, routes, errors.
func NewEcho(d Deps) *echo.Echo {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.HealthCheck <= 0 {
		d.HealthCheck = 2 * time.Second
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The client address is the TCP peer: X-Forwarded-For is not trusted, so
	// rate limits cannot be dodged with a forged header.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = errorHandler(d.Logger)

	// Middleware, outermost first:
	// 1. recover: a panic becomes a 500, logged, never a dropped connection;
	e.Use(middleware.Recover())
	// 2. request ID: every log line of a request carries it;
	e.Use(middleware.RequestID())
	// 3. access log with the route pattern, never the raw path, query or body
	//    (they may hold tokens);
	e.Use(requestLogger(d.Logger))
	// 4. body limit before anything reads a body;
	e.Use(middleware.BodyLimit(maxBody))
	// 5. security headers on every answer.
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		HSTSMaxAge:            31536000,
		ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
		ReferrerPolicy:        "no-referrer",
	}))

	e.GET("/healthz", health(d))
	if d.SMSWebhook != nil {
		e.POST("/sms/twilio", echo.WrapHandler(d.SMSWebhook))
	}
	return e
}

func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogRoutePath: true, LogMethod: true, LogLatency: true, LogRequestID: true, LogRemoteIP: true,
		LogError: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			log.LogAttrs(c.Request().Context(), level, "http request",
				slog.String("request_id", v.RequestID), slog.String("method", v.Method),
				// The route pattern, never the path: /enroll/:token must not log the token.
				slog.String("route", v.RoutePath), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency), slog.String("remote_ip", v.RemoteIP))
			return nil
		},
	})
}

// errorHandler answers errors with JSON for API-style routes and plain text
// elsewhere; internal details are logged, not shown.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code := http.StatusInternalServerError
		msg := http.StatusText(code)
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if s, ok := he.Message.(string); ok {
				msg = s
			} else {
				msg = http.StatusText(code)
			}
		} else {
			log.ErrorContext(c.Request().Context(), "request failed", "path", c.Path(), "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		_ = c.JSON(code, map[string]string{"error": msg})
	}
}

type componentHealth struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Took  string `json:"took"`
}

// health reports liveness and the readiness of the directory and store:
// 200 when both answer, 503 otherwise.
func health(d Deps) echo.HandlerFunc {
	check := func(ctx context.Context, p Pinger) componentHealth {
		if p == nil {
			return componentHealth{OK: false, Error: "not configured"}
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(ctx, d.HealthCheck)
		defer cancel()
		err := p.Ping(ctx)
		h := componentHealth{OK: err == nil, Took: time.Since(start).Round(time.Millisecond).String()}
		if err != nil {
			h.Error = err.Error()
		}
		return h
	}
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		body := struct {
			Status    string          `json:"status"`
			Version   string          `json:"version,omitempty"`
			Directory componentHealth `json:"directory"`
			Store     componentHealth `json:"store"`
		}{Status: "ok", Version: d.Version, Directory: check(ctx, d.Directory), Store: check(ctx, d.Store)}
		code := http.StatusOK
		if !body.Directory.OK || !body.Store.OK {
			body.Status, code = "degraded", http.StatusServiceUnavailable
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSONPretty(code, body, "  ")
	}
}
