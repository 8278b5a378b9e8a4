package web

// How the enrollment pages answer: errors mapped to messages and statuses,
// whole-page answers, rendering, rate limits, cookies and formatting.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// problem is how a page answers an error of the service.
type problem struct {
	status int
	msg    templates.Msg
	field  string
	left   *templates.Msg // tries left after a wrong code
}

// Errors of the form itself, found before asking the service.
var (
	errNoMethod  = errors.New("web: no verification method chosen")
	errEmptyCode = errors.New("web: no code typed")
)

// setProblem puts the error on its field when the page has that field,
// else at the top of the page.
func (v *pageView) setProblem(pr problem, fields ...string) {
	v.Error, v.AttemptsLeft = &pr.msg, pr.left
	for _, f := range fields {
		if f == pr.field {
			v.ErrorField = f
		}
	}
}

// formProblem maps an error the user can fix on the same page; ok is false
// for the others (unknown or expired link, lockout, failures).
func (s *enrollSite) formProblem(err error) (problem, bool) {
	var (
		phoneErr  *enroll.PhoneError
		resendErr *enroll.ResendError
		wrongErr  *enroll.WrongCodeError
		lockedErr *enroll.LockedError
	)
	unprocessable := http.StatusUnprocessableEntity
	switch {
	case err == nil, errors.Is(err, enroll.ErrTokenUnknown), errors.Is(err, enroll.ErrTokenExpired), errors.As(err, &lockedErr):
		return problem{}, false
	case errors.As(err, &phoneErr):
		return problem{status: unprocessable, msg: phoneMsg(phoneErr), field: "phone"}, true
	case errors.Is(err, enroll.ErrCountryNotAllowed):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.phone.country"}, field: "phone"}, true
	case errors.Is(err, enroll.ErrPhoneTaken):
		return problem{status: http.StatusConflict, msg: templates.Msg{Key: "err.phone.taken"}, field: "phone"}, true
	case errors.Is(err, errNoMethod):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.method"}, field: "method"}, true
	case errors.Is(err, enroll.ErrMethodOff):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.method_off"}, field: "method"}, true
	case errors.As(err, &resendErr):
		return problem{status: http.StatusTooManyRequests, msg: templates.Msg{Key: "err.resend", Args: map[string]string{
			"time": s.clock(resendErr.At), "wait": wait(resendErr.At.Sub(s.now()))}}}, true
	case errors.Is(err, errEmptyCode):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.code.empty"}, field: "code"}, true
	case errors.As(err, &wrongErr):
		left := &templates.Msg{Key: "attempts.one"}
		if wrongErr.AttemptsLeft != 1 {
			left = &templates.Msg{Key: "attempts.other", Args: map[string]string{"count": strconv.Itoa(wrongErr.AttemptsLeft)}}
		}
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.code.wrong"}, field: "code", left: left}, true
	case errors.Is(err, enroll.ErrCodeWrong):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.code.wrong"}, field: "code"}, true
	case errors.Is(err, enroll.ErrCodeExpired):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.code.expired"}}, true
	case errors.Is(err, enroll.ErrNoCode):
		return problem{status: http.StatusConflict, msg: templates.Msg{Key: "err.code.none"}}, true
	case errors.Is(err, enroll.ErrInvalid):
		return problem{status: unprocessable, msg: templates.Msg{Key: "err.invalid"}}, true
	}
	return problem{}, false
}

// phoneMsg explains a refused number; the region is named in the page's
// language when the template renders it.
func phoneMsg(e *enroll.PhoneError) templates.Msg {
	switch {
	case errors.Is(e, enroll.ErrPhoneEmpty):
		return templates.Msg{Key: "err.phone.empty"}
	case errors.Is(e, enroll.ErrPhoneNoSMS):
		return templates.Msg{Key: "err.phone.no_sms"} // noSMSProblem words it for the page's methods
	case errors.Is(e, enroll.ErrPhoneInvalid) && e.Region != "":
		return templates.Msg{Key: "err.phone.invalid", Args: map[string]string{"region": e.Region}}
	case errors.Is(e, enroll.ErrPhoneInvalid):
		return templates.Msg{Key: "err.phone.invalid_any"}
	}
	return templates.Msg{Key: "err.phone.not_number"}
}

// fail answers with a whole page: the link is unknown (404) or expired
// (410), codes are locked (429), or something broke (500). The first two
// say nothing about the user: only what to do next.
func (s *enrollSite) fail(c echo.Context, token string, err error) error {
	var (
		lockedErr *enroll.LockedError
		usedErr   *enroll.LinkUsedError
	)
	switch {
	case errors.As(err, &usedErr):
		// Back, a reload or the email opened again after enrolling: how to
		// reset now, not "unknown link".
		next := &templates.Msg{Key: "err.used.next_any"}
		if usedErr.SMSNumber != "" {
			next = &templates.Msg{Key: "err.used.next", Args: map[string]string{"number": usedErr.SMSNumber}}
		}
		return s.render(c, http.StatusOK, templates.PageError, usedErr.Language, pageView{
			Title: templates.Msg{Key: "err.used.title"}, Notice: &templates.Msg{Key: "err.used.text"}, Next: next})
	case errors.Is(err, enroll.ErrTokenUnknown):
		return s.errorPage(c, http.StatusNotFound, pageView{Title: templates.Msg{Key: "err.unknown.title"},
			Error: &templates.Msg{Key: "err.unknown.text"}, Next: &templates.Msg{Key: "err.new_link"}})
	case errors.Is(err, enroll.ErrTokenExpired):
		return s.errorPage(c, http.StatusGone, pageView{Title: templates.Msg{Key: "err.expired.title"},
			Error: &templates.Msg{Key: "err.expired.text"}, Next: &templates.Msg{Key: "err.expired.next"}})
	case errors.Is(err, directory.ErrNoSelfService): // a privileged account, a deny group, no allow group
		return s.errorPage(c, http.StatusForbidden, pageView{Title: templates.Msg{Key: "err.no_self_service.title"},
			Error: &templates.Msg{Key: "err.no_self_service.text"}})
	case errors.As(err, &lockedErr):
		lang := s.fallbackLang(c)
		if p, err := s.open(c, token); err == nil {
			lang = p.Language
		}
		return s.locked(c, token, lang, lockedErr.Until, http.StatusTooManyRequests)
	case storeDown(err): // before directoryDown: it may wrap a deadline
		s.gate.Observe(err)
		s.logError(c, "enrollment page: the store does not answer", err)
		retryAfterStore(c)
		return s.errorPage(c, http.StatusServiceUnavailable, pageView{Title: templates.Msg{Key: errStore.title},
			Error: &templates.Msg{Key: errStore.text}, RequestID: requestID(c)})
	case directoryDown(err):
		s.logError(c, "enrollment page: the directory does not answer", err)
		return s.errorPage(c, http.StatusServiceUnavailable, pageView{Title: templates.Msg{Key: "err.unavailable.title"},
			Error: &templates.Msg{Key: "err.unavailable.text"}, RequestID: requestID(c), Continue: enrollLink(token),
			ContinueText: "error.retry"})
	}
	s.logError(c, "enrollment page failed", err)
	return s.errorPage(c, http.StatusInternalServerError, pageView{Title: templates.Msg{Key: "err.internal.title"},
		Error: &templates.Msg{Key: "err.internal.text"}, RequestID: requestID(c)})
}

// enrollLink is the address of token's page, or "" for what cannot be a
// token.
func enrollLink(token string) string {
	if token == "" || len(token) > maxToken {
		return ""
	}
	return "/enroll/" + token
}

// locked is the lockout page: when codes are accepted again, and the way on.
func (s *enrollSite) locked(c echo.Context, token, lang string, until time.Time, status int) error {
	v := pageView{
		CSRF: csrfToken(c), Base: "/enroll/" + token,
		Title:    templates.Msg{Key: "err.locked.title"},
		Error:    &templates.Msg{Key: "err.locked.text", Args: map[string]string{"time": s.clock(until)}},
		Next:     &templates.Msg{Key: "err.locked.next"},
		Continue: "/enroll/" + token,
	}
	return s.render(c, status, templates.PageError, lang, v)
}

// errorPage renders a page that belongs to no enrollment, in the language
// of the last page seen or of the browser.
func (s *enrollSite) errorPage(c echo.Context, status int, v pageView) error {
	// The page's one form is the site-wide language switch.
	v.CSRF, v.Return = siteCSRFToken(c), "/"
	return s.render(c, status, templates.PageError, s.fallbackLang(c), v)
}

// renderPage renders a page of the enrollment in its language.
func (s *enrollSite) renderPage(c echo.Context, status int, page, token string, p enroll.Page, v pageView) error {
	v.CSRF, v.Base = csrfToken(c), "/enroll/"+token
	v.ResetLink = s.reset && page == templates.PageDone
	if v.Name = p.DisplayName; v.Name == "" {
		v.Name = p.Username
	}
	return s.render(c, status, page, p.Language, v)
}

func (s *enrollSite) render(c echo.Context, status int, page, lang string, v pageView) error {
	v.localise(lang)
	return s.renderData(c, status, page, lang, v)
}

// localise completes the texts only the page's language can word.
func (v *pageView) localise(lang string) {
	if v.Error != nil && v.Error.Key == "err.phone.invalid" {
		// The country is named in the page's language, known only here.
		v.Error = &templates.Msg{Key: v.Error.Key, Args: map[string]string{"region": regionName(lang, v.Error.Args["region"])}}
	}
}

// renderData renders page with data, which the template sees as .Data.
func (s *enrollSite) renderData(c echo.Context, status int, page, lang string, data any) error {
	return writePage(c, s.pages, status, page, lang, data)
}

// writePage answers with page rendered in lang with data (.Data), under
// the pages' CSP and never cached. The page is rendered whole before
// anything is written: a template error is a 500, never half a page.
func writePage(c echo.Context, pages Pages, status int, page, lang string, data any) error {
	var buf bytes.Buffer
	if err := pages.Render(&buf, page, lang, data); err != nil {
		return err // a template bug: the error handler logs it
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// WritePage is writePage, for the pages of the packages under web.
func WritePage(c echo.Context, pages Pages, status int, page, lang string, data any) error {
	return writePage(c, pages, status, page, lang, data)
}

// limit refuses a POST beyond the per-address or the per-link budget.
func (s *enrollSite) limit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.limiter == nil {
			return next(c)
		}
		now := s.now()
		for _, l := range []struct {
			key   string
			limit int
		}{
			{"web:ip:" + c.RealIP(), postsPerIP},
			{"web:enroll:" + tokenKey(c.Param("token")), postsPerToken},
		} {
			ok, err := s.limiter.Allow(c.Request().Context(), l.key, now, postWindow, l.limit)
			if err != nil {
				return s.fail(c, "", fmt.Errorf("rate limit: %w", err))
			}
			if !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(postWindow/time.Second)))
				return s.errorPage(c, http.StatusTooManyRequests, pageView{Title: templates.Msg{Key: "err.rate.title"},
					Error: &templates.Msg{Key: "err.rate.text"}})
			}
		}
		return next(c)
	}
}

// csrfRefused is the page for a form posted without its token (or with a
// stale one): nothing was done; the link leads back to the page.
func (s *enrollSite) csrfRefused(c echo.Context) error {
	v := pageView{Title: templates.Msg{Key: "err.csrf.title"}, Error: &templates.Msg{Key: "err.csrf.text"},
		Next: &templates.Msg{Key: "err.csrf.next"}}
	v.Continue = enrollLink(c.Param("token"))
	return s.errorPage(c, http.StatusForbidden, v)
}

// tokenKey names a token in the rate-limit store without storing it.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// fallbackLang is the language of a page with no enrollment: the last
// choice, else the browser's, else the configured default.
func (s *enrollSite) fallbackLang(c echo.Context) string { return browserLanguage(c, s.lang) }

func (s *enrollSite) logError(c echo.Context, msg string, err error) {
	// The route pattern, never the path: it holds the token.
	s.log.ErrorContext(c.Request().Context(), msg, "route", c.Path(), "request_id", requestID(c), "err", err)
}

// clock shows a time of day in the server's zone: "10:42".
func (s *enrollSite) clock(t time.Time) string { return t.In(time.Local).Format("15:04") }

func (s *enrollSite) date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(time.Local).Format("2006-01-02 15:04")
}

// wait shows a short duration, rounded up: "45 s", "3 min".
func wait(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	switch {
	case secs < 1:
		secs = 1
	case secs > 120:
		return strconv.Itoa((secs+59)/60) + " min"
	}
	return strconv.Itoa(secs) + " s"
}

// groups writes a base32 key in groups of four for typing by hand.
func groups(secret string) string {
	var b strings.Builder
	for i, r := range secret {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// regionName names an ISO 3166 region in lang ("FR" → "France").
func regionName(lang, code string) string {
	r, err := language.ParseRegion(code)
	if err != nil {
		return code
	}
	if n := display.Regions(language.Make(lang)).Name(r); n != "" {
		return n
	}
	return code
}

// staticFiles serves the stylesheet: long-lived when asked with its
// content hash (?v=), an hour otherwise. No directory listings.
func staticFiles(fsys fs.FS) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("*")
		if !fs.ValidPath(name) || name == "." {
			return echo.ErrNotFound
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return echo.ErrNotFound
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		cache := "public, max-age=3600"
		if c.QueryParam("v") != "" {
			cache = "public, max-age=31536000, immutable"
		}
		c.Response().Header().Set("Cache-Control", cache)
		return c.Blob(http.StatusOK, ct, data)
	}
}
