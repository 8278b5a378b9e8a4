package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// Metrics are the product's Prometheus metrics, served at GET /metrics.
// They are fed from three places, so no package needs to know about
// Prometheus: the HTTP middleware (requests by route), the store's observer
// (audit events and outbox statuses: resets by outcome, lockouts found,
// sends by status, budget refusals) and the directory client's observer
// (operation latency). No label ever holds a username, phone number or
// path parameter.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	events    *prometheus.CounterVec
	resets    *prometheus.CounterVec
	lockouts  *prometheus.CounterVec
	sends     *prometheus.CounterVec
	directory *prometheus.HistogramVec
}

var _ enroll.StoreObserver = (*Metrics)(nil)

// NewMetrics returns the metrics on a registry of their own, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyreset_http_requests_total",
			Help: "HTTP requests by route pattern (webhooks are /sms/twilio and /sms/twilio/status), method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replyreset_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyreset_audit_events_total",
			Help: "Audit events written, by action and outcome.",
		}, []string{"action", "outcome"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyreset_resets_total",
			Help: "RESET requests by outcome (ok, rate_limited, policy_rejected, directory_unavailable, ...).",
		}, []string{"outcome"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyreset_lockouts_found_total",
			Help: "Lockouts the lockout watch found, by what was done (ok = texted, not_enrolled, stale, opted_out, ...).",
		}, []string{"outcome"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyreset_outbox_messages_total",
			Help: "Outbox messages reaching a status (queued, sent, delivered, undelivered, failed, rejected, expired, ...), by kind and purpose.",
		}, []string{"kind", "purpose", "status"}),
		directory: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replyreset_directory_operation_duration_seconds",
			Help:    "Directory operations by name and result (ok, or the error kind).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op", "result"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.events, m.resets, m.lockouts, m.sends, m.directory,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics live (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AuditAppended counts an audit event (enroll.StoreObserver).
func (m *Metrics) AuditAppended(ev enroll.Event) {
	m.events.WithLabelValues(ev.Action, ev.Outcome).Inc()
	switch ev.Action {
	case "reset":
		m.resets.WithLabelValues(ev.Outcome).Inc()
	case "lockout", "lockout_alert", "lockout_storm_suppressed":
		m.lockouts.WithLabelValues(ev.Outcome).Inc()
	}
}

// MessageUpdated counts an outbox message reaching a status
// (enroll.StoreObserver).
func (m *Metrics) MessageUpdated(msg enroll.OutboundMessage) {
	m.sends.WithLabelValues(msg.Kind, msg.Purpose, msg.Status).Inc()
}

// ObserveDirectory records one directory operation (directory.Options.Observer).
func (m *Metrics) ObserveDirectory(op string, took time.Duration, err error) {
	m.directory.WithLabelValues(op, directoryResult(err)).Observe(took.Seconds())
}

// directoryResult names an error by its kind, never by its text.
func directoryResult(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{directory.ErrNotFound, "not_found"}, {directory.ErrInvalidCredentials, "invalid_credentials"},
		{directory.ErrLocked, "locked"}, {directory.ErrMustChange, "must_change"}, {directory.ErrPolicy, "policy"},
		{directory.ErrUnavailable, "unavailable"}, {directory.ErrInsufficientRights, "insufficient_rights"},
		{directory.ErrTLS, "tls"}, {directory.ErrAmbiguous, "ambiguous"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	if err != nil {
		return "error"
	}
	return "ok"
}

// middleware counts requests by route pattern (never the raw path: it may
// hold a token). Unrouted requests count under route "".
func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		var he *echo.HTTPError
		if err != nil && errors.As(err, &he) {
			status = he.Code
		} else if err != nil && !c.Response().Committed {
			status = http.StatusInternalServerError
		}
		route := c.Path()
		m.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return err
	}
}

func (m *Metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
}
