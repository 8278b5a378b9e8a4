package web

// Readiness: /healthz, and the store gate. A node whose store does not
// answer (an etcd cluster that lost its quorum) refuses work rather than
// act without it: every page answers 503 "try again in a few minutes" in
// the visitor's language, /api/ the same in JSON, and the node takes work
// again by itself once its store answers (DESIGN: Growing past one
// machine).

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/enroll"
)

// StoreHealth is a store that says more about itself than Ping: the
// members of its cluster (cmd adapts etcd.Store.Health), for /healthz.
type StoreHealth interface {
	StoreHealth(ctx context.Context) (ClusterHealth, error)
}

// ClusterHealth is the store cluster as this node sees it.
type ClusterHealth struct {
	Members   []ClusterMember `json:"members"`
	Reachable int             `json:"reachable"` // how many members answered
}

// ClusterMember is one member of the store's cluster.
type ClusterMember struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
	Error     string `json:"error,omitempty"`
}

type componentHealth struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Took  string `json:"took"`
}

// storeHealth is the store's part of /healthz: componentHealth, the
// backend and, for a cluster, its members.
type storeHealth struct {
	Backend string `json:"backend"`
	componentHealth
	Members      []ClusterMember `json:"members,omitempty"`
	Reachable    *int            `json:"reachable,omitempty"`
	MembersError string          `json:"members_error,omitempty"`
}

// health reports liveness, the readiness of the directory and store (200
// when both answer, 503 otherwise), the store's backend and members, and
// whether this process leads the background jobs (a node that does not is
// healthy).
func health(d Deps) echo.HandlerFunc {
	backend := d.StoreBackend
	if backend == "" {
		backend = "bolt"
	}
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
			Leader    bool            `json:"leader"`
			Directory componentHealth `json:"directory"`
			Store     storeHealth     `json:"store"`
		}{Status: "ok", Version: d.Version, Leader: d.Leader != nil && d.Leader.Leading(),
			Directory: check(ctx, d.Directory), Store: storeHealth{Backend: backend, componentHealth: check(ctx, d.Store)}}
		if d.StoreHealth != nil {
			hctx, cancel := context.WithTimeout(ctx, d.HealthCheck)
			ch, err := d.StoreHealth.StoreHealth(hctx)
			cancel()
			body.Store.Members, body.Store.Reachable = ch.Members, &ch.Reachable
			if err != nil {
				body.Store.MembersError = err.Error()
			}
		}
		code := http.StatusOK
		if !body.Directory.OK || !body.Store.OK {
			body.Status, code = "degraded", http.StatusServiceUnavailable
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSONPretty(code, body, "  ")
	}
}

// StoreGateConfig configures NewStoreGate.
type StoreGateConfig struct {
	Store    Pinger
	Interval time.Duration // between two probes (default 2 s)
	Timeout  time.Duration // of one probe (default 1 s)
	Log      *slog.Logger
}

// StoreGate knows whether the store answers: it is closed from the
// moment a probe (Ping) fails or a store call reports
// enroll.ErrUnavailable (Observe), and open again once a probe succeeds.
// Run probes periodically; the zero state is open.
type StoreGate struct {
	cfg  StoreGateConfig
	down atomic.Bool
}

// NewStoreGate returns an open gate on cfg.Store.
func NewStoreGate(cfg StoreGateConfig) *StoreGate {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &StoreGate{cfg: cfg}
}

// Available reports whether the store answered last; a nil gate always
// does.
func (g *StoreGate) Available() bool { return g == nil || !g.down.Load() }

// Observe closes the gate when err says the store is unavailable; the
// next successful probe opens it again. Any other error changes nothing.
func (g *StoreGate) Observe(err error) {
	if g != nil && errors.Is(err, enroll.ErrUnavailable) {
		g.set(false, err)
	}
}

// Probe pings the store once and opens or closes the gate on the answer.
func (g *StoreGate) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	err := g.cfg.Store.Ping(ctx)
	g.set(err == nil, err)
	return err
}

// Run probes every Interval until ctx ends.
func (g *StoreGate) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		_ = g.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *StoreGate) set(up bool, err error) {
	if was := g.down.Swap(!up); was == up { // a change: say it once
		if up {
			g.cfg.Log.Info("the store answers again: work resumes")
		} else {
			g.cfg.Log.Warn("the store is unavailable: pages and the API answer 503 until it answers again", "err", err)
		}
	}
}

// storeRetryAfter is the Retry-After of the store's 503, in seconds.
const storeRetryAfter = 60

// retryAfterStore sets the Retry-After of the store's 503.
func retryAfterStore(c echo.Context) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(storeRetryAfter))
}

// storeUnavailableMessage is the API's answer while the store is down.
const storeUnavailableMessage = "the reset service is briefly unavailable; try again in a few minutes"

// errStore is what a page says while the store is down.
var errStore = errorAnswer{"err.store.title", "err.store.text"}

// gateExempt: what answers without the store, or answers for itself:
// /healthz and /metrics (they report the outage), static files, and the
// SMS webhook, which texts the user in their language (gateway).
func gateExempt(route string) bool {
	return route == "/healthz" || route == "/metrics" || strings.HasPrefix(route, "/static/") ||
		route == "/sms/twilio" || route == "/sms/twilio/"
}

// middleware refuses every request but the exempt ones while the gate is
// closed, and observes the errors handlers return.
func (g *StoreGate) middleware(d Deps) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if g.Available() || gateExempt(c.Path()) {
				err := next(c)
				g.Observe(err)
				return err
			}
			return storeDownAnswer(c, d)
		}
	}
}

// storeDownAnswer is the 503 of a node whose store is unavailable: JSON
// under /api/, a bare status for the Twilio callbacks, else the error page
// in the visitor's language (never the store's: it does not answer).
func storeDownAnswer(c echo.Context, d Deps) error {
	retryAfterStore(c)
	c.Response().Header().Set("Cache-Control", "no-store")
	code := http.StatusServiceUnavailable
	path := c.Request().URL.Path
	switch {
	case c.Request().Method == http.MethodHead:
		return c.NoContent(code)
	case strings.HasPrefix(path, "/api/"):
		return apiFail(c, code, "store_unavailable", storeUnavailableMessage)
	case strings.HasPrefix(path, "/sms/"), d.Pages == nil:
		return c.String(code, http.StatusText(code))
	}
	if err := errorPageWith(c, d, code, errStore); err != nil {
		d.Logger.ErrorContext(c.Request().Context(), "error page failed", "request_id", requestID(c), "err", err)
		return c.String(code, http.StatusText(code))
	}
	return nil
}

// storeDown reports whether err says the store did not answer.
func storeDown(err error) bool { return errors.Is(err, enroll.ErrUnavailable) }
