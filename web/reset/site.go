package reset

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

// Directory is what the reset asks the directory (directory.Client).
type Directory interface {
	FindUser(ctx context.Context, username string) (directory.User, error)
	FindByMail(ctx context.Context, mail string) (directory.User, error)
	Unlock(ctx context.Context, u directory.User) error
	SetPassword(ctx context.Context, u directory.User, password string, opt directory.SetPasswordOptions) error
	PasswordPolicy(ctx context.Context, u directory.User) (directory.PasswordPolicy, error)
	directory.SelfServiceChecker
}

// Store is the part of enroll.Store the reset reads and writes.
type Store interface {
	Enrollment(ctx context.Context, username string) (enroll.Enrollment, error)
	UpdateEnrollment(ctx context.Context, username string, fn func(*enroll.Enrollment) error) error
	enroll.RateLimitStore
	enroll.GuardStore
	enroll.MessageStore
	BudgetHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
	enroll.LeaseStore
	enroll.Auditor
}

// Queue is the outbox (outbox.Queue): the codes and notices go through it.
type Queue interface {
	Enqueue(ctx context.Context, m enroll.OutboundMessage, body string) (uint64, error)
}

var (
	_ Directory = (*directory.Client)(nil)
	_ Store     = (enroll.Store)(nil)
)

// Deps wires the site. Only cmd builds it.
type Deps struct {
	Directory Directory
	Store     Store
	Outbox    Queue
	Messages  enroll.Catalog // the SMS and call texts (templates.Catalog)
	Pages     web.Pages      // templates.Pages
	Sealer    *enroll.Sealer // seals the state, hashes the codes
	Log       *slog.Logger
	Now       func() time.Time // default time.Now
	Language  string           // default page language
	Secure    bool             // https: cookies Secure and __Host- named
	Location  *time.Location   // times shown; default time.Local
	// StartFloor is the least time a start takes to answer (default
	// startFloor), whatever the name names.
	StartFloor time.Duration

	Passwords Passwords // the generated passwords (password.Generator)
	// MustChange flags a generated password "change at next logon"
	// (password.must_change); a chosen one never is.
	MustChange bool
	// ChoosePassword offers a password of the user's choice
	// (reset.web.choose_password); else a generated one only.
	ChoosePassword bool
	// Banned are the company's names, refused inside a chosen password
	// (CompanyNames).
	Banned []string
	// Mailer and Mails tell the account's mail address of a new password;
	// a nil Mailer: mail is off.
	Mailer notify.Mailer
	Mails  notify.MailRenderer
}

// The rules of a reset (DESIGN journey 5; issue 19): codes are 6 digits,
// live 10 minutes, and 5 wrong tries within 10 minutes refuse every code
// of the account for 10 minutes. An account gets at most codesPerHour
// codes an hour, an address at most startsPerHour starts and postsPerWindow
// posts of any kind per 10 minutes.
const (
	codeTTL        = 10 * time.Minute
	verifiedTTL    = 10 * time.Minute // from the right code to the act
	codeTries      = 5
	codeWindow     = 10 * time.Minute
	codeBlock      = 10 * time.Minute
	codesPerHour   = 5
	startsPerHour  = 30
	postWindow     = 10 * time.Minute
	postsPerWindow = 60
	// startFloor: an enrolled name costs a send (a sealed body, an outbox
	// record) that an unknown one only mirrors with a store write; a
	// millisecond or so apart, which answering no sooner than this hides.
	startFloor = 200 * time.Millisecond
)

// Site serves /reset and the pages under it.
type Site struct{ d Deps }

// New builds the site.
func New(d Deps) *Site {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Location == nil {
		d.Location = time.Local
	}
	if d.Language == "" {
		d.Language = templates.DefaultLanguage
	}
	if d.StartFloor <= 0 {
		d.StartFloor = startFloor
	}
	return &Site{d: d}
}

const base = "/reset"

// Register adds the routes; every POST is under the server's CSRF guard.
func (s *Site) Register(e *echo.Echo) {
	e.GET(base, s.show)
	e.POST(base+"/start", s.postStart, s.limit)
	e.POST(base+"/verify", s.postVerify, s.limit)
	e.POST(base+"/unlock", s.postUnlock, s.limit)
	e.POST(base+"/password", s.postPassword, s.limit)
	e.POST(base+"/cancel", s.postCancel, s.limit)
}

// view is the data of the reset pages.
type view struct {
	CSRF      string
	Base      string // always "": the language switch is the site's
	Back      string
	Return    string // where the language switch returns: /reset
	RequestID string

	Login        string
	Username     string
	CodeUntil    string
	Error        *templates.Msg
	ErrorField   string // "code" or ""
	AttemptsLeft *templates.Msg
	Done         *templates.Msg

	ChoosePassword bool // the choice page offers a password of one's own
	Policy         *policyView
	Password       string // the generated password, shown once
	MustChange     bool   // it must be changed at next logon

	// The error page.
	Title        templates.Msg
	Notice       *templates.Msg
	Next         *templates.Msg
	Continue     string
	ContinueText string
}

// GET /reset: the form, or the step of the reset under way.
func (s *Site) show(c echo.Context) error {
	st, err := s.open(c)
	switch {
	case err != nil:
		return s.form(c, http.StatusOK, "", nil)
	case st.Verified:
		return s.choosePage(c, http.StatusOK, st, nil)
	}
	return s.codePage(c, http.StatusOK, st, nil)
}

// POST /reset/cancel: forget the reset under way.
func (s *Site) postCancel(c echo.Context) error {
	s.forget(c)
	return c.Redirect(http.StatusSeeOther, base)
}

func (s *Site) form(c echo.Context, status int, login string, msg *templates.Msg) error {
	return s.render(c, status, templates.PageReset, view{Login: login, Error: msg})
}

func (s *Site) codePage(c echo.Context, status int, st state, msg *templates.Msg) error {
	v := view{Login: st.Login, CodeUntil: s.clock(st.Expires), Error: msg}
	if msg != nil {
		v.ErrorField = "code"
	}
	return s.render(c, status, templates.PageResetCode, v)
}

// message is a whole-page answer (the error page): locked, refused,
// ended, failed.
func (s *Site) message(c echo.Context, status int, v view) error {
	if v.Continue == "" {
		v.Continue, v.ContinueText = base, "error.retry"
	}
	return s.render(c, status, templates.PageError, v)
}

func (s *Site) render(c echo.Context, status int, page string, v view) error {
	v.CSRF, v.Return = web.CSRFToken(c), base
	return web.WritePage(c, s.d.Pages, status, page, web.PageLanguage(c, s.d.Language), v)
}

// failed answers an outage of the directory or the store: nothing was
// done, try again later; the log has the reason under the request ID.
func (s *Site) failed(c echo.Context, what string, err error) error {
	s.d.Log.ErrorContext(c.Request().Context(), "reset: "+what, "request_id", requestID(c), "err", err)
	key := "err.store"
	if errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrTLS) {
		key = "err.unavailable"
	}
	return s.message(c, http.StatusServiceUnavailable, view{Title: templates.Msg{Key: key + ".title"},
		Error: &templates.Msg{Key: key + ".text"}, RequestID: requestID(c)})
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

func (s *Site) clock(t time.Time) string { return t.In(s.d.Location).Format("15:04") }

func (s *Site) now() time.Time { return s.d.Now() }

// limit refuses an address's posts beyond postsPerWindow.
func (s *Site) limit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, err := s.d.Store.Allow(c.Request().Context(), "reset-web:post:"+c.RealIP(), s.now(), postWindow, postsPerWindow)
		if err != nil {
			return s.failed(c, "rate limit", err)
		}
		if !ok {
			return s.tooMany(c, postWindow)
		}
		return next(c)
	}
}

func (s *Site) tooMany(c echo.Context, wait time.Duration) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
	return s.message(c, http.StatusTooManyRequests, view{Title: templates.Msg{Key: "err.rate.title"},
		Error: &templates.Msg{Key: "err.rate.text"}})
}

// audit records ev; a failed write is logged, the answer stands.
func (s *Site) audit(c echo.Context, ev enroll.Event) {
	ev.Time, ev.Action, ev.SourceIP = s.now(), actionWebReset, c.RealIP()
	if ev.Actor == "" {
		ev.Actor = "web:" + c.RealIP()
	}
	if _, err := s.d.Store.AppendAudit(context.WithoutCancel(c.Request().Context()), ev); err != nil {
		s.d.Log.ErrorContext(c.Request().Context(), "reset: audit write failed", "err", err)
	}
}

// actionWebReset is the audit action of every step of a reset from a
// browser, apart from the SMS resets' "reset" and "unlock".
const actionWebReset = "reset_web"
