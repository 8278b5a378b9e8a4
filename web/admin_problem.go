package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

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
	p, known := problemOf(err)
	if !known {
		s.log.ErrorContext(c.Request().Context(), "api operation failed", "route", c.Path(), "err", err)
	}
	return apiFail(c, p.status, p.code, p.message)
}
