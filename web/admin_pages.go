package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

type stateCount struct {
	State enroll.State
	Count int
}

type dashboardView struct {
	States                  []stateCount
	Resets24h, Resets7d     int
	Failed24h, Failed7d     int
	Lockouts24h, Lockouts7d int
	SMS                     *smsView // nil: not shown (admin_sms.go)
}

type eventRow struct {
	Seq                                                      uint64
	Time, Actor, Action, Username, Outcome, SourceIP, Detail string
}

var allStates = []enroll.State{enroll.StateActive, enroll.StatePending, enroll.StateFrozen, enroll.StateDeactivated}

func (s *adminSite) eventRows(c echo.Context, evs []enroll.Event) []eventRow {
	rows := make([]eventRow, len(evs))
	for i, ev := range evs {
		rows[i] = eventRow{Seq: ev.Seq, Time: s.when(c, ev.Time), Actor: ev.Actor, Action: ev.Action,
			Username: ev.Username, Outcome: ev.Outcome, SourceIP: ev.SourceIP, Detail: ev.Detail}
	}
	return rows
}

func (s *adminSite) dashboard(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	sum, err := s.ops.svc.Summary(ctx, s.now())
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	d := &dashboardView{Resets24h: sum.Resets.Day, Resets7d: sum.Resets.Week, Failed24h: sum.ResetsFailed.Day,
		Failed7d: sum.ResetsFailed.Week, Lockouts24h: sum.Lockouts.Day, Lockouts7d: sum.Lockouts.Week,
		SMS: s.smsUsage(ctx)}
	for _, st := range allStates {
		d.States = append(d.States, stateCount{State: st, Count: sum.Enrollments[st]})
	}
	// Invited users (a link sent, not enrolled yet) count too, from the
	// same list the Enrollments page filters.
	if invited, err := s.ops.listEnrollments(ctx, enrollmentFilter{State: stateInvited}); err == nil {
		d.States = append(d.States[:1], append([]stateCount{{State: stateInvited, Count: len(invited)}}, d.States[1:]...)...)
	} else {
		s.log.ErrorContext(ctx, "dashboard: invited users", "err", err)
	}
	return s.render(c, http.StatusOK, templates.AdminDashboard, adminView{Section: "dashboard", Dashboard: d,
		Events: s.eventRows(c, sum.Recent)})
}

type userRow struct {
	directory.User
	State enroll.State
}

type usersView struct {
	Query     string
	Searched  bool
	Found     []userRow
	Truncated bool
}

const searchLimit = 100

func (s *adminSite) users(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	v := adminView{Section: "users", Users: &usersView{Query: q}}
	if q == "" {
		return s.render(c, http.StatusOK, templates.AdminUsers, v)
	}
	ctx, cancel := withSource(c)
	defer cancel()
	found, truncated, err := s.ops.dir.SearchUsers(ctx, q, searchLimit)
	if err != nil {
		status, msg := s.pageProblem(c, err)
		v.Error = &msg
		return s.render(c, status, templates.AdminUsers, v)
	}
	v.Users.Searched, v.Users.Truncated = true, truncated
	for _, u := range found {
		row := userRow{User: u}
		if e, err := s.ops.store.Enrollment(ctx, u.Username); err == nil {
			row.State = e.State
		}
		v.Users.Found = append(v.Users.Found, row)
	}
	return s.render(c, http.StatusOK, templates.AdminUsers, v)
}

type resultsView struct {
	Source     string
	OK, Failed int
	Rows       []activationRow
}

// POST /admin/users/activate: one or more usernames (the search's
// checkboxes or the single field), a group, an OU, or a CSV upload.
func (s *adminSite) activate(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	form, err := c.MultipartForm()
	if err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return s.usersError(c, http.StatusBadRequest, templates.Msg{Key: "admin.users.bad_form"})
	}
	var names []string
	var source string
	skip := true
	group, ou := strings.TrimSpace(c.FormValue("group")), strings.TrimSpace(c.FormValue("ou"))
	switch {
	case form != nil && len(form.File["csv"]) > 0:
		f, err := form.File["csv"][0].Open()
		if err == nil {
			names, err = parseUsernameCSV(f)
			f.Close()
		}
		if err != nil {
			s.log.WarnContext(c.Request().Context(), "admin: uploaded CSV refused", "request_id", requestID(c), "err", err)
			m := templates.Msg{Key: "admin.users.bad_csv"}
			var ce *CSVError
			if errors.As(err, &ce) {
				m = templates.Msg{Key: "admin.users.bad_csv_line", Args: map[string]string{"line": strconv.Itoa(ce.Line)}}
			}
			return s.usersError(c, http.StatusUnprocessableEntity, m)
		}
		source = form.File["csv"][0].Filename
	case group != "":
		users, err := s.ops.dir.GroupMembers(ctx, group)
		if err != nil {
			status, msg := s.pageProblem(c, err)
			return s.usersError(c, status, msg)
		}
		names, source = usernames(users), group
	case ou != "":
		users, err := s.ops.dir.UsersUnder(ctx, ou)
		if err != nil {
			status, msg := s.pageProblem(c, err)
			return s.usersError(c, status, msg)
		}
		names, source = usernames(users), ou
	default:
		params, _ := c.FormParams()
		names = dedupe(params["username"])
		source = strings.Join(names, ", ")
		// One user named on purpose: activate (or re-send) even when enrolled.
		skip = len(names) > 1
	}
	if len(names) == 0 {
		return s.usersError(c, http.StatusUnprocessableEntity, templates.Msg{Key: "admin.users.nobody"})
	}
	if len(names) > maxBulk {
		return s.usersError(c, http.StatusUnprocessableEntity, templates.Msg{Key: "admin.err.too_many"})
	}
	rows := s.ops.activateMany(ctx, actor(c), names, skip)
	v := &resultsView{Source: source, Rows: rows}
	for i := range rows {
		if rows[i].OK {
			v.OK++
			rows[i].Expires = s.whenRel(c, rows[i].Expiry)
		} else {
			v.Failed++
		}
	}
	return s.render(c, http.StatusOK, templates.AdminResults, adminView{Section: "users", Results: v})
}

func (s *adminSite) usersError(c echo.Context, status int, m templates.Msg) error {
	return s.render(c, status, templates.AdminUsers, adminView{Section: "users", Users: &usersView{}, Error: &m})
}

type enrollmentsView struct {
	Query, State string
	States       []enroll.State
	Total        int
	Rows         []enrollmentRow
	Page, Pages  int
	Prev, Next   string
}

type enrollmentRow struct {
	Username, Phone, Method, Updated string
	State                            enroll.State
	// The pending activation link: when it was sent (and by whom), when
	// it expires; empty without one.
	Invited, InvitedBy, LinkExpires string
	LinkExpired                     bool
	CanResend, CanRevoke            bool
}

const pageSize = 50

func (s *adminSite) enrollments(c echo.Context) error {
	return s.showEnrollments(c, http.StatusOK, nil)
}

func (s *adminSite) showEnrollments(c echo.Context, status int, problem *templates.Msg) error {
	state := enroll.State(c.QueryParam("state"))
	v := adminView{Section: "enrollments", Error: problem}
	if state != "" && !validListState(state) {
		v.Error, state = &templates.Msg{Key: "admin.enr.bad_state"}, ""
	}
	q := strings.TrimSpace(c.QueryParam("q"))
	page, _ := strconv.Atoi(c.QueryParam("page"))
	ctx, cancel := withSource(c)
	defer cancel()
	list, err := s.ops.listEnrollments(ctx, enrollmentFilter{State: state, Query: q})
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	ev := &enrollmentsView{Query: q, State: string(state), States: listStates, Total: len(list)}
	ev.Pages = max(1, (len(list)+pageSize-1)/pageSize)
	ev.Page = min(max(page, 1), ev.Pages)
	link := func(p int) string {
		vals := url.Values{"page": {strconv.Itoa(p)}}
		if q != "" {
			vals.Set("q", q)
		}
		if state != "" {
			vals.Set("state", string(state))
		}
		return "/admin/enrollments?" + vals.Encode()
	}
	if ev.Page > 1 {
		ev.Prev = link(ev.Page - 1)
	}
	if ev.Page < ev.Pages {
		ev.Next = link(ev.Page + 1)
	}
	now := s.now()
	for _, e := range list[(ev.Page-1)*pageSize : min(ev.Page*pageSize, len(list))] {
		row := enrollmentRow{Username: e.Username, Phone: e.Phone, Method: e.Method, State: e.State,
			Updated: s.when(c, e.UpdatedAt), CanResend: e.State != enroll.StateFrozen}
		if a := e.Invite; a != nil {
			row.Invited, row.InvitedBy = s.whenRel(c, a.CreatedAt), a.CreatedBy
			row.LinkExpires, row.LinkExpired, row.CanRevoke = s.whenRel(c, a.ExpiresAt), a.Expired(now), true
		}
		ev.Rows = append(ev.Rows, row)
	}
	v.Enrollments = ev
	return s.render(c, status, templates.AdminEnrollments, v)
}

type enrollmentView struct {
	Username, DisplayName, Phone, Mail, Method, Language  string
	Created, Verified, Directory                          string
	State                                                 enroll.State
	CanResend, CanDeactivate, CanUnfreeze, CanChangePhone bool
	// The pending activation link, if any.
	Invited, InvitedBy, LinkExpires string
	LinkExpired, CanRevoke          bool
}

// accountState says what the directory account u allows, for admins:
// usable, locked (since when), disabled, expired; each distinctly.
func (s *adminSite) accountState(c echo.Context, u directory.User) string {
	lang := s.language(c)
	var parts []string
	if u.Disabled {
		parts = append(parts, s.pages.Text(lang, "admin.dir.disabled", nil))
	}
	if u.Expired {
		parts = append(parts, s.pages.Text(lang, "admin.dir.expired", nil))
	}
	if u.Locked {
		parts = append(parts, s.pages.Text(lang, "admin.dir.locked", map[string]string{"time": s.whenRel(c, u.LockoutTime)}))
	}
	if len(parts) == 0 {
		return s.pages.Text(lang, "admin.dir.ok", nil)
	}
	return strings.Join(parts, " · ")
}

// enrollmentNotices are the ?done= notices after an action.
var enrollmentNotices = map[string]bool{"deactivated": true, "resent": true, "unfrozen": true, "phone": true, "enrolled": true,
	"revoked": true}

// GET /admin/enrollments/:username: one user's enrollment, directory state
// and history. A user in the directory but not enrolled has a page too,
// from which an activation can be sent.
func (s *adminSite) enrollment(c echo.Context) error {
	return s.showEnrollment(c, c.Param("username"), http.StatusOK, nil)
}

// showEnrollment renders the enrollment page, with problem when an action
// failed.
func (s *adminSite) showEnrollment(c echo.Context, name string, status int, problem *templates.Msg) error {
	ctx, cancel := withSource(c)
	defer cancel()
	lang := s.language(c)
	ev := &enrollmentView{Username: name}
	e, err := s.ops.store.Enrollment(ctx, name)
	switch {
	case err == nil:
		ev.Username, ev.Phone, ev.Mail, ev.Method, ev.Language, ev.State = e.Username, e.Phone, e.Mail, e.Method, e.Language, e.State
		ev.Created = s.when(c, e.CreatedAt)
		if !e.VerifiedAt.IsZero() {
			ev.Verified = s.when(c, e.VerifiedAt)
		}
	case !errors.Is(err, enroll.ErrNotFound):
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	inv, aerr := s.ops.store.ActivationByUser(ctx, name)
	switch {
	case aerr == nil:
		if err != nil { // invited only: the activation's spelling
			ev.Username = inv.Username
		}
		ev.Invited, ev.InvitedBy, ev.LinkExpires = s.whenRel(c, inv.CreatedAt), inv.CreatedBy, s.whenRel(c, inv.ExpiresAt)
		ev.LinkExpired, ev.CanRevoke = inv.Expired(s.now()), true
		if ev.State != enroll.StateActive && ev.State != enroll.StateFrozen {
			ev.State = stateInvited
		}
		if ev.Mail == "" {
			ev.Mail = inv.Mail
		}
	case !errors.Is(aerr, enroll.ErrNotFound) && !errors.Is(aerr, enroll.ErrTokenUnknown):
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", aerr)
	}
	u, derr := s.ops.dir.FindUser(ctx, name)
	switch {
	case derr == nil:
		ev.DisplayName = u.DisplayName
		if ev.Mail == "" {
			ev.Mail = u.Mail
		}
		ev.Directory = s.accountState(c, u)
	case errors.Is(derr, directory.ErrNotFound):
		// Not among the users user_filter selects: disabled, expired, or
		// gone? Admins see which; employees' answers stay the same.
		acct, serr := s.ops.dir.AccountState(ctx, name)
		switch {
		case serr == nil:
			if ev.DisplayName == "" {
				ev.DisplayName = acct.DisplayName
			}
			ev.Directory = s.accountState(c, acct)
			if !acct.Disabled && !acct.Expired {
				ev.Directory = s.pages.Text(lang, "admin.dir.filtered", nil)
			}
		case errors.Is(err, enroll.ErrNotFound) && aerr != nil:
			return s.fail(c, http.StatusNotFound, "admin.err.no_user", nil)
		default:
			ev.Directory = s.pages.Text(lang, "admin.dir.missing", nil)
		}
	default:
		ev.Directory = s.pages.Text(lang, "admin.dir.unavailable", nil)
	}
	ev.CanResend = ev.State != enroll.StateFrozen
	ev.CanDeactivate = ev.State == enroll.StateActive || ev.State == enroll.StatePending || ev.State == enroll.StateFrozen ||
		ev.State == stateInvited
	ev.CanUnfreeze = ev.State == enroll.StateFrozen
	ev.CanChangePhone = ev.State == enroll.StateActive || ev.State == enroll.StateFrozen
	evs, err := s.ops.store.Audit(ctx, enroll.AuditFilter{Username: ev.Username})
	if err != nil {
		return s.fail(c, http.StatusInternalServerError, "admin.err.internal", err)
	}
	slices.Reverse(evs)
	v := adminView{Section: "enrollments", Enrollment: ev, Events: s.eventRows(c, evs[:min(len(evs), 50)]), Error: problem}
	if done := c.QueryParam("done"); enrollmentNotices[done] && problem == nil {
		v.Notice = &templates.Msg{Key: "admin.done." + done}
	}
	return s.render(c, status, templates.AdminEnrollment, v)
}

// destructive are the enrollment actions that ask for confirmation first.
var destructive = map[string]bool{"deactivate": true, "revoke": true}

// POST /admin/enrollments/:username/{deactivate,revoke,resend,unfreeze,phone}.
// A destructive action posted without confirm=yes answers the confirmation
// step (a page with its own form: no JavaScript needed).
func (s *adminSite) enrollmentAction(c echo.Context) error {
	name := c.Param("username")
	action := c.Param("action")
	if destructive[action] && c.FormValue("confirm") != "yes" {
		back := "/admin/enrollments/" + url.PathEscape(name)
		if strings.HasPrefix(c.FormValue("back"), "/admin/enrollments") && safeNext(c.FormValue("back")) != "" {
			back = c.FormValue("back")
		}
		return s.confirm(c, confirmView{Action: c.Request().URL.Path, Cancel: back,
			Question: templates.Msg{Key: "admin.confirm." + action, Args: map[string]string{"user": name}},
			Detail:   &templates.Msg{Key: "admin.confirm." + action + "_detail"},
			Button:   templates.Msg{Key: "admin.confirm." + action + "_submit"}})
	}
	ctx, cancel := withSource(c)
	defer cancel()
	var err error
	done := ""
	switch action {
	case "deactivate":
		done = "deactivated"
		_, err = s.ops.svc.Deactivate(ctx, name, actor(c))
	case "revoke":
		done = "revoked"
		_, err = s.ops.svc.RevokeActivation(ctx, name, actor(c))
	case "resend":
		done = "resent"
		_, err = s.ops.svc.Activate(ctx, name, actor(c))
	case "unfreeze":
		done = "unfrozen"
		_, err = s.ops.svc.Unfreeze(ctx, name, actor(c))
	case "phone":
		done = "phone"
		_, err = s.ops.svc.ChangePhone(ctx, name, c.FormValue("phone"), actor(c))
	default:
		return echo.ErrNotFound
	}
	if err != nil {
		status, m := s.pageProblem(c, err)
		return s.showEnrollment(c, name, status, &m)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/enrollments/"+url.PathEscape(name)+"?done="+done)
}

// POST /admin/enroll: the helpdesk enrolls a user in person.
func (s *adminSite) enrollInPerson(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("username"))
	ctx, cancel := withSource(c)
	defer cancel()
	e, err := s.ops.svc.EnrollInPerson(ctx, name, c.FormValue("phone"), c.FormValue("language"), actor(c))
	if err != nil {
		status, m := s.pageProblem(c, err)
		return s.showEnrollments(c, status, &m)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/enrollments/"+url.PathEscape(e.Username)+"?done=enrolled")
}

type lockoutsView struct{ Rows []lockoutRow }

type lockoutRow struct {
	Username, DisplayName, Since string
	State                        enroll.State
}

func (s *adminSite) lockouts(c echo.Context) error {
	return s.showLockouts(c, http.StatusOK, nil)
}

func (s *adminSite) showLockouts(c echo.Context, status int, problem *templates.Msg) error {
	ctx, cancel := withSource(c)
	defer cancel()
	v := adminView{Section: "lockouts", Lockouts: &lockoutsView{}, Error: problem}
	rows, err := s.ops.locked(ctx)
	if err != nil {
		status, msg := s.pageProblem(c, err)
		v.Error = &msg
		return s.render(c, status, templates.AdminLockouts, v)
	}
	for _, r := range rows {
		v.Lockouts.Rows = append(v.Lockouts.Rows, lockoutRow{Username: r.User.Username, DisplayName: r.User.DisplayName,
			Since: s.whenRel(c, r.User.LockoutTime), State: r.State})
	}
	if u := c.QueryParam("unlocked"); u != "" && problem == nil {
		v.Notice = &templates.Msg{Key: "admin.done.unlocked", Args: map[string]string{"user": u}}
	}
	if n, err := strconv.Atoi(c.QueryParam("unlocked_all")); err == nil && n >= 0 && problem == nil {
		v.Notice = &templates.Msg{Key: templates.PluralKey(s.language(c), "admin.done.unlocked_all", n),
			Args: map[string]string{"n": strconv.Itoa(n)}}
	}
	return s.render(c, status, templates.AdminLockouts, v)
}

func (s *adminSite) unlock(c echo.Context) error {
	name := c.Param("username")
	ctx, cancel := withSource(c)
	defer cancel()
	u, err := s.ops.svc.UnlockUser(ctx, name, actor(c))
	if err != nil && !errors.Is(err, enroll.ErrNotLocked) {
		status, m := s.pageProblem(c, err)
		return s.showLockouts(c, status, &m)
	}
	if u.Username != "" {
		name = u.Username
	}
	return c.Redirect(http.StatusSeeOther, "/admin/lockouts?unlocked="+url.QueryEscape(name))
}

// POST /admin/lockouts/unlock-all: every account locked right now, after
// a confirmation step that says how many (each unlock is audited).
func (s *adminSite) unlockAll(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	rows, err := s.ops.locked(ctx)
	if err != nil {
		status, m := s.pageProblem(c, err)
		return s.showLockouts(c, status, &m)
	}
	if c.FormValue("confirm") != "yes" {
		n := strconv.Itoa(len(rows))
		return s.confirm(c, confirmView{Action: "/admin/lockouts/unlock-all", Cancel: "/admin/lockouts",
			Question: templates.Msg{Key: templates.PluralKey(s.language(c), "admin.confirm.unlock_all", len(rows)),
				Args: map[string]string{"n": n}},
			Detail: &templates.Msg{Key: "admin.confirm.unlock_all_detail"},
			Button: templates.Msg{Key: "admin.confirm.unlock_all_submit"}})
	}
	done := 0
	for _, r := range rows {
		if _, err := s.ops.svc.UnlockUser(ctx, r.User.Username, actor(c)); err == nil || errors.Is(err, enroll.ErrNotLocked) {
			done++
		} else {
			status, m := s.pageProblem(c, err)
			return s.showLockouts(c, status, &m)
		}
	}
	return c.Redirect(http.StatusSeeOther, "/admin/lockouts?unlocked_all="+strconv.Itoa(done))
}

type auditView struct {
	User, Action, Since, Until string
	Actions                    []string
	Total, Shown               int
	Truncated                  bool
	CSV, JSON                  string
}

// auditActions are offered as suggestions in the action filter.
var auditActions = []string{"reset", "unlock", "status", "enroll", "activate", "deactivate", "unfreeze", "change_phone",
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
