package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/templates"
)

// The language of a page (DESIGN: Languages), in this order:
//  1. an explicit choice the person made with a language switch (the
//     langCookie, set by the switches only, never by showing a page);
//  2. the stored language: the enrollment's when the user chose it or kept
//     it from an earlier enrollment, the admin session's;
//  3. the browser's Accept-Language;
//  4. the configured `language`.
//
// A cookie that only recorded a default must not beat Accept-Language, so
// no page sets the cookie, and the cookie's name is new: the older
// replyreset_lang, set by every page, is ignored.
const langCookie = "replyreset_language"

// chosenLanguage is the language of the person's last explicit choice, or "".
// Under https the cookie is __Host- prefixed (csrf.go: setCookie).
func chosenLanguage(c echo.Context) string {
	for _, name := range []string{hostPrefix + langCookie, langCookie} {
		if ck, err := c.Cookie(name); err == nil && templates.SupportedLanguage(ck.Value) {
			return ck.Value
		}
	}
	return ""
}

// acceptLanguage is the supported language the browser asks for, or "".
func acceptLanguage(c echo.Context) string {
	return templates.NormalizeLanguage(c.Request().Header.Get("Accept-Language"))
}

// pageLanguage applies the order above; stored is "" when nothing is
// stored (or only a default).
func pageLanguage(c echo.Context, stored, def string) string {
	for _, l := range []string{chosenLanguage(c), stored, acceptLanguage(c)} {
		if l != "" {
			return l
		}
	}
	return def
}

// browserLanguage is the language of a page that belongs to no enrollment
// and no session.
func browserLanguage(c echo.Context, def string) string { return pageLanguage(c, "", def) }

// rememberChoice records an explicit choice of the language switch for
// every page of the site.
func rememberChoice(c echo.Context, lang string, secure bool) {
	setCookie(c, secure, langCookie, lang, 365*24*3600, http.SameSiteLaxMode)
}

// PageLanguage is the language of a page that belongs to no enrollment
// and no session: the switch's choice, the browser's, else def.
func PageLanguage(c echo.Context, def string) string { return browserLanguage(c, def) }
