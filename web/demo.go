package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/templates"
)

// Demo is what the demo pages (/demo/...) need: the sample employees,
// their simulated phones, the mailbox, and the directory to sign in to.
// Only `replyreset demo` sets it.
type Demo interface {
	Users() []DemoUser
	Send(ctx context.Context, phone, body string) (string, error)
	Conversation(ctx context.Context, phone string) ([]twilio.DemoMessage, error)
	Mails() []notify.DemoMail
	Mail(id int) (notify.DemoMail, error)
	// Bind signs in as the user over LDAP, as Windows would.
	Bind(ctx context.Context, username, password string) error
}

// DemoUser is a sample employee of the demo directory.
type DemoUser struct {
	Username, DisplayName, Phone, Mail string
	Password                           string // the sample password, shown on the page
}

type demoSite struct {
	demo  Demo
	pages AdminPages
	lang  string
	log   *slog.Logger
}

func (s *demoSite) register(e *echo.Echo) {
	e.GET("/demo", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/demo/phone") })
	e.GET("/demo/phone", s.phone)
	e.POST("/demo/phone/send", s.send)
	e.POST("/demo/users/:username/fail", s.failLogins)
	e.POST("/demo/users/:username/try", s.tryPassword)
	e.GET("/demo/mail", s.mailbox)
	e.GET("/demo/mail/:id", s.mailbox)
}

type demoView struct {
	CSRF, Base, Back string
	Return           string // where the language switch returns
	RequestID        string // shown with an error: its cause is in the log
	Users            []DemoUser
	Selected         *DemoUser
	Messages         []demoBubble
	Notice, Error    *templates.Msg
	Mails            []demoMailRow
	Mail             *demoMailView
}

type demoBubble struct {
	Incoming   bool
	Kind, Body string
	Time       string
}

type demoMailRow struct {
	ID          int
	Subject, To string
	Time        string
}

type demoMailView struct {
	Subject, To, Time string
	Lines             []demoLine
}

// demoLine is a line of a mail's text: text, then a link, then text.
type demoLine struct{ Text, Link, After string }

func (s *demoSite) render(c echo.Context, status int, page string, v demoView) error {
	v.CSRF, v.Return = csrfToken(c), c.Request().URL.RequestURI()
	if v.Error != nil {
		v.RequestID = requestID(c)
	}
	return writePage(c, s.pages, status, page, browserLanguage(c, s.lang), v)
}

// problem logs err under the request's ID and returns the page's text.
func (s *demoSite) problem(c echo.Context, key string, err error) *templates.Msg {
	s.log.WarnContext(c.Request().Context(), "demo: "+key, "request_id", requestID(c), "err", err)
	return &templates.Msg{Key: key}
}

func (s *demoSite) user(name string) *DemoUser {
	for _, u := range s.demo.Users() {
		if strings.EqualFold(u.Username, name) {
			return &u
		}
	}
	return nil
}

// demoNotices are the ?done= notices of the phone page.
var demoNotices = map[string]string{"sent": "demo.phone.sent", "locked": "demo.account.locked_now",
	"ok": "demo.account.ok", "must_change": "demo.account.must_change", "bad": "demo.account.bad", "is_locked": "demo.account.locked"}

// GET /demo/phone?user=: a sample employee's phone.
func (s *demoSite) phone(c echo.Context) error {
	return s.showPhone(c, http.StatusOK, c.QueryParam("user"), nil)
}

func (s *demoSite) showPhone(c echo.Context, status int, name string, problem *templates.Msg) error {
	v := demoView{Users: s.demo.Users(), Error: problem}
	if name == "" && len(v.Users) > 0 {
		name = v.Users[0].Username
	}
	v.Selected = s.user(name)
	if v.Selected == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such sample user")
	}
	if key, ok := demoNotices[c.QueryParam("done")]; ok && problem == nil {
		v.Notice = &templates.Msg{Key: key}
	}
	msgs, err := s.demo.Conversation(c.Request().Context(), v.Selected.Phone)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		v.Messages = append(v.Messages, demoBubble{Incoming: m.Incoming, Kind: m.Kind, Body: m.Body,
			Time: m.Time.Local().Format("15:04:05")})
	}
	return s.render(c, status, templates.DemoPhone, v)
}

func phoneURL(name, done string) string {
	return "/demo/phone?" + url.Values{"user": {name}, "done": {done}}.Encode()
}

// POST /demo/phone/send: the text typed on the phone goes to the webhook.
func (s *demoSite) send(c echo.Context) error {
	u := s.user(c.FormValue("user"))
	if u == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such sample user")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 30*time.Second)
	defer cancel()
	if _, err := s.demo.Send(ctx, u.Phone, c.FormValue("body")); err != nil {
		return s.showPhone(c, http.StatusUnprocessableEntity, u.Username,
			s.problem(c, "demo.phone.bad", err))
	}
	return c.Redirect(http.StatusSeeOther, phoneURL(u.Username, "sent"))
}

// POST /demo/users/:username/fail: five wrong passwords, as a user who
// forgot theirs would type them at the Windows sign-in screen.
func (s *demoSite) failLogins(c echo.Context) error {
	u := s.user(c.Param("username"))
	if u == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such sample user")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		err := s.demo.Bind(ctx, u.Username, "Wrong-password-"+strconv.Itoa(i))
		if err != nil && !errors.Is(err, directory.ErrInvalidCredentials) && !errors.Is(err, directory.ErrLocked) {
			return s.showPhone(c, http.StatusServiceUnavailable, u.Username,
				s.problem(c, "demo.account.error", err))
		}
	}
	return c.Redirect(http.StatusSeeOther, phoneURL(u.Username, "locked"))
}

// POST /demo/users/:username/try: sign in with a password (the one the
// RESET reply brought, say).
func (s *demoSite) tryPassword(c echo.Context) error {
	u := s.user(c.Param("username"))
	if u == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such sample user")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 30*time.Second)
	defer cancel()
	err := s.demo.Bind(ctx, u.Username, strings.TrimSpace(c.FormValue("password")))
	done := "ok"
	switch {
	case err == nil:
	case errors.Is(err, directory.ErrMustChange):
		done = "must_change"
	case errors.Is(err, directory.ErrLocked):
		done = "is_locked"
	case errors.Is(err, directory.ErrInvalidCredentials):
		done = "bad"
	default:
		return s.showPhone(c, http.StatusServiceUnavailable, u.Username,
			s.problem(c, "demo.account.error", err))
	}
	return c.Redirect(http.StatusSeeOther, phoneURL(u.Username, done))
}

var urlRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// GET /demo/mail and /demo/mail/:id: the mailbox, and one mail.
func (s *demoSite) mailbox(c echo.Context) error {
	v := demoView{}
	for _, m := range s.demo.Mails() {
		v.Mails = append(v.Mails, demoMailRow{ID: m.ID, Subject: m.Subject, To: m.To, Time: m.Time.Local().Format("15:04:05")})
	}
	if id := c.Param("id"); id != "" {
		n, err := strconv.Atoi(id)
		if err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "no such mail")
		}
		m, err := s.demo.Mail(n)
		if err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "no such mail")
		}
		mv := &demoMailView{Subject: m.Subject, To: m.To, Time: m.Time.Local().Format("15:04:05")}
		for _, line := range strings.Split(m.Text, "\n") {
			// Links become clickable, the rest stays text.
			if loc := urlRE.FindStringIndex(line); loc != nil {
				mv.Lines = append(mv.Lines, demoLine{Text: line[:loc[0]], Link: line[loc[0]:loc[1]], After: line[loc[1]:]})
				continue
			}
			mv.Lines = append(mv.Lines, demoLine{Text: line})
		}
		v.Mail = mv
	}
	return s.render(c, http.StatusOK, templates.DemoMail, v)
}
