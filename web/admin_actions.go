package web

// The console's forms that change things (enrollment actions, the
// in-person enrollment, unlocks) and the confirmation step that the
// destructive ones answer first.

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// confirmView is the confirmation step of a destructive action: what will
// happen, a form that posts the action again with confirm=yes (and the
// same fields), and the way back. It works without JavaScript.
type confirmView struct {
	Question templates.Msg
	Detail   *templates.Msg
	Button   templates.Msg
	Action   string            // the URL the confirmed form posts to
	Fields   map[string]string // more hidden fields to post again
	Cancel   string            // where "Cancel" leads
}

func (s *adminSite) confirm(c echo.Context, v confirmView) error {
	return s.render(c, http.StatusOK, templates.AdminConfirm, adminView{Section: s.sectionOf(c), Confirm: &v})
}

// sectionOf is the navigation entry of the request's path.
func (s *adminSite) sectionOf(c echo.Context) string {
	for _, sec := range adminSections {
		if p := "/admin/" + sec; len(c.Path()) >= len(p) && c.Path()[:len(p)] == p {
			return sec
		}
	}
	return ""
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
