package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

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
