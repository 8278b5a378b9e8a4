package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"
	_ "time/tzdata" // the admin's zone by name, also where the system has no zoneinfo

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// SessionStore keeps the admin console's sessions (enroll.SessionStore):
// in the store, so that any node answers any admin and a restart signs no
// one out.
type SessionStore interface {
	PutSession(ctx context.Context, key string, s enroll.AdminSession) error
	Session(ctx context.Context, key string, now time.Time) (enroll.AdminSession, error)
	UpdateSession(ctx context.Context, key string, now time.Time, fn func(*enroll.AdminSession) error) error
	DeleteSession(ctx context.Context, key string) error
	PurgeSessions(ctx context.Context, now time.Time) (int, error)
}

// session is one signed-in admin: the store's record, copied for the
// request.
type session = enroll.AdminSession

// sessions start, find and end admin sessions. The store keeps each under
// the hash of its ID (the cookie value), so neither the data file nor a
// heap dump holds a usable session ID.
type sessions struct {
	store SessionStore
	ttl   time.Duration
	log   *slog.Logger
}

// maxSessionID bounds a cookie value worth looking up; an ID is 43 bytes.
const maxSessionID = 128

// sessionKey is the store's key of session id: its SHA-256, in hex.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte("admin-session:" + id))
	return hex.EncodeToString(sum[:])
}

// create starts a session for u (whose membership was just checked),
// signed in from source, and returns its new random ID.
func (s *sessions) create(ctx context.Context, u directory.User, lang, source string, now time.Time) (string, *session, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	id := base64.RawURLEncoding.EncodeToString(b)
	display := u.DisplayName
	if display == "" {
		display = u.Username
	}
	sess := &session{Username: u.Username, Display: display, Language: lang, Source: source,
		CreatedAt: now, ExpiresAt: now.Add(s.ttl), CheckedAt: now}
	// Expired sessions go when a new one comes; a failed purge only
	// leaves them for the next sign-in.
	if _, err := s.store.PurgeSessions(ctx, now); err != nil {
		s.log.WarnContext(ctx, "expired admin sessions not purged", "err", err)
	}
	if err := s.store.PutSession(ctx, sessionKey(id), *sess); err != nil {
		return "", nil, err
	}
	return id, sess, nil
}

// get returns the live session for id: enroll.ErrNotFound when there is
// none.
func (s *sessions) get(ctx context.Context, id string, now time.Time) (*session, error) {
	if id == "" || len(id) > maxSessionID {
		return nil, enroll.ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	sess, err := s.store.Session(ctx, sessionKey(id), now)
	if err != nil {
		return nil, err
	}
	return &sess, nil
}

// update changes the live session for id with fn.
func (s *sessions) update(ctx context.Context, id string, now time.Time, fn func(*session)) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	return s.store.UpdateSession(ctx, sessionKey(id), now, func(sess *session) error { fn(sess); return nil })
}

// drop ends the session for id, if any.
func (s *sessions) drop(ctx context.Context, id string) error {
	if id == "" || len(id) > maxSessionID {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	return s.store.DeleteSession(ctx, sessionKey(id))
}

// requireAdmin lets a request through with a live session whose admin is
// still in the admin group (checked at most a minute ago); otherwise it
// sends the browser to the login page.
func (s *adminSite) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		now := s.now()
		id, ok := readCookie(c, s.secure, adminCookie)
		if !ok {
			return s.toLogin(c, "")
		}
		ctx := c.Request().Context()
		sess, err := s.sessions.get(ctx, id, now)
		switch {
		case errors.Is(err, enroll.ErrNotFound):
			return s.toLogin(c, "admin.login.expired")
		case err != nil:
			return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
		}
		if now.Sub(sess.CheckedAt) >= membershipTTL {
			dctx, cancel := context.WithTimeout(ctx, adminTimeout)
			member, err := s.ops.dir.IsAdmin(dctx, sess.Username)
			cancel()
			switch {
			case err != nil && !errors.Is(err, directory.ErrNotFound):
				// Fail closed: without an answer the session is not trusted,
				// but it is kept for when the directory is back.
				return s.fail(c, http.StatusServiceUnavailable, "admin.err.directory", err)
			case !member:
				if err := s.sessions.drop(ctx, id); err != nil {
					return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
				}
				s.ops.audit(c, "admin:"+sess.Username, enroll.Event{Action: "admin_session", Username: sess.Username,
					Outcome: "revoked", Detail: "no longer a member of the admin group"})
				return s.toLogin(c, "admin.login.not_admin_any_more")
			}
			if err := s.sessions.update(ctx, id, now, func(st *session) { st.CheckedAt = now }); err != nil {
				// The check holds for this request; the next one checks again.
				s.log.WarnContext(ctx, "admin session check time not recorded", "err", err)
			}
			sess.CheckedAt = now
		}
		c.Set("admin_session", sess)
		return next(c)
	}
}

// liveSession is the ID of the live session the request's cookie names,
// or "".
func (s *adminSite) liveSession(c echo.Context) string {
	id, ok := readCookie(c, s.secure, adminCookie)
	if !ok {
		return ""
	}
	_, err := s.sessions.get(c.Request().Context(), id, s.now())
	if err != nil {
		if !errors.Is(err, enroll.ErrNotFound) {
			s.log.ErrorContext(c.Request().Context(), "admin session lookup failed", "request_id", requestID(c), "err", err)
		}
		return ""
	}
	return id
}

func sessionOf(c echo.Context) *session {
	s, _ := c.Get("admin_session").(*session)
	return s
}

// actor is how the audit trail names the signed-in admin.
func actor(c echo.Context) string {
	if s := sessionOf(c); s != nil {
		return "admin:" + s.Username
	}
	return "admin"
}

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
