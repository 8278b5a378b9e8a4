package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// AdminDirectory is what the admin console and API need from the directory
// (directory.Client).
type AdminDirectory interface {
	// Authenticate binds as the user: username, UPN or DOMAIN\user.
	Authenticate(ctx context.Context, login, password string) (directory.User, error)
	// IsAdmin reports membership of directory.admin_group, nested included.
	IsAdmin(ctx context.Context, username string) (bool, error)
	FindUser(ctx context.Context, username string) (directory.User, error)
	SearchUsers(ctx context.Context, query string, limit int) ([]directory.User, bool, error)
	GroupMembers(ctx context.Context, group string) ([]directory.User, error)
	UsersUnder(ctx context.Context, base string) ([]directory.User, error)
	LockedUsers(ctx context.Context) ([]directory.User, error)
	// AccountState finds a person account that user_filter leaves out
	// (disabled, say), so the console can say why it is not usable.
	AccountState(ctx context.Context, username string) (directory.User, error)
}

// AdminService is what admins do to enrollments (enroll.Service). Each
// operation audits itself with the actor and the source of the context
// (enroll.WithSource).
type AdminService interface {
	Activate(ctx context.Context, username, actor string) (enroll.ActivationResult, error)
	Deactivate(ctx context.Context, username, actor string) (enroll.Enrollment, error)
	RevokeActivation(ctx context.Context, username, actor string) (enroll.Activation, error)
	Unfreeze(ctx context.Context, username, actor string) (enroll.Enrollment, error)
	ChangePhone(ctx context.Context, username, rawPhone, actor string) (enroll.Enrollment, error)
	EnrollInPerson(ctx context.Context, username, rawPhone, lang, actor string) (enroll.Enrollment, error)
	UnlockUser(ctx context.Context, username, actor string) (directory.User, error)
	Summary(ctx context.Context, now time.Time) (enroll.Summary, error)
	VerifyToken(ctx context.Context, secret, scope string) (enroll.APIToken, error)
}

// AdminStore is what the console reads directly, and the failed-login
// guard (enroll.Store).
type AdminStore interface {
	Enrollments(ctx context.Context) ([]enroll.Enrollment, error)
	Enrollment(ctx context.Context, username string) (enroll.Enrollment, error)
	ActivationByUser(ctx context.Context, username string) (enroll.Activation, error)
	Activations(ctx context.Context) ([]enroll.Activation, error)
	Audit(ctx context.Context, f enroll.AuditFilter) ([]enroll.Event, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
	LoginGuard
}

// AdminPages renders admin pages and their texts (templates.Pages).
type AdminPages interface {
	Pages
	Text(lang, key string, args map[string]string) string
	Plural(lang, key string, n int, args map[string]string) string
}

const (
	// membershipTTL is how long a session trusts its last admin-group check.
	membershipTTL = time.Minute
	adminCookie   = "replyreset_admin"
	// adminTimeout bounds the directory and store work of one admin request.
	adminTimeout = 30 * time.Second
)

// AdminConfig is the `admin:` section of the configuration file.
type AdminConfig struct {
	// SessionTTL is how long an admin console login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// AlertMail are addresses that get every security alert (NOT ME,
	// lockout storm, SIM swap, SMS budget, privileged refusal) besides the
	// members of directory.admin_group that have a mail address.
	AlertMail []string `yaml:"alert_mail"`
}

// DefaultAdminConfig returns the documented defaults.
func DefaultAdminConfig() AdminConfig {
	return AdminConfig{SessionTTL: 8 * time.Hour}
}

// Validate reports every problem, each prefixed by its key relative to `admin.`.
func (c AdminConfig) Validate() error {
	var errs []error
	if c.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("session_ttl: must be at least 1m, not %s", c.SessionTTL))
	}
	for i, a := range c.AlertMail {
		if _, err := mail.ParseAddress(a); err != nil {
			errs = append(errs, fmt.Errorf("alert_mail[%d]: %q is not a mail address (e.g. security@example.com)", i, a))
		}
	}
	return errors.Join(errs...)
}

// adminSections are the console's pages, in navigation order.
var adminSections = []string{"dashboard", "users", "enrollments", "lockouts", "audit", "mail"}

// adminSite serves /admin/... and /api/v1/...: the console and the API
// share the operations (adminOps).
type adminSite struct {
	ops      *adminOps
	pages    AdminPages
	log      *slog.Logger
	now      func() time.Time
	lang     string
	secure   bool
	ttl      time.Duration
	sessions *sessions
	usage    SMSUsageSource  // nil: the dashboard shows no SMS budgets
	mailq    MailQueueSource // nil: mail is off
	gate     *StoreGate      // told when the store does not answer; nil: none
}

func (s *adminSite) register(e *echo.Echo) {
	// /admin/ is the console's home (the README's address): the dashboard,
	// after the sign-in when there is no session.
	toHome := func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/admin/dashboard") }
	e.GET("/admin", toHome)
	e.GET("/admin/", toHome)
	e.GET("/admin/login", s.showLogin)
	e.POST("/admin/login", s.postLogin)
	e.POST("/admin/language", s.postLanguage)
	g := e.Group("/admin", s.requireAdmin)
	g.POST("/logout", s.postLogout)
	g.GET("/dashboard", s.dashboard)
	g.GET("/users", s.users)
	g.POST("/users/activate", s.activate)
	g.GET("/enrollments", s.enrollments)
	g.GET("/enrollments/:username", s.enrollment)
	g.POST("/enrollments/:username/:action", s.enrollmentAction)
	g.POST("/enroll", s.enrollInPerson)
	g.GET("/lockouts", s.lockouts)
	g.POST("/lockouts/unlock-all", s.unlockAll)
	g.POST("/lockouts/:username/unlock", s.unlock)
	g.GET("/audit", s.audit)
	g.GET("/audit/export", s.auditExport)
	g.GET("/mail", s.mail)
}

// adminView is the data of every admin page; each page uses some fields.
type adminView struct {
	CSRF     string
	Admin    string   // the signed-in admin; "" on the login page
	Section  string   // the current navigation entry
	Sections []string // navigation
	Back     string   // where the language switch returns
	Zone     string   // the time zone of the times shown, named
	Notice   *templates.Msg
	Error    *templates.Msg
	Title    templates.Msg // the error page
	// RequestID is shown with failures, to find the log lines.
	RequestID string
	Events    []eventRow // dashboard, audit page, enrollment history

	Login       *loginView
	Dashboard   *dashboardView
	Users       *usersView
	Results     *resultsView
	Enrollments *enrollmentsView
	Enrollment  *enrollmentView
	Lockouts    *lockoutsView
	Audit       *auditView
	Mail        *mailView
	Confirm     *confirmView
}

type loginView struct{ Username, Next string }

// render writes an admin page in the session's language (or the
// browser's, before sign-in).
func (s *adminSite) render(c echo.Context, status int, page string, v adminView) error {
	sess := sessionOf(c)
	lang := s.language(c)
	if sess != nil {
		v.Admin = sess.Display
		v.Sections = adminSections
		v.Zone = s.zoneName(c)
	}
	v.CSRF = csrfToken(c)
	if v.Error != nil || status >= 500 {
		v.RequestID = requestID(c) // the cause is in the log under it
	}
	if v.Back == "" {
		v.Back = c.Request().URL.RequestURI()
	}
	return writePage(c, s.pages, status, page, lang, v)
}

// fail renders the admin error page; err is logged, not shown.
func (s *adminSite) fail(c echo.Context, status int, key string, err error) error {
	if storeDown(err) { // whatever the caller expected: the store's 503
		s.gate.Observe(err)
		status, key = http.StatusServiceUnavailable, "admin.err.store"
		retryAfterStore(c)
	}
	if err != nil {
		s.log.ErrorContext(c.Request().Context(), "admin request failed", "route", c.Path(), "request_id", requestID(c), "err", err)
	}
	return s.render(c, status, templates.AdminError, adminView{Title: templates.Msg{Key: key}})
}

// language: the order of language.go, the session's language being the
// stored one.
func (s *adminSite) language(c echo.Context) string {
	stored := ""
	if sess := sessionOf(c); sess != nil {
		stored = sess.Language
	}
	return pageLanguage(c, stored, s.lang)
}

// needsSession reports whether the request's route is one of the console's
// signed-in pages (all but the sign-in and the language switch).
func (s *adminSite) needsSession(c echo.Context) bool {
	r := c.Path()
	return r != "/admin/login" && r != "/admin/language" && r != "/admin"
}

// toLogin answers an unauthenticated request: a redirect for pages, 401
// for a form post (whose data would be lost by a redirect anyway).
func (s *adminSite) toLogin(c echo.Context, why string) error {
	q := url.Values{}
	if why != "" {
		q.Set("why", why)
	}
	if c.Request().Method == http.MethodGet {
		q.Set("next", c.Request().URL.RequestURI())
		return c.Redirect(http.StatusSeeOther, "/admin/login?"+q.Encode())
	}
	v := adminView{Login: &loginView{}, Error: &templates.Msg{Key: "admin.login.expired"}}
	if why != "" {
		v.Error.Key = why
	}
	return s.render(c, http.StatusUnauthorized, templates.AdminLogin, v)
}

// loginNotes are the messages the login page may show from ?why=.
var loginNotes = map[string]bool{"admin.login.expired": true, "admin.login.not_admin_any_more": true, "admin.login.signed_out": true}

func (s *adminSite) showLogin(c echo.Context) error {
	v := adminView{Login: &loginView{Next: safeNext(c.QueryParam("next"))}}
	if why := c.QueryParam("why"); loginNotes[why] {
		v.Notice = &templates.Msg{Key: why}
	}
	return s.render(c, http.StatusOK, templates.AdminLogin, v)
}

// safeNext keeps a return address only when it is a console page: never
// another host, never a scheme-relative URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/admin/login") {
		return ""
	}
	return next
}

// POST /admin/login: bind as the admin, check the admin group, start a
// fresh session (a new ID: no fixation).
func (s *adminSite) postLogin(c echo.Context) error {
	login := strings.TrimSpace(c.FormValue("username"))
	password := c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	v := adminView{Login: &loginView{Username: login, Next: next}}
	refuse := func(status int, key string, args map[string]string) error {
		v.Error = &templates.Msg{Key: key, Args: args}
		return s.render(c, status, templates.AdminLogin, v)
	}
	if login == "" || password == "" || len(login) > 256 || len(password) > 256 {
		return refuse(http.StatusUnprocessableEntity, "admin.login.missing", nil)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	res := s.ops.login(ctx, c, login, password)
	switch res.outcome {
	case loginOK:
	case loginBlocked:
		return refuse(http.StatusTooManyRequests, "admin.login.blocked",
			map[string]string{"time": s.when(c, res.until)})
	case loginBad:
		return refuse(http.StatusUnauthorized, "admin.login.bad", nil)
	case loginNotAdmin:
		return refuse(http.StatusForbidden, "admin.login.not_admin", nil)
	case loginMustChange:
		return refuse(http.StatusForbidden, "admin.login.must_change", nil)
	case loginLocked:
		return refuse(http.StatusForbidden, "admin.login.locked", nil)
	default:
		return refuse(http.StatusServiceUnavailable, "admin.err.directory", nil)
	}
	s.rememberZone(c)
	if old, ok := readCookie(c, s.secure, adminCookie); ok {
		if err := s.sessions.drop(ctx, old); err != nil {
			return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
		}
	}
	id, sess, err := s.sessions.create(ctx, res.user, s.language(c), c.RealIP(), s.now())
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	setCookie(c, s.secure, adminCookie, id, int(s.ttl/time.Second), http.SameSiteStrictMode)
	c.Set("admin_session", sess)
	if next == "" {
		next = "/admin/dashboard"
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *adminSite) postLogout(c echo.Context) error {
	if id, ok := readCookie(c, s.secure, adminCookie); ok {
		if err := s.sessions.drop(c.Request().Context(), id); err != nil {
			return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
		}
	}
	s.ops.audit(c, actor(c), enroll.Event{Action: "admin_logout", Username: sessionOf(c).Username, Outcome: "ok"})
	setCookie(c, s.secure, adminCookie, "", -1, http.SameSiteStrictMode)
	return c.Redirect(http.StatusSeeOther, "/admin/login?why=admin.login.signed_out")
}

// POST /admin/language: the console's language, kept in the session (and
// a cookie for the login page).
func (s *adminSite) postLanguage(c echo.Context) error {
	lang := c.FormValue("lang")
	back := safeNext(c.FormValue("back"))
	if back == "" {
		back = "/admin/dashboard"
	}
	if !templates.SupportedLanguage(lang) {
		return c.Redirect(http.StatusSeeOther, back)
	}
	if id, ok := readCookie(c, s.secure, adminCookie); ok && len(id) <= maxSessionID {
		err := s.sessions.update(c.Request().Context(), id, s.now(), func(sess *session) { sess.Language = lang })
		if err != nil && !errors.Is(err, enroll.ErrNotFound) {
			// The cookie below still carries the choice.
			s.log.WarnContext(c.Request().Context(), "admin session language not recorded", "err", err)
		}
	}
	rememberChoice(c, lang, s.secure)
	if strings.HasPrefix(c.FormValue("back"), "/admin/login") {
		back = "/admin/login"
	}
	return c.Redirect(http.StatusSeeOther, back)
}
