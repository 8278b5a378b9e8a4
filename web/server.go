package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/replyreset/replyreset/templates"
)

// Pinger is a dependency whose readiness /healthz reports.
type Pinger interface {
	Ping(ctx context.Context) error
}

// LeaderState says whether this process leads the background jobs now
// (jobs.Status), for /healthz.
type LeaderState interface {
	Leading() bool
}

// Store is the one store the server reads and writes (enroll.Store):
// the small interfaces its parts consume, together.
type Store interface {
	Pinger       // readiness for /healthz
	RateLimiter  // POST limits of the enrollment forms, per client address and per link
	AdminStore   // the console's reads, the audit trail and the sign-in guard (LoginGuard)
	SessionStore // admin console sessions
}

// Deps are what the server routes to. Only cmd builds it.
type Deps struct {
	Logger      *slog.Logger
	SMSWebhook  http.Handler  // POST /sms/twilio
	SMSStatus   http.Handler  // POST /sms/twilio/status (delivery reports)
	Directory   Pinger        // readiness for /healthz
	Store       Store         // readiness for /healthz; the sites below need it; nil = no rate limits
	HealthCheck time.Duration // per-dependency timeout (default 2 s)
	Version     string
	// StoreBackend names the store for /healthz: "bolt" (default) or "etcd".
	StoreBackend string
	// StoreHealth, when set, adds the store cluster's members to /healthz.
	StoreHealth StoreHealth
	// StoreGate, when set, refuses every page and API call with a 503
	// while the store does not answer (health.go); cmd runs its probe.
	StoreGate *StoreGate
	// Leader says whether this process leads the jobs, for /healthz
	// ("leader"); nil: it does not (no jobs run here).
	Leader LeaderState

	// The enrollment site (GET /enroll/:token and the pages under it) is
	// served when both Enrollment and Pages are set; /static/ with Pages.
	Enrollment Enrollment // enroll.Service
	Pages      AdminPages // templates.Pages, loaded at start-up
	PublicURL  string     // https://…: cookies are marked Secure and __Host- named
	SMSNumber  string     // the number employees text (sms.twilio.from), shown on the start page
	Helpdesk   string     // how to reach the service desk (mail.from), shown on the start page
	// Proxies are the reverse proxies (trusted_proxies) whose
	// X-Forwarded-For is believed: the client address is its rightmost
	// address outside them. Empty: the TCP peer is the client.
	Proxies  []netip.Prefix
	Language string           // default page language (en | fr) when neither the enrollment nor the browser tells
	Now      func() time.Time // default time.Now
	// The safe phone change (/phone/change) is served with the
	// enrollment site when it and Store are set too.
	PhoneChange PhoneChangeService // enroll.Service

	// The admin console (/admin/...) and JSON API (/api/v1/...) are served
	// when both, Store and Pages are set.
	AdminDirectory AdminDirectory // directory.Client
	AdminService   AdminService   // enroll.Service
	Admin          AdminConfig

	// Demo serves the phone simulator and mailbox under /demo/ (with
	// Pages); only `replyreset demo` sets it.
	Demo Demo
	// SMSUsage, when set, shows the SMS budgets on the admin dashboard.
	SMSUsage SMSUsageSource
	// MailQueue, when set, lists the mail queue on /admin/mail; nil means
	// mail is off.
	MailQueue MailQueueSource

	// Metrics, when set, counts requests and serves GET /metrics.
	Metrics *Metrics

	// Reset, when set, serves the reset from a browser (/reset; web/reset).
	Reset Routes
}

// Routes is a site of its own package that adds its routes to the server.
type Routes interface {
	Register(e *echo.Echo)
}

type requestIDKey struct{}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// WithRequestID returns ctx carrying the ID of its HTTP request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the ID of the HTTP request ctx belongs to (the
// X-Request-Id answered to the client), or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
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
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Language == "" {
		d.Language = templates.DefaultLanguage
	}
	var site *enrollSite
	if d.Enrollment != nil && d.Pages != nil {
		var limiter RateLimiter // nil: no limits
		if d.Store != nil {
			limiter = d.Store
		}
		site = &enrollSite{svc: d.Enrollment, pages: d.Pages, limiter: limiter, log: d.Logger,
			now: d.Now, lang: d.Language, gate: d.StoreGate, reset: d.Reset != nil, secure: strings.HasPrefix(strings.ToLower(d.PublicURL), "https://")}
	}
	var admin *adminSite
	if d.AdminDirectory != nil && d.AdminService != nil && d.Store != nil && d.Pages != nil {
		if d.Admin.SessionTTL <= 0 {
			d.Admin = DefaultAdminConfig()
		}
		admin = &adminSite{
			ops:   &adminOps{dir: d.AdminDirectory, svc: d.AdminService, store: d.Store, log: d.Logger, now: d.Now},
			pages: d.Pages, log: d.Logger, now: d.Now, lang: d.Language, ttl: d.Admin.SessionTTL, gate: d.StoreGate,
			secure:   strings.HasPrefix(strings.ToLower(d.PublicURL), "https://"),
			sessions: &sessions{store: d.Store, ttl: d.Admin.SessionTTL, log: d.Logger},
			usage:    d.SMSUsage,
			mailq:    d.MailQueue,
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The client address is the TCP peer, or behind a trusted proxy the
	// rightmost X-Forwarded-For hop outside the trusted ones: nothing else
	// is believed, so guards cannot be dodged with a forged header.
	e.IPExtractor = clientIP(d.Proxies)
	e.HTTPErrorHandler = errorHandler(d) // errors.go

	// Middleware, outermost first:
	// 1. recover: a panic becomes a 500, logged, never a dropped connection;
	e.Use(middleware.Recover())
	// 2. request ID: every log line of a request carries it;
	//    a proxy's X-Request-Id is kept when it is a plain token, else
	//    replaced, so a client cannot write what it likes into the logs;
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if id := c.Request().Header.Get(echo.HeaderXRequestID); id != "" && !requestIDRe.MatchString(id) {
				c.Request().Header.Del(echo.HeaderXRequestID)
			}
			return next(c)
		}
	})
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) {
			c.SetRequest(c.Request().WithContext(WithRequestID(c.Request().Context(), id)))
		},
	}))
	// 3. access log with the route pattern, never the raw path, query or body
	//    (they may hold tokens);
	e.Use(requestLogger(d.Logger))
	//    and the request metrics, by route pattern too;
	if d.Metrics != nil {
		e.Use(d.Metrics.middleware)
	}
	// 4. body limit before anything reads a body;
	e.Use(middleware.BodyLimit(maxBody))
	// 5. security headers on every answer; HTML pages widen the CSP to
	//    their own stylesheet, images and forms (pageCSP);
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		HSTSMaxAge:            31536000,
		ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
		ReferrerPolicy:        "no-referrer",
	}))
	// 6. the store gate: while the store does not answer, a 503 "try
	//    again in a few minutes" before anything reads it (the CSRF check
	//    reads admin sessions);
	if d.StoreGate != nil {
		e.Use(d.StoreGate.middleware(d))
	}
	// 7. CSRF: a form post must carry the token of its cookie (or come from
	//    a browser that says Sec-Fetch-Site: same-origin). Webhooks (signed)
	//    and the bearer-token API carry no cookie and are exempt.
	e.Use(csrf(site, admin, strings.HasPrefix(strings.ToLower(d.PublicURL), "https://")))

	e.GET("/healthz", health(d))
	if d.Metrics != nil {
		e.GET("/metrics", d.Metrics.handler())
	}
	// The webhooks answer with and without a trailing slash, as an
	// operator may have typed either in the Twilio console; the signature
	// is checked over the path as requested, which is what Twilio signed.
	if d.SMSStatus != nil {
		e.POST("/sms/twilio/status", echo.WrapHandler(d.SMSStatus))
		e.POST("/sms/twilio/status/", echo.WrapHandler(d.SMSStatus))
	}
	if d.SMSWebhook != nil {
		e.POST("/sms/twilio", echo.WrapHandler(d.SMSWebhook))
		e.POST("/sms/twilio/", echo.WrapHandler(d.SMSWebhook))
	}
	if d.Pages != nil {
		e.GET("/static/*", staticFiles(d.Pages.Static()))
		e.GET("/", home(d))
		e.POST("/language", postLanguage(strings.HasPrefix(strings.ToLower(d.PublicURL), "https://")))
	}
	if site != nil {
		site.register(e)
		if d.PhoneChange != nil && d.Store != nil {
			(&phoneChangeSite{site: site, svc: d.PhoneChange, guard: d.Store}).register(e)
		}
	}
	if admin != nil {
		admin.register(e)
		admin.registerAPI(e)
	}
	if d.Reset != nil {
		d.Reset.Register(e)
	}
	if d.Demo != nil && d.Pages != nil {
		(&demoSite{demo: d.Demo, pages: d.Pages, lang: d.Language, log: d.Logger}).register(e)
	}
	return e
}

// clientIP extracts the client address: the TCP peer, unless it is one of
// proxies, in which case X-Forwarded-For is read from the right and its
// first address outside proxies is the client (an unreadable entry stops
// the walk at the last trusted hop). Loopback, link-local and private
// addresses are trusted only when listed.
func clientIP(proxies []netip.Prefix) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// csrf builds the CSRF guard (csrf.go); a refused enrollment form gets a
// page in the user's language, a console form whose session has ended the
// sign-in page, anything else the error handler's answer.
func csrf(site *enrollSite, admin *adminSite, secure bool) echo.MiddlewareFunc {
	g := &csrfGuard{
		secure: secure,
		// By route pattern, not path: what is exempt is the handler that
		// runs. No route (404) has nothing to protect, but its page gets a
		// token for its language switch.
		skip: func(c echo.Context) bool {
			route := c.Path()
			for _, prefix := range []string{"/sms/", "/api/", "/static/"} {
				if strings.HasPrefix(route, prefix) {
					return true
				}
			}
			return (route == "" && c.Request().Method != http.MethodGet) || route == "/healthz" || route == "/metrics"
		},
		bind: csrfBinding(admin, secure),
		refused: func(c echo.Context) error {
			if site != nil && strings.HasPrefix(c.Path(), "/enroll/") {
				return site.csrfRefused(c)
			}
			if site != nil && strings.HasPrefix(c.Path(), phoneChangeBase) {
				return site.phoneChangeCSRFRefused(c)
			}
			if admin != nil && strings.HasPrefix(c.Path(), "/admin") {
				if admin.needsSession(c) && admin.liveSession(c) == "" {
					return admin.toLogin(c, "admin.login.expired")
				}
				return admin.render(c, http.StatusForbidden, templates.AdminError,
					adminView{Title: templates.Msg{Key: "admin.err.csrf"}})
			}
			return echo.NewHTTPError(http.StatusForbidden, "invalid or missing form token: reload the page and try again")
		},
	}
	return g.middleware
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
