package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

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
	Web24h, Web7d           int // from the reset page
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
		Failed7d: sum.ResetsFailed.Week, Web24h: sum.WebResets.Day, Web7d: sum.WebResets.Week, Lockouts24h: sum.Lockouts.Day, Lockouts7d: sum.Lockouts.Week,
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
