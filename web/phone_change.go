package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// PhoneChangeService is the safe phone change of the enrollment service
// (enroll.Service): sign in with the directory password, a code to the
// new number, the change.
type PhoneChangeService interface {
	StartPhoneChange(ctx context.Context, login, password string) (string, enroll.PhoneChange, error)
	OpenPhoneChange(ctx context.Context, token string) (enroll.PhoneChange, error)
	SendPhoneChangeCode(ctx context.Context, token, rawPhone, method string) (enroll.PhoneChange, error)
	VerifyPhoneChange(ctx context.Context, token, code string) (enroll.Enrollment, error)
	EndPhoneChange(ctx context.Context, token string) error
}

var (
	_ PhoneChangeService = (*enroll.Service)(nil)
	_ LoginGuard         = (enroll.GuardStore)(nil)
)

const (
	phoneChangeBase   = "/phone/change"
	phoneChangeCookie = "replyreset_phone_change" // the phone change's token; never in a URL
)

// phoneChangeSite serves the safe phone change: GET /phone/change shows
// the step the browser is at (sign-in, new number, code); the forms post
// under it. The sign-in is guarded like the admin login: after 5 failures
// within 10 minutes, per account and per client address, sign-ins are
// refused for 10 minutes. A wrong password and an unknown user get the
// same page.
type phoneChangeSite struct {
	site  *enrollSite // rendering, languages, rate limits
	svc   PhoneChangeService
	guard LoginGuard
}

// changeView is the data of the phone change pages.
type changeView struct {
	pageView
	Username string // typed on the sign-in page
	Current  string // the registered number, masked
}

func (p *phoneChangeSite) register(e *echo.Echo) {
	e.GET(phoneChangeBase, p.show)
	e.POST(phoneChangeBase+"/signin", p.postSignIn, p.limit)
	e.POST(phoneChangeBase+"/number", p.postNumber, p.limit)
	e.POST(phoneChangeBase+"/resend", p.postResend, p.limit)
	e.POST(phoneChangeBase+"/verify", p.postVerify, p.limit)
	e.POST(phoneChangeBase+"/signout", p.postSignOut, p.limit)
	e.POST(phoneChangeBase+"/language", p.postLanguage, p.limit)
}

// GET /phone/change: the sign-in, or the step of the phone change under way.
func (p *phoneChangeSite) show(c echo.Context) error {
	token := p.token(c)
	if token == "" {
		return p.signInPage(c, http.StatusOK, "", nil)
	}
	pc, err := p.svc.OpenPhoneChange(c.Request().Context(), token)
	if err != nil {
		return p.failed(c, err)
	}
	if p.site.now().Before(pc.LockedUntil) {
		return p.locked(c, pc.Language, pc.LockedUntil, http.StatusOK)
	}
	if pc.NewPhone == "" || c.QueryParam("step") == "number" {
		return p.numberPage(c, http.StatusOK, pc, pc.NewPhone, "", nil)
	}
	v := p.verifyView(pc)
	if m := c.QueryParam("sent"); m == "sms" || m == "voice" {
		v.Notice = &templates.Msg{Key: "notice.sent." + m}
	}
	return p.render(c, http.StatusOK, templates.PageChangeVerify, pc.Language, v)
}

// POST /phone/change/signin: username and directory password, under the
// sign-in guard (signin_guard.go). A wrong password, an unknown user and a
// locked account get the same page, as late.
func (p *phoneChangeSite) postSignIn(c echo.Context) error {
	ctx := c.Request().Context()
	login, password := strings.TrimSpace(c.FormValue("username")), c.FormValue("password")
	try, until, err := beginSignIn(ctx, p.guard, p.site.now, "phone-change:user:"+loginName(login), "phone-change:ip:"+c.RealIP())
	if err != nil {
		return p.site.fail(c, "", err)
	}
	if try == nil {
		now := p.site.now()
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(max(until.Sub(now), time.Second)/time.Second)))
		return p.signInPage(c, http.StatusTooManyRequests, login,
			&templates.Msg{Key: "change.err.blocked", Args: map[string]string{"time": p.site.clock(until)}})
	}
	guardErr := func(err error) {
		if err != nil {
			p.site.logError(c, "phone change sign-in guard", err)
		}
	}
	start := time.Now()
	token, _, err := p.svc.StartPhoneChange(enroll.WithSource(ctx, c.RealIP()), login, password)
	var msg string
	switch {
	case err == nil:
		guardErr(try.passwordRight(ctx))
		p.setToken(c, token)
		return c.Redirect(http.StatusSeeOther, phoneChangeBase)
	case errors.Is(err, enroll.ErrBadLogin): // a locked account too
		defer waitFloor(ctx, start)
		msg = "change.err.bad_login"
	case errors.Is(err, directory.ErrMustChange):
		guardErr(try.passwordRight(ctx))
		msg = "change.err.must_change"
	case errors.Is(err, directory.ErrDisabled), errors.Is(err, directory.ErrAccountExpired), errors.Is(err, directory.ErrPasswordExpired):
		guardErr(try.passwordRight(ctx))
		msg = "change.err.account_locked"
	case errors.Is(err, enroll.ErrNotActive):
		guardErr(try.passwordRight(ctx))
		msg = "change.err.not_active"
	case errors.Is(err, directory.ErrNoSelfService):
		guardErr(try.passwordRight(ctx))
		return p.signInPage(c, http.StatusForbidden, login, &templates.Msg{Key: "change.err.no_self_service"})
	default:
		guardErr(try.notTried(ctx))
		return p.site.fail(c, "", err)
	}
	return p.signInPage(c, http.StatusUnprocessableEntity, login, &templates.Msg{Key: msg})
}

// POST /phone/change/number: the new number and how to send its code.
func (p *phoneChangeSite) postNumber(c echo.Context) error {
	phone, method := c.FormValue("phone"), c.FormValue("method")
	if method != "sms" && method != "voice" {
		return p.sendFailed(c, phone, method, errNoMethod)
	}
	if _, err := p.svc.SendPhoneChangeCode(c.Request().Context(), p.token(c), phone, method); err != nil {
		return p.sendFailed(c, phone, method, err)
	}
	return c.Redirect(http.StatusSeeOther, phoneChangeBase+"?sent="+method)
}

// POST /phone/change/resend: the code again, by SMS or call.
func (p *phoneChangeSite) postResend(c echo.Context) error {
	ctx, token, method := c.Request().Context(), p.token(c), c.FormValue("method")
	pc, err := p.svc.OpenPhoneChange(ctx, token)
	if err != nil {
		return p.failed(c, err)
	}
	if method != "sms" && method != "voice" {
		err = errNoMethod
	} else if _, err = p.svc.SendPhoneChangeCode(ctx, token, pc.NewPhone, method); err == nil {
		return c.Redirect(http.StatusSeeOther, phoneChangeBase+"?sent="+method)
	}
	return p.verifyFailed(c, err)
}

// sendFailed answers a refused number on the number page.
func (p *phoneChangeSite) sendFailed(c echo.Context, phone, method string, err error) error {
	pr, pc, answered, aerr := p.reopen(c, err)
	if answered {
		return aerr
	}
	method = noSMSProblem(err, &pr, pc.Methods, method)
	return p.numberPage(c, pr.status, pc, phone, method, &pr)
}

// POST /phone/change/verify: the code sent to the new number.
func (p *phoneChangeSite) postVerify(c echo.Context) error {
	code := strings.TrimSpace(c.FormValue("code"))
	if code == "" {
		return p.verifyFailed(c, errEmptyCode)
	}
	token := p.token(c)
	e, err := p.svc.VerifyPhoneChange(enroll.WithSource(c.Request().Context(), c.RealIP()), token, code)
	if err != nil {
		return p.verifyFailed(c, err)
	}
	p.clearToken(c)
	v := changeView{pageView: pageView{Phone: e.Phone}}
	return p.render(c, http.StatusOK, templates.PageChangeDone, e.Language, v)
}

// verifyFailed answers an error on the code page.
func (p *phoneChangeSite) verifyFailed(c echo.Context, err error) error {
	pr, pc, answered, aerr := p.reopen(c, err)
	if answered {
		return aerr
	}
	if pc.NewPhone == "" || errors.Is(err, enroll.ErrPhoneTaken) {
		return p.numberPage(c, pr.status, pc, pc.NewPhone, "", &pr)
	}
	if errors.Is(err, enroll.ErrNoCode) {
		// A number but no live code: the last one was used or died.
		pr = problem{status: http.StatusUnprocessableEntity, msg: templates.Msg{Key: "err.code.expired"}}
	}
	v := p.verifyView(pc)
	v.setProblem(pr, "code")
	return p.render(c, pr.status, templates.PageChangeVerify, pc.Language, v)
}

// POST /phone/change/signout: end the phone change.
func (p *phoneChangeSite) postSignOut(c echo.Context) error {
	if err := p.svc.EndPhoneChange(c.Request().Context(), p.token(c)); err != nil {
		p.site.logError(c, "phone change sign-out", err)
	}
	p.clearToken(c)
	return c.Redirect(http.StatusSeeOther, phoneChangeBase)
}

// POST /phone/change/language: the pages in another language.
func (p *phoneChangeSite) postLanguage(c echo.Context) error {
	if lang := c.FormValue("lang"); templates.SupportedLanguage(lang) {
		rememberChoice(c, lang, p.site.secure)
	}
	back := phoneChangeBase
	if c.FormValue("back") == "number" {
		back += "?step=number"
	}
	return c.Redirect(http.StatusSeeOther, back)
}

// reopen maps err to the problem to show on the page, with the phone
// change read again; answered is true when the answer is a whole page
// instead (failed), sent with the returned error.
func (p *phoneChangeSite) reopen(c echo.Context, err error) (pr problem, pc enroll.PhoneChange, answered bool, _ error) {
	pr, ok := p.problem(err)
	if !ok {
		return pr, pc, true, p.failed(c, err)
	}
	if pc, err = p.svc.OpenPhoneChange(c.Request().Context(), p.token(c)); err != nil {
		return pr, pc, true, p.failed(c, err)
	}
	return pr, pc, false, nil
}

// problem maps an error the user can fix on the same page.
func (p *phoneChangeSite) problem(err error) (problem, bool) {
	if errors.Is(err, enroll.ErrSamePhone) {
		return problem{status: http.StatusUnprocessableEntity, msg: templates.Msg{Key: "change.err.same"}, field: "phone"}, true
	}
	return p.site.formProblem(err)
}

// failed answers the errors that end the phone change or the page: the
// sign-in is gone (the sign-in page again), the enrollment is no longer
// active, too many wrong codes, or a failure.
func (p *phoneChangeSite) failed(c echo.Context, err error) error {
	var lockedErr *enroll.LockedError
	switch {
	case errors.Is(err, enroll.ErrTokenUnknown), errors.Is(err, enroll.ErrTokenExpired):
		p.clearToken(c)
		return p.signInPage(c, http.StatusUnauthorized, "", &templates.Msg{Key: "change.err.ended"})
	case errors.Is(err, enroll.ErrNotActive):
		p.clearToken(c)
		return p.signInPage(c, http.StatusConflict, "", &templates.Msg{Key: "change.err.not_active"})
	case errors.Is(err, directory.ErrNoSelfService):
		p.clearToken(c)
		return p.signInPage(c, http.StatusForbidden, "", &templates.Msg{Key: "change.err.no_self_service"})
	case errors.As(err, &lockedErr):
		lang := p.site.fallbackLang(c)
		if pc, err := p.svc.OpenPhoneChange(c.Request().Context(), p.token(c)); err == nil {
			lang = pc.Language
		}
		return p.locked(c, lang, lockedErr.Until, http.StatusTooManyRequests)
	}
	return p.site.fail(c, "", err)
}

// locked is the page after too many wrong codes.
func (p *phoneChangeSite) locked(c echo.Context, lang string, until time.Time, status int) error {
	v := changeView{pageView: pageView{
		Title:    templates.Msg{Key: "err.locked.title"},
		Error:    &templates.Msg{Key: "err.locked.text", Args: map[string]string{"time": p.site.clock(until)}},
		Next:     &templates.Msg{Key: "change.locked.next"},
		Continue: phoneChangeBase,
	}}
	return p.render(c, status, templates.PageError, lang, v)
}

func (p *phoneChangeSite) signInPage(c echo.Context, status int, login string, msg *templates.Msg) error {
	v := changeView{pageView: pageView{Error: msg}, Username: login}
	return p.render(c, status, templates.PageChangeSignIn, p.site.fallbackLang(c), v)
}

func (p *phoneChangeSite) numberPage(c echo.Context, status int, pc enroll.PhoneChange, phone, method string, pr *problem) error {
	v := changeView{pageView: pageView{Name: pc.DisplayName, Phone: phone, Methods: pc.Methods, Method: method, Back: "number"},
		Current: templates.MaskPhone(pc.Current)}
	if v.Method == "" && len(pc.Methods) > 0 {
		v.Method = pc.Methods[0]
	}
	if pr != nil {
		fields := []string{"phone"}
		if len(pc.Methods) > 1 {
			fields = append(fields, "method")
		}
		v.setProblem(*pr, fields...)
	}
	return p.render(c, status, templates.PageChangeNumber, pc.Language, v)
}

func (p *phoneChangeSite) verifyView(pc enroll.PhoneChange) changeView {
	v := changeView{pageView: pageView{Phone: pc.NewPhone, ResendMethods: pc.Methods}}
	now := p.site.now()
	if now.Before(pc.CodeExpires) {
		v.CodeUntil = p.site.clock(pc.CodeExpires)
	}
	if now.Before(pc.ResendAt) {
		v.ResendAt, v.ResendIn = p.site.clock(pc.ResendAt), wait(pc.ResendAt.Sub(now))
	}
	return v
}

func (p *phoneChangeSite) render(c echo.Context, status int, page, lang string, v changeView) error {
	v.CSRF, v.Base = csrfToken(c), phoneChangeBase
	lang = pageLanguage(c, lang, p.site.lang) // a switch's choice beats the enrollment's
	v.localise(lang)
	return p.site.renderData(c, status, page, lang, v)
}

// limit refuses a POST beyond the per-address or the per-sign-in budget
// of the enrollment forms.
func (p *phoneChangeSite) limit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p.site.limiter == nil {
			return next(c)
		}
		keys := map[string]int{"web:ip:" + c.RealIP(): postsPerIP}
		if t := p.token(c); t != "" {
			keys["web:phone-change:"+tokenKey(t)] = postsPerToken
		}
		now := p.site.now()
		for key, limit := range keys {
			ok, err := p.site.limiter.Allow(c.Request().Context(), key, now, postWindow, limit)
			if err != nil {
				return p.site.fail(c, "", err)
			}
			if !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(postWindow/time.Second)))
				return p.site.errorPage(c, http.StatusTooManyRequests, pageView{Title: templates.Msg{Key: "err.rate.title"},
					Error: &templates.Msg{Key: "err.rate.text"}})
			}
		}
		return next(c)
	}
}

func (p *phoneChangeSite) token(c echo.Context) string { return phoneChangeToken(c, p.site.secure) }

// phoneChangeToken is the token of the phone change the request belongs
// to: as set or cleared by this request already, else its cookie's.
func phoneChangeToken(c echo.Context, secure bool) string {
	if t, ok := c.Get(phoneChangeKey).(string); ok {
		return t
	}
	t, ok := readCookie(c, secure, phoneChangeCookie)
	if !ok || len(t) > maxToken {
		return ""
	}
	return t
}

// phoneChangeKey is the context key of the token set or cleared by the
// request (phoneChangeToken).
const phoneChangeKey = "phone_change_token"

func (p *phoneChangeSite) setToken(c echo.Context, token string) {
	c.Set(phoneChangeKey, token)
	setCookie(c, p.site.secure, phoneChangeCookie, token, 3600, http.SameSiteStrictMode)
}

func (p *phoneChangeSite) clearToken(c echo.Context) {
	c.Set(phoneChangeKey, "")
	setCookie(c, p.site.secure, phoneChangeCookie, "", -1, http.SameSiteStrictMode)
}

// phoneChangeCSRFRefused is the page for a phone change form posted
// without its form token: nothing was done.
func (s *enrollSite) phoneChangeCSRFRefused(c echo.Context) error {
	return s.errorPage(c, http.StatusForbidden, pageView{Title: templates.Msg{Key: "err.csrf.title"},
		Error: &templates.Msg{Key: "err.csrf.text"}, Next: &templates.Msg{Key: "err.csrf.next"}, Continue: phoneChangeBase})
}

// noSMSProblem words a number refused for SMS (landline or VoIP) for the
// page's methods: with the voice call on offer, the message points to it
// and it becomes the chosen method, which is returned.
func noSMSProblem(err error, pr *problem, methods []string, method string) string {
	if !errors.Is(err, enroll.ErrPhoneNoSMS) {
		return method
	}
	if !slices.Contains(methods, "voice") {
		pr.msg = templates.Msg{Key: "err.phone.no_sms_only"}
		return method
	}
	pr.msg, pr.field = templates.Msg{Key: "err.phone.no_sms"}, "method"
	return "voice"
}
