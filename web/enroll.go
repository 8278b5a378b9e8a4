package web

import (
	"context"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// Enrollment is what the enrollment pages need from the enrollment
// service (enroll.Service).
type Enrollment interface {
	Open(ctx context.Context, token string) (enroll.Page, error)
	SetLanguage(ctx context.Context, token, lang string) (enroll.Page, error)
	BrowserLanguage(ctx context.Context, token, lang string) (enroll.Page, error)
	SendCode(ctx context.Context, token, rawPhone, method string) (enroll.Page, error)
	Resend(ctx context.Context, token, method string) (enroll.Page, error)
	VerifyCode(ctx context.Context, token, code string) (enroll.Page, error)
	StartApp(ctx context.Context, token, rawPhone string) (enroll.AppSetup, error)
	VerifyApp(ctx context.Context, token, code string) (enroll.Page, error)
}

// Pages renders the HTML pages and holds their static assets
// (templates.Pages).
type Pages interface {
	Render(w io.Writer, page, lang string, data any) error
	Static() fs.FS
}

// RateLimiter is a sliding-window limiter shared by every instance
// (enroll.Store): Allow records a hit for key and reports whether key
// had fewer than limit hits within window before now.
type RateLimiter interface {
	Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error)
}

// Limits on the enrollment forms. Tokens are 256-bit, so these are not
// what stops guessing; they stop one client (or one link) from flooding the
// store and the SMS budget. Many employees may enroll from behind one
// company NAT on the same morning, hence the wider per-address limit.
const (
	postWindow    = 10 * time.Minute
	postsPerIP    = 120
	postsPerToken = 20
)

const (
	csrfField  = "csrf_token"      // the hidden field of every form
	csrfCookie = "replyreset_csrf" // holds the browser's CSRF nonce (csrf.go)
	pageCSP    = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	maxToken   = 128 // longer path parameters are not tokens: answered without asking the service
)

// enrollSite serves /enroll/:token and the pages under it.
type enrollSite struct {
	svc     Enrollment
	pages   Pages
	limiter RateLimiter // nil: no limits
	log     *slog.Logger
	now     func() time.Time
	lang    string     // default page language when nothing else tells
	secure  bool       // cookies only over https
	gate    *StoreGate // told when the store does not answer; nil: none
	reset   bool       // /reset is served: the done page links to it
}

func (s *enrollSite) register(e *echo.Echo) {
	e.GET("/enroll/:token", s.show)
	e.GET("/enroll/:token/app", s.showApp)
	e.GET("/enroll/:token/qr.png", s.qr)
	e.POST("/enroll/:token/phone", s.postPhone, s.limit)
	e.POST("/enroll/:token/verify", s.postVerify, s.limit)
	e.POST("/enroll/:token/resend", s.postResend, s.limit)
	e.POST("/enroll/:token/app", s.postApp, s.limit)
	e.POST("/enroll/:token/language", s.postLanguage, s.limit)
}

// pageView is the data of every enrollment page; each page uses some fields.
type pageView struct {
	CSRF string // the form token
	Base string // "/enroll/<token>"; empty on pages that belong to no enrollment
	Back string // where the language form returns: "", "phone" or "app"

	Name          string // the user's display name
	Phone         string // typed (phone page) or being verified (verify, done)
	Methods       []string
	Method        string // the method chosen on the phone page
	ExpiresAt     string // the activation link's expiry
	CodeUntil     string // the code's expiry
	ResendAt      string // "10:42" while a new code must wait
	ResendIn      string // "45 s"
	ResendMethods []string
	Secret        string // the app's key in groups of four
	QR            string // URL of the QR image
	// AppLink is the otpauth:// URI itself, for a phone that cannot scan
	// its own screen: tapping it opens the authenticator app.
	AppLink template.URL

	Notice       *templates.Msg
	Delivery     *deliveryView // the newest code's delivery (verify page)
	Reload       bool          // the hint to reload the page for the delivery status
	Error        *templates.Msg
	ErrorField   string // "phone", "method", "code", or "" for the page
	AttemptsLeft *templates.Msg

	// The error page.
	Title        templates.Msg
	Next         *templates.Msg
	Continue     string // link to go on with, when there is one
	ContinueText string // its text key; "" = error.continue
	RequestID    string // shown on failure pages, to find the log lines

	// Return is where the site-wide language switch (POST /language)
	// returns, on pages that belong to no enrollment (Base empty).
	Return string
	Home   *homeView // the start page (GET /)
	// ResetLink: the done page links to /reset (reset.web.enabled).
	ResetLink bool
}

// GET /enroll/:token: the page of the current step.
func (s *enrollSite) show(c echo.Context) error {
	token := c.Param("token")
	p, err := s.open(c, token)
	if err != nil {
		return s.fail(c, token, err)
	}
	p = s.pageLanguage(c, token, p)
	if p.Step == enroll.StepDone {
		return s.renderPage(c, http.StatusOK, templates.PageDone, token, p, pageView{Phone: p.Phone})
	}
	if s.now().Before(p.LockedUntil) {
		return s.locked(c, token, p.Language, p.LockedUntil, http.StatusOK)
	}
	if p.Step == enroll.StepPhone || c.QueryParam("step") == "phone" {
		phone := p.PrefillPhone
		if p.Phone != "" {
			phone = p.Phone // changing the number: start from the one typed before
		}
		return s.phonePage(c, http.StatusOK, token, p, phone, "", nil)
	}
	if p.ResendAt.IsZero() && slices.Contains(p.Methods, "app") {
		// A number but no code ever sent: the app set-up is under way.
		return c.Redirect(http.StatusSeeOther, "/enroll/"+token+"/app")
	}
	v := s.verifyView(p)
	if m := c.QueryParam("sent"); m == "sms" || m == "voice" {
		v.Notice = &templates.Msg{Key: "notice.sent." + m}
		if v.Delivery != nil && !v.Delivery.Failed && p.Delivery.Status != enroll.DeliveryDelivered {
			v.Delivery = nil // "being sent" would only repeat the notice
		}
	}
	return s.renderPage(c, http.StatusOK, templates.PageVerify, token, p, v)
}

// POST /enroll/:token/phone: phone and method; a code is sent (sms, voice)
// or the app is set up (app).
func (s *enrollSite) postPhone(c echo.Context) error {
	token := c.Param("token")
	phone, method := c.FormValue("phone"), c.FormValue("method")
	ctx := c.Request().Context()
	var err error
	switch method {
	case "sms", "voice":
		if _, err = s.svc.SendCode(ctx, token, phone, method); err == nil {
			return c.Redirect(http.StatusSeeOther, "/enroll/"+token+"?sent="+method)
		}
	case "app":
		if _, err = s.svc.StartApp(ctx, token, phone); err == nil {
			return c.Redirect(http.StatusSeeOther, "/enroll/"+token+"/app")
		}
	default:
		err = errNoMethod
	}
	pr, ok := s.formProblem(err)
	if !ok {
		return s.fail(c, token, err)
	}
	p, oerr := s.open(c, token)
	if oerr != nil {
		return s.fail(c, token, oerr)
	}
	method = noSMSProblem(err, &pr, p.Methods, method) // phone_change.go
	return s.phonePage(c, pr.status, token, p, phone, method, &pr)
}

// POST /enroll/:token/verify: the code received by SMS or call.
func (s *enrollSite) postVerify(c echo.Context) error {
	token := c.Param("token")
	p, err := checkCode(c, token, s.svc.VerifyCode)
	if err == nil {
		return s.donePage(c, token, p)
	}
	return s.verifyFailed(c, token, err)
}

// doneCookie is set, on the link's address only, by the answer that ends
// an enrollment (donePage).
const doneCookie = "replyreset_done"

// donePage answers the code that ends the enrollment. It also sets a
// cookie on the link's address: a browser keeps the link's earlier pages
// (the code page) in its back-forward cache even though they are
// no-store, and shows them again on Back without asking, unless a cookie
// of their address changed meanwhile. So Back is a fresh request, which
// the used link answers: "You're enrolled" (fail).
// The cookie carries nothing and is never read.
func (s *enrollSite) donePage(c echo.Context, token string, p enroll.Page) error {
	c.SetCookie(&http.Cookie{Name: doneCookie, Value: "1", Path: "/enroll/" + token, MaxAge: 600,
		Secure: s.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return s.renderPage(c, http.StatusOK, templates.PageDone, token, p, pageView{Phone: p.Phone})
}

// checkCode passes the posted code to verify (errEmptyCode when nothing
// was typed).
func checkCode(c echo.Context, token string,
	verify func(ctx context.Context, token, code string) (enroll.Page, error)) (enroll.Page, error) {
	code := strings.TrimSpace(c.FormValue("code"))
	if code == "" {
		return enroll.Page{}, errEmptyCode
	}
	return verify(c.Request().Context(), token, code)
}

// POST /enroll/:token/resend: the same code again, by SMS or call.
func (s *enrollSite) postResend(c echo.Context) error {
	token := c.Param("token")
	method := c.FormValue("method")
	err := errNoMethod
	if method == "sms" || method == "voice" {
		if _, err = s.svc.Resend(c.Request().Context(), token, method); err == nil {
			return c.Redirect(http.StatusSeeOther, "/enroll/"+token+"?sent="+method)
		}
	}
	return s.verifyFailed(c, token, err)
}

// verifyFailed answers an error on the verify page.
func (s *enrollSite) verifyFailed(c echo.Context, token string, err error) error {
	pr, ok := s.formProblem(err)
	if !ok {
		return s.fail(c, token, err)
	}
	p, oerr := s.open(c, token)
	if oerr != nil {
		return s.fail(c, token, oerr)
	}
	if p.Step == enroll.StepPhone {
		// No number yet (ErrNoCode): the phone page is where to go on.
		return s.phonePage(c, pr.status, token, p, p.PrefillPhone, "", &pr)
	}
	if errors.Is(err, enroll.ErrNoCode) {
		// A number but no live code: the last one died of wrong tries.
		pr = problem{status: http.StatusUnprocessableEntity, msg: templates.Msg{Key: "err.code.expired"}}
	}
	v := s.verifyView(p)
	v.setProblem(pr, "code")
	return s.renderPage(c, pr.status, templates.PageVerify, token, p, v)
}

// GET /enroll/:token/app: the QR code, the key and the code field.
func (s *enrollSite) showApp(c echo.Context) error {
	token := c.Param("token")
	p, err := s.open(c, token)
	if err != nil {
		return s.fail(c, token, err)
	}
	if p.Step == enroll.StepDone {
		return s.renderPage(c, http.StatusOK, templates.PageDone, token, p, pageView{Phone: p.Phone})
	}
	if s.now().Before(p.LockedUntil) {
		return s.locked(c, token, p.Language, p.LockedUntil, http.StatusOK)
	}
	if p.Phone == "" {
		return c.Redirect(http.StatusSeeOther, "/enroll/"+token+"?step=phone")
	}
	return s.appPage(c, http.StatusOK, token, p, nil)
}

// GET /enroll/:token/qr.png: the otpauth URI as a QR code.
func (s *enrollSite) qr(c echo.Context) error {
	token := c.Param("token")
	p, err := s.open(c, token)
	if err != nil || p.Phone == "" {
		return c.NoContent(http.StatusNotFound)
	}
	setup, err := s.svc.StartApp(c.Request().Context(), token, p.Phone)
	if err != nil || len(setup.QRPNG) == 0 {
		return c.NoContent(http.StatusNotFound)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "image/png", setup.QRPNG)
}

// POST /enroll/:token/app: the code the app shows.
func (s *enrollSite) postApp(c echo.Context) error {
	token := c.Param("token")
	p, err := checkCode(c, token, s.svc.VerifyApp)
	if err == nil {
		return s.donePage(c, token, p)
	}
	pr, ok := s.formProblem(err)
	if !ok {
		return s.fail(c, token, err)
	}
	if p, err = s.open(c, token); err != nil {
		return s.fail(c, token, err)
	}
	if p.Phone == "" {
		return s.phonePage(c, pr.status, token, p, p.PrefillPhone, "app", &pr)
	}
	return s.appPage(c, pr.status, token, p, &pr)
}

// POST /enroll/:token/language: show the pages (and send the texts) in
// another language.
func (s *enrollSite) postLanguage(c echo.Context) error {
	token := c.Param("token")
	back := "/enroll/" + token
	switch c.FormValue("back") {
	case "app":
		back += "/app"
	case "phone":
		back += "?step=phone"
	}
	lang := c.FormValue("lang")
	if !templates.SupportedLanguage(lang) {
		return c.Redirect(http.StatusSeeOther, back)
	}
	p, err := s.svc.SetLanguage(c.Request().Context(), token, lang)
	if err != nil {
		return s.fail(c, token, err)
	}
	rememberChoice(c, p.Language, s.secure)
	return c.Redirect(http.StatusSeeOther, back)
}

// open is Open, refusing at once what cannot be a token.
func (s *enrollSite) open(c echo.Context, token string) (enroll.Page, error) {
	if token == "" || len(token) > maxToken {
		return enroll.Page{}, enroll.ErrTokenUnknown
	}
	return s.svc.Open(c.Request().Context(), token)
}

// pageLanguage settles the enrollment's language by the order of
// language.go and stores it, so that the codes and the SMS go in the
// language of the pages: a choice made with a switch (the cookie) is the
// user's; the browser's language counts only while the enrollment's is a
// default.
func (s *enrollSite) pageLanguage(c echo.Context, token string, p enroll.Page) enroll.Page {
	set := s.svc.BrowserLanguage
	lang := acceptLanguage(c)
	if chosen := chosenLanguage(c); chosen != "" {
		set, lang = s.svc.SetLanguage, chosen
	} else if p.LanguageChosen {
		return p
	}
	if lang == "" || lang == p.Language {
		return p
	}
	np, err := set(c.Request().Context(), token, lang)
	if err != nil {
		s.logError(c, "set language from the browser", err)
		return p
	}
	return np
}

func (s *enrollSite) phonePage(c echo.Context, status int, token string, p enroll.Page, phone, method string, pr *problem) error {
	v := pageView{Phone: phone, Methods: p.Methods, Method: method, ExpiresAt: s.date(p.ExpiresAt)}
	if v.Method == "" && len(p.Methods) > 0 {
		v.Method = p.Methods[0]
	}
	if p.Step != enroll.StepPhone {
		v.Back = "phone"
	}
	if pr != nil {
		fields := []string{"phone"}
		if len(p.Methods) > 1 { // else there is no method to choose on the page
			fields = append(fields, "method")
		}
		v.setProblem(*pr, fields...)
	}
	return s.renderPage(c, status, templates.PagePhone, token, p, v)
}

func (s *enrollSite) verifyView(p enroll.Page) pageView {
	v := pageView{Phone: p.Phone}
	now := s.now()
	if now.Before(p.CodeExpires) {
		v.CodeUntil = s.clock(p.CodeExpires)
	}
	if now.Before(p.ResendAt) {
		v.ResendAt, v.ResendIn = s.clock(p.ResendAt), wait(p.ResendAt.Sub(now))
	}
	v.Delivery, v.Reload = deliveryOf(p)
	for _, m := range p.Methods {
		if m == "voice" && v.Delivery != nil && v.Delivery.Voice {
			continue // offered above, as the way on
		}
		if m == "sms" || m == "voice" {
			v.ResendMethods = append(v.ResendMethods, m)
		}
	}
	return v
}

// deliveryView is what the verify page says about the newest code's
// delivery (DESIGN: delivery receipts with fallback). The page has no
// JavaScript: the user reloads it to see a newer state.
type deliveryView struct {
	Failed bool          // the code did not reach the phone: an alert
	Text   templates.Msg // what happened, and what to do
	Voice  bool          // offer the voice call as the next step
	Change bool          // link to check or change the number
}

// deliveryOf maps p.Delivery to the page; reload is whether to suggest
// reloading for news (the code is still on its way).
func deliveryOf(p enroll.Page) (v *deliveryView, reload bool) {
	d := p.Delivery
	method := d.Method
	if method != "voice" {
		method = "sms"
	}
	phone := map[string]string{"phone": p.Phone}
	switch d.Status {
	case enroll.DeliveryPending:
		return &deliveryView{Text: templates.Msg{Key: "delivery.pending"}}, true
	case enroll.DeliverySent:
		return &deliveryView{Text: templates.Msg{Key: "delivery.sent"}}, true
	case enroll.DeliveryDelivered:
		return &deliveryView{Text: templates.Msg{Key: "delivery.delivered." + method}}, false
	case enroll.DeliveryFailed:
	default:
		return nil, false
	}
	voice := slices.Contains(p.Methods, "voice")
	v = &deliveryView{Failed: true}
	switch d.Reason {
	case enroll.ReasonInvalidNumber:
		v.Text, v.Change = templates.Msg{Key: "delivery.failed.invalid_number", Args: phone}, true
	case enroll.ReasonOptedOut:
		v.Text, v.Voice = templates.Msg{Key: "delivery.failed.opted_out_reply", Args: phone}, voice
		if d.StartNumber != "" {
			v.Text.Key, v.Text.Args = "delivery.failed.opted_out", map[string]string{"phone": p.Phone, "number": d.StartNumber}
		}
	case enroll.ReasonNotMobile:
		v.Text, v.Voice, v.Change = templates.Msg{Key: "delivery.failed.not_mobile", Args: phone}, voice, !voice
	case enroll.ReasonFiltered:
		// The carrier refused the text itself: the phone is fine, so no
		// voice call is offered as if it were off (the admins are told).
		v.Text = templates.Msg{Key: "delivery.failed.filtered", Args: phone}
	default: // undelivered
		v.Text, v.Voice, v.Change = templates.Msg{Key: "delivery.failed.undelivered." + method, Args: phone},
			voice && method == "sms", true
	}
	return v, false
}

func (s *enrollSite) appPage(c echo.Context, status int, token string, p enroll.Page, pr *problem) error {
	setup, err := s.svc.StartApp(c.Request().Context(), token, p.Phone)
	if err != nil {
		if pr2, ok := s.formProblem(err); ok {
			// The number cannot be set up (taken meanwhile, or the app
			// turned off): say so on the phone page.
			return s.phonePage(c, pr2.status, token, p, p.Phone, "app", &pr2)
		}
		return s.fail(c, token, err)
	}
	v := pageView{Back: "app", Phone: p.Phone, Secret: groups(setup.Secret), QR: "/enroll/" + token + "/qr.png"}
	if strings.HasPrefix(setup.URI, "otpauth://") {
		v.AppLink = template.URL(setup.URI) // #nosec: our own otpauth URI, made by appSetup
	}
	if pr != nil {
		v.setProblem(*pr, "code")
	}
	return s.renderPage(c, status, templates.PageApp, token, p, v)
}
