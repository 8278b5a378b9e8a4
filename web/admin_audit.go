package web

// The console's audit trail: the filtered page (/admin/audit) and its
// export as CSV or JSON, itself audited.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

type auditView struct {
	User, Action, Since, Until string
	Actions                    []string
	Total, Shown               int
	Truncated                  bool
	CSV, JSON                  string
}

// auditActions are offered as suggestions in the action filter.
var auditActions = []string{"reset", "reset_web", "unlock", "status", "enroll", "activate", "deactivate", "unfreeze", "change_phone",
	"lockout", "lockout_alert", "not_me", "stop", "start", "admin_login", "admin_logout", "audit_export", "api_token_create", "api_token_revoke", "backup", "mail"}

const auditPageLimit = 500

// parseAuditFilter reads user, action, since and until (2006-01-02, the
// day in the server's zone, or RFC 3339) from the query.
func parseAuditFilter(c echo.Context, loc *time.Location) (enroll.AuditFilter, error) {
	f := enroll.AuditFilter{Username: strings.TrimSpace(c.QueryParam("user")), Action: strings.TrimSpace(c.QueryParam("action"))}
	var err error
	if f.Since, err = parseWhen(c.QueryParam("since"), loc, false); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseWhen(c.QueryParam("until"), loc, true); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, errors.New("since must be before until")
	}
	if a := c.QueryParam("after"); a != "" {
		if f.AfterSeq, err = strconv.ParseUint(a, 10, 64); err != nil {
			return f, errors.New("after: must be an event sequence number")
		}
	}
	return f, nil
}

// parseWhen parses a date (a whole day: endOfDay moves "until" to the next
// midnight, so the day is included) or an RFC 3339 time.
func parseWhen(s string, loc *time.Location, endOfDay bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if endOfDay {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2006-01-02) or an RFC 3339 time", s)
	}
	return t, nil
}

func (s *adminSite) audit(c echo.Context) error {
	v := adminView{Section: "audit", Audit: &auditView{User: c.QueryParam("user"), Action: c.QueryParam("action"),
		Since: c.QueryParam("since"), Until: c.QueryParam("until"), Actions: auditActions}}
	f, err := parseAuditFilter(c, time.Local)
	if err != nil {
		s.log.InfoContext(c.Request().Context(), "admin: audit filter refused", "request_id", requestID(c), "err", err)
		v.Error = &templates.Msg{Key: "admin.audit.bad_filter"}
		return s.render(c, http.StatusUnprocessableEntity, templates.AdminAudit, v)
	}
	ctx, cancel := withSource(c)
	defer cancel()
	evs, err := s.ops.store.Audit(ctx, f)
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	slices.Reverse(evs) // newest first
	v.Audit.Total = len(evs)
	if len(evs) > auditPageLimit {
		evs, v.Audit.Truncated = evs[:auditPageLimit], true
	}
	v.Audit.Shown = len(evs)
	q := c.QueryParams()
	q.Del("format")
	q.Set("format", "csv")
	v.Audit.CSV = "/admin/audit/export?" + q.Encode()
	q.Set("format", "json")
	v.Audit.JSON = "/admin/audit/export?" + q.Encode()
	v.Events = s.eventRows(c, evs)
	return s.render(c, http.StatusOK, templates.AdminAudit, v)
}

// GET /admin/audit/export?format=csv|json&…: the matching events, oldest
// first, as a download. The export itself is audited.
func (s *adminSite) auditExport(c echo.Context) error {
	format := c.QueryParam("format")
	if format != "csv" && format != "json" {
		return s.fail(c, http.StatusBadRequest, "admin.audit.bad_format", nil)
	}
	f, err := parseAuditFilter(c, time.Local)
	if err != nil {
		return s.fail(c, http.StatusUnprocessableEntity, "admin.audit.bad_format", nil)
	}
	f.Limit = maxAuditExport
	ctx, cancel := withSource(c)
	defer cancel()
	evs, err := s.ops.store.Audit(ctx, f)
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	s.ops.audit(c, actor(c), enroll.Event{Action: "audit_export", Outcome: "ok",
		Detail: fmt.Sprintf("%s, %d events", format, len(evs))})
	name := "replyreset-audit-" + s.now().Format("20060102-150405") + "." + format
	h := c.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	if format == "json" {
		return writeAuditJSON(c, evs)
	}
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return enroll.WriteAuditCSV(c.Response(), evs)
}

func writeAuditJSON(c echo.Context, evs []enroll.Event) error {
	if evs == nil {
		evs = []enroll.Event{}
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	enc := json.NewEncoder(c.Response())
	enc.SetIndent("", "  ")
	return enc.Encode(evs)
}
