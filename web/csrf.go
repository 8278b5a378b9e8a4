package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// hostPrefix marks a cookie the browser keeps only when it is Secure, has
// Path=/ and no Domain: no sibling subdomain can plant or overwrite it.
const hostPrefix = "__Host-"

// cookieName is the name a cookie carries: with hostPrefix over https.
func cookieName(secure bool, name string) string {
	if secure {
		return hostPrefix + name
	}
	return name
}

// readCookie is the value of the cookie name (cookieName) of the request.
func readCookie(c echo.Context, secure bool, name string) (string, bool) {
	ck, err := c.Cookie(cookieName(secure, name))
	if err != nil {
		return "", false
	}
	return ck.Value, true
}

// setCookie sets (or, with maxAge < 0, deletes) a cookie of the site:
// always Path=/, HttpOnly and SameSite, Secure and __Host- named over https.
func setCookie(c echo.Context, secure bool, name, value string, maxAge int, sameSite http.SameSite) {
	c.SetCookie(&http.Cookie{Name: cookieName(secure, name), Value: value, Path: "/", MaxAge: maxAge,
		Secure: secure, HttpOnly: true, SameSite: sameSite})
}

// csrfGuard checks the form token of every state-changing request to a
// page. The browser holds a random nonce in the CSRF cookie; a form token
// is a hash of that nonce and of what the request belongs to (bind): the
// admin session, the enrollment link, the phone change under way. So a
// token works only with its own browser and its own session or flow: one
// from another session, link or phone change is refused, and a cookie
// planted by someone else gives them no token without the session's secret.
type csrfGuard struct {
	secure  bool
	skip    func(c echo.Context) bool
	bind    func(c echo.Context) string
	refused func(c echo.Context) error
}

const (
	csrfNonceKey = "csrf_nonce" // context: the browser's nonce
	csrfGuardKey = "csrf_guard" // context: the guard, for csrfToken
)

func (g *csrfGuard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if g.skip(c) {
			return next(c)
		}
		nonce, ok := readCookie(c, g.secure, csrfCookie)
		if !ok || !validNonce(nonce) {
			b := make([]byte, 32)
			_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
			nonce = base64.RawURLEncoding.EncodeToString(b)
			setCookie(c, g.secure, csrfCookie, nonce, 24*3600, http.SameSiteStrictMode)
			ok = false
		}
		c.Set(csrfNonceKey, nonce)
		c.Set(csrfGuardKey, g)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return next(c)
		}
		// A browser that says the post comes from another site (or a
		// sibling subdomain) is refused outright.
		if site := c.Request().Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			return g.refused(c)
		}
		sent := c.FormValue(csrfField)
		if !ok || sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(csrfTokenFor(nonce, g.bind(c)))) != 1 {
			return g.refused(c)
		}
		return next(c)
	}
}

func validNonce(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// csrfTokenFor is the form token of nonce for the session or flow bound.
func csrfTokenFor(nonce, bound string) string {
	sum := sha256.Sum256([]byte("replyreset-csrf\x00" + nonce + "\x00" + bound))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// csrfToken is the form token for the page being answered: bound to what
// the request belongs to now (a sign-in or sign-out in this request
// already counts).
func csrfToken(c echo.Context) string {
	g, _ := c.Get(csrfGuardKey).(*csrfGuard)
	nonce, _ := c.Get(csrfNonceKey).(string)
	if g == nil || nonce == "" {
		return ""
	}
	return csrfTokenFor(nonce, g.bind(c))
}

// csrfBinding names what a request to a page belongs to, by route: the
// live admin session, the enrollment link, the phone change under way;
// "" before any (a sign-in page).
func csrfBinding(admin *adminSite, phoneChangeSecure bool) func(c echo.Context) string {
	return func(c echo.Context) string {
		route := c.Path()
		switch {
		case strings.HasPrefix(route, "/admin"):
			if admin != nil {
				if id := admin.liveSession(c); id != "" {
					return "admin:" + id
				}
			}
		case strings.HasPrefix(route, "/enroll/"):
			return "enroll:" + c.Param("token")
		case strings.HasPrefix(route, phoneChangeBase):
			if t := phoneChangeToken(c, phoneChangeSecure); t != "" {
				return "phone-change:" + t
			}
		}
		return ""
	}
}

// The helpers below serve the pages of the packages under web (web/reset)
// with the site's own cookies, form tokens and languages.

// CSRFToken is the form token of the page being answered (csrfToken).
func CSRFToken(c echo.Context) string { return csrfToken(c) }

// SetCookie sets (maxAge < 0: deletes) a Strict, HttpOnly cookie of the
// site (setCookie).
func SetCookie(c echo.Context, secure bool, name, value string, maxAge int) {
	setCookie(c, secure, name, value, maxAge, http.SameSiteStrictMode)
}

// ReadCookie is the value of the site's cookie name (readCookie).
func ReadCookie(c echo.Context, secure bool, name string) (string, bool) {
	return readCookie(c, secure, name)
}
