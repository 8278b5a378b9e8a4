package web

import (
	"net/http"
	"time"
	_ "time/tzdata" // the admin's zone by name, also where the system has no zoneinfo

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/templates"
)

// The console shows times in the admin's time zone, named: the browser's
// zone, sent by the login form (static/tz.js fills a hidden field; without
// JavaScript nothing is sent) and kept in a cookie, else the server's.
// Where it helps (a link's expiry, a change) the time is also said
// relative to now: "in 6 days", "2 hours ago".

const tzCookie = "replyreset_tz"

// location is the admin's time zone.
func (s *adminSite) location(c echo.Context) *time.Location {
	if loc, ok := c.Get("admin_location").(*time.Location); ok {
		return loc
	}
	loc := time.Local
	if v, ok := readCookie(c, s.secure, tzCookie); ok {
		if l, ok := parseZone(v); ok {
			loc = l
		}
	}
	c.Set("admin_location", loc)
	return loc
}

// parseZone accepts an IANA zone name ("Europe/Paris"), nothing else.
func parseZone(name string) (*time.Location, bool) {
	if name == "" || len(name) > 64 || name == "Local" {
		return nil, false
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}

// rememberZone keeps the zone the login form sent, if it is one.
func (s *adminSite) rememberZone(c echo.Context) {
	if _, ok := parseZone(c.FormValue("tz")); !ok {
		return
	}
	setCookie(c, s.secure, tzCookie, c.FormValue("tz"), 365*24*3600, http.SameSiteStrictMode)
}

// zoneName names the admin's zone for the footer: "Europe/Paris".
func (s *adminSite) zoneName(c echo.Context) string {
	loc := s.location(c)
	if loc == time.Local {
		name, _ := time.Now().In(loc).Zone()
		return name + " (" + s.pages.Text(s.language(c), "admin.zone.server", nil) + ")"
	}
	return loc.String()
}

// when writes t in the admin's zone and language, the zone named:
// "March 9, 2026 at 10:42 CET".
func (s *adminSite) when(c echo.Context, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return templates.FormatDateTime(s.language(c), t.In(s.location(c)))
}

// whenRel is when, with how long from now: "… (in 6 days)".
func (s *adminSite) whenRel(c echo.Context, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return s.when(c, t) + " (" + relative(s.pages, s.language(c), t, s.now()) + ")"
}

// relative says how far t is from now in words: "in 6 days", "2 hours
// ago", "now"; rounded down to the largest whole unit.
func relative(p AdminPages, lang string, t, now time.Time) string {
	d := t.Sub(now)
	dir := "future"
	if d < 0 {
		dir, d = "past", -d
	}
	unit, n := "minutes", int(d/time.Minute)
	switch {
	case d < time.Minute:
		return p.Text(lang, "admin.rel.now", nil)
	case d >= 48*time.Hour:
		unit, n = "days", int(d/(24*time.Hour))
	case d >= time.Hour:
		unit, n = "hours", int(d/time.Hour)
	}
	return p.Plural(lang, "admin.rel."+dir+"."+unit, n, nil)
}
