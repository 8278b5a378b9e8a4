package web

// How every address answers what its handler does not: unknown addresses,
// wrong methods, failures and a directory that does not answer. A person
// gets an HTML page in their language with a way back; JSON is for /api/
// alone, and the Twilio webhooks get a bare status (DESIGN: Routes). And
// how the admin operations' errors are answered, alike in the console and
// the API (opProblem).

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// directoryDown reports whether err means the directory did not answer
// (down, unreachable, TLS refused, or too slow): the same 503 "try again in
// a few minutes" on every page, in the API and by SMS.
func directoryDown(err error) bool {
	return errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrTLS) ||
		errors.Is(err, context.DeadlineExceeded)
}

// errorAnswer is what a page says for an HTTP status.
type errorAnswer struct{ title, text string }

// errorAnswers are the texts of the whole-page answers by status; other
// 4xx get errRequest, other 5xx errInternal.
var (
	errorAnswers = map[int]errorAnswer{
		http.StatusNotFound:              {"err.notfound.title", "err.notfound.text"},
		http.StatusMethodNotAllowed:      {"err.method.title", "err.method.text"},
		http.StatusRequestEntityTooLarge: {"err.toolarge.title", "err.toolarge.text"},
		http.StatusForbidden:             {"err.csrf.title", "err.csrf.text"},
		http.StatusTooManyRequests:       {"err.rate.title", "err.rate.text"},
		http.StatusServiceUnavailable:    {"err.unavailable.title", "err.unavailable.text"},
	}
	errRequest  = errorAnswer{"err.request.title", "err.request.text"}
	errInternal = errorAnswer{"err.internal.title", "err.internal.text"}
)

func answerFor(status int) errorAnswer {
	if a, ok := errorAnswers[status]; ok {
		return a
	}
	if status >= 500 {
		return errInternal
	}
	return errRequest
}

// siteCSRFToken is the form token of the site-wide language switch (POST
// /language, bound to nothing), whatever route answers the page.
func siteCSRFToken(c echo.Context) string {
	nonce, _ := c.Get(csrfNonceKey).(string)
	if nonce == "" {
		return ""
	}
	return csrfTokenFor(nonce, "")
}

// requestID is the ID of c's request, shown on failure pages so that the
// service desk finds the log lines.
func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// errorHandler maps any error a handler returns (or the router's 404 and
// 405) to its answer; causes are logged with the request ID, never shown.
func errorHandler(d Deps) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code := http.StatusInternalServerError
		var he *echo.HTTPError
		switch {
		case errors.As(err, &he):
			code = he.Code
		case storeDown(err): // before directoryDown: it may wrap a deadline
			d.Logger.WarnContext(c.Request().Context(), "the store does not answer", "route", c.Path(),
				"request_id", requestID(c), "err", err)
			_ = storeDownAnswer(c, d)
			return
		case directoryDown(err):
			code = http.StatusServiceUnavailable
			d.Logger.WarnContext(c.Request().Context(), "directory does not answer", "route", c.Path(),
				"request_id", requestID(c), "err", err)
		default:
			d.Logger.ErrorContext(c.Request().Context(), "request failed", "route", c.Path(),
				"request_id", requestID(c), "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		path := c.Request().URL.Path
		switch {
		case strings.HasPrefix(path, "/api/"):
			_ = apiFail(c, code, apiCode(code), apiMessage(code))
		case strings.HasPrefix(path, "/sms/"), d.Pages == nil:
			// Twilio reads the status only (a 4xx or 5xx is logged in its
			// console); no markup it would try to run.
			_ = c.String(code, http.StatusText(code))
		default:
			if werr := errorPage(c, d, code); werr != nil {
				d.Logger.ErrorContext(c.Request().Context(), "error page failed", "request_id", requestID(c), "err", werr)
				_ = c.String(code, http.StatusText(code))
			}
		}
	}
}

// apiCode is the API's stable code for a status the router or a
// middleware answered.
func apiCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge, http.StatusBadRequest:
		return "invalid_request"
	case http.StatusServiceUnavailable:
		return "directory_unavailable"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	return "internal"
}

// apiMessage: the API's message for such a status; never an error chain.
func apiMessage(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return directoryUnavailableMessage
	case http.StatusInternalServerError:
		return "internal error; see the server log"
	}
	return strings.ToLower(http.StatusText(status))
}

// directoryUnavailableMessage is the API's answer when the directory does
// not answer (problemOf, errorHandler).
const directoryUnavailableMessage = "the directory does not answer; try again in a few minutes"

// errorPage renders the whole-page answer for status: in the console's
// layout under /admin/ (back to the console's home), else in the site's
// (back to the start page).
func errorPage(c echo.Context, d Deps, status int) error {
	return errorPageWith(c, d, status, answerFor(status))
}

// errorPageWith is errorPage saying a.
func errorPageWith(c echo.Context, d Deps, status int, a errorAnswer) error {
	id := ""
	if status >= 500 {
		id = requestID(c)
	}
	lang := browserLanguage(c, d.Language)
	if strings.HasPrefix(c.Request().URL.Path, "/admin") && d.AdminDirectory != nil {
		return writePage(c, d.Pages, status, templates.AdminError, lang, adminView{
			CSRF: csrfToken(c), Back: "/admin/", Title: templates.Msg{Key: a.title},
			Error: &templates.Msg{Key: a.text}, RequestID: id})
	}
	return writePage(c, d.Pages, status, templates.PageError, lang, pageView{
		CSRF: siteCSRFToken(c), Return: "/",
		Title: templates.Msg{Key: a.title}, Error: &templates.Msg{Key: a.text},
		Continue: "/", ContinueText: "error.home", RequestID: id})
}

// homeView is the start page: how to reset, whom to ask.
type homeView struct {
	Number, Helpdesk string
	PhoneChange      bool // the safe phone change is served
	Demo             bool // demo mode: link to the phone simulator
	Reset            bool // the reset from a browser is served (/reset)
}

// home serves GET /: what an employee who opens the site can do.
func home(d Deps) echo.HandlerFunc {
	v := homeView{Number: d.SMSNumber, Helpdesk: d.Helpdesk, Demo: d.Demo != nil, Reset: d.Reset != nil,
		PhoneChange: d.PhoneChange != nil && d.Store != nil && d.Enrollment != nil}
	return func(c echo.Context) error {
		return writePage(c, d.Pages, http.StatusOK, templates.PageHome, browserLanguage(c, d.Language),
			pageView{CSRF: csrfToken(c), Return: "/", Home: &v})
	}
}

// postLanguage serves POST /language, the language switch of the pages
// that belong to no enrollment: the choice holds for every page.
func postLanguage(secure bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if lang := c.FormValue("lang"); templates.SupportedLanguage(lang) {
			rememberChoice(c, lang, secure)
		}
		return c.Redirect(http.StatusSeeOther, localPath(c.FormValue("back")))
	}
}

// localPath keeps a return address only when it is a path of this site;
// otherwise "/".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}

// opProblem is how an admin operation's error is answered: the same status
// for the console and the API, the API's stable code and message, and the
// console's text.
type opProblem struct {
	status  int
	code    string
	message string
	page    templates.Msg
}

// problemOf maps an error of the enrollment service or the directory to
// its answer, in one place for the console and the API. known is false
// for an error no case names (a 500, to be logged); a directory that does
// not answer is known, a 503.
func problemOf(err error) (p opProblem, known bool) {
	var pe *enroll.PhoneError
	var refused *directory.RefusedError
	switch {
	case errors.As(err, &refused):
		return opProblem{http.StatusUnprocessableEntity, "no_self_service", refused.Error(),
			templates.Msg{Key: "admin.err.no_self_service." + string(refused.Reason),
				Args: map[string]string{"username": refused.Username, "group": refused.Group}}}, true
	case errors.As(err, &pe):
		return opProblem{http.StatusUnprocessableEntity, "invalid_phone", pe.Error(), templates.Msg{Key: "admin.err.phone"}}, true
	case errors.Is(err, enroll.ErrPhoneTaken):
		return opProblem{http.StatusConflict, "phone_taken", "this number belongs to another active enrollment",
			templates.Msg{Key: "admin.err.phone_taken"}}, true
	case errors.Is(err, enroll.ErrCountryNotAllowed):
		return opProblem{http.StatusUnprocessableEntity, "country_not_allowed",
			"numbers from this country are not accepted (sms.allowed_countries)", templates.Msg{Key: "admin.err.country"}}, true
	case errors.Is(err, enroll.ErrNoMail):
		return opProblem{http.StatusUnprocessableEntity, "no_mail", "the user has no mail address in the directory",
			templates.Msg{Key: "admin.act.no_mail"}}, true
	case errors.Is(err, enroll.ErrMailOff):
		return opProblem{http.StatusUnprocessableEntity, "mail_off", "mail is not configured, so no activation email can be sent",
			templates.Msg{Key: "admin.act.mail_off"}}, true
	case errors.Is(err, enroll.ErrNotLocked):
		return opProblem{http.StatusConflict, "not_locked", "the account is not locked", templates.Msg{Key: "admin.err.not_locked"}}, true
	case errors.Is(err, enroll.ErrWrongState):
		return opProblem{http.StatusConflict, "wrong_state", err.Error(), templates.Msg{Key: "admin.err.wrong_state"}}, true
	case errors.Is(err, enroll.ErrInvalid), errors.Is(err, directory.ErrInvalidInput):
		return opProblem{http.StatusUnprocessableEntity, "invalid_request", err.Error(), templates.Msg{Key: "admin.err.invalid"}}, true
	case errors.Is(err, directory.ErrNotFound): // before enroll.ErrNotFound: it may wrap both
		return opProblem{http.StatusNotFound, "user_not_found", "no such user in the directory",
			templates.Msg{Key: "admin.err.not_in_directory"}}, true
	case errors.Is(err, enroll.ErrNotFound):
		return opProblem{http.StatusNotFound, "not_enrolled", "no enrollment for this user", templates.Msg{Key: "admin.err.not_enrolled"}}, true
	case errors.Is(err, directory.ErrAmbiguous):
		return opProblem{http.StatusConflict, "ambiguous", "the name matches more than one directory entry: use the DN",
			templates.Msg{Key: "admin.err.ambiguous_group"}}, true
	case errors.Is(err, directory.ErrTooMany):
		return opProblem{http.StatusUnprocessableEntity, "too_many", err.Error(), templates.Msg{Key: "admin.err.too_many"}}, true
	case errors.Is(err, directory.ErrInsufficientRights):
		return opProblem{http.StatusForbidden, "insufficient_rights", "the service account may not do this in the directory",
			templates.Msg{Key: "admin.err.rights"}}, true
	case storeDown(err): // before directoryDown: it may wrap a deadline
		return opProblem{http.StatusServiceUnavailable, "store_unavailable",
			storeUnavailableMessage, templates.Msg{Key: "admin.err.store"}}, true
	case directoryDown(err):
		return opProblem{http.StatusServiceUnavailable, "directory_unavailable",
			directoryUnavailableMessage, templates.Msg{Key: "admin.err.directory"}}, true
	}
	return opProblem{http.StatusInternalServerError, "internal", "internal error; see the server log",
		templates.Msg{Key: "admin.err.internal"}}, false
}

// pageProblem is problemOf for the console. The page shows a catalog
// sentence and the request ID (adminSite.render); the cause goes to the
// log: an error when no case names it, else a warning.
func (s *adminSite) pageProblem(c echo.Context, err error) (int, templates.Msg) {
	s.gate.Observe(err)
	p, known := problemOf(err)
	level := slog.LevelWarn
	if !known {
		level = slog.LevelError
	}
	s.log.Log(c.Request().Context(), level, "admin operation failed", "route", c.Path(), "request_id", requestID(c),
		"status", p.status, "err", err)
	return p.status, p.page
}

// apiProblem answers err as an API error, logging what no case names.
func (s *adminSite) apiProblem(c echo.Context, err error) error {
	s.gate.Observe(err)
	p, known := problemOf(err)
	if storeDown(err) {
		retryAfterStore(c)
	}
	if !known {
		s.log.ErrorContext(c.Request().Context(), "api operation failed", "route", c.Path(), "err", err)
	}
	return apiFail(c, p.status, p.code, p.message)
}
