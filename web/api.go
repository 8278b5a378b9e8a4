package web

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// The JSON admin API, /api/v1: the console's operations for scripts and
// other tools, authenticated with bearer tokens (replyreset api-token
// create). Every answer is JSON; errors are
//
//	{"error": {"code": "phone_taken", "message": "…"}}
//
// with a stable code a client may branch on. openapi.json describes it and
// a test checks it against the registered routes.

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// apiError is the error body's inner object.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type apiErrorBody struct {
	Error apiError `json:"error"`
}

func apiFail(c echo.Context, status int, code, msg string) error {
	return c.JSON(status, apiErrorBody{Error: apiError{Code: code, Message: msg}})
}

// API token guessing: 5 wrong tokens from one address, then 10 minutes of
// refusal (DESIGN: rate limits and lockouts on every guessable thing).
const apiFailLimit = 5

func (s *adminSite) registerAPI(e *echo.Echo) {
	e.GET("/api/v1/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI)
	})
	// Routes one by one rather than as a group: a group's catch-all would
	// answer a wrong method with 404 instead of 405.
	// Each route needs one token scope, from its method: reading (GET)
	// needs read, every change write.
	const v1 = "/api/v1"
	for _, r := range []struct {
		method, path string
		h            echo.HandlerFunc
	}{
		{http.MethodGet, "/summary", s.apiSummary},
		{http.MethodGet, "/users", s.apiUsers},
		{http.MethodPost, "/activations", s.apiActivate},
		{http.MethodGet, "/enrollments", s.apiEnrollments},
		{http.MethodPost, "/enrollments", s.apiEnrollInPerson},
		{http.MethodGet, "/enrollments/:username", s.apiEnrollment},
		{http.MethodPost, "/enrollments/:username/deactivate", s.apiEnrollmentAction},
		{http.MethodPost, "/enrollments/:username/unfreeze", s.apiEnrollmentAction},
		{http.MethodPost, "/enrollments/:username/resend", s.apiEnrollmentAction},
		{http.MethodPost, "/enrollments/:username/revoke", s.apiEnrollmentAction},
		{http.MethodPut, "/enrollments/:username/phone", s.apiChangePhone},
		{http.MethodGet, "/lockouts", s.apiLockouts},
		{http.MethodPost, "/lockouts/:username/unlock", s.apiUnlock},
		{http.MethodGet, "/audit", s.apiAudit},
	} {
		e.Add(r.method, v1+r.path, r.h, s.requireToken(routeScope(r.method)))
	}
}

// routeScope is the token scope a route of method needs.
func routeScope(method string) string {
	if method == http.MethodGet {
		return enroll.ScopeRead
	}
	return enroll.ScopeWrite
}

// requireToken checks the bearer token and that it carries scope; the
// token's name is the actor. The token's owner is checked against the
// directory on every request (enroll.Service.VerifyToken): a token stops
// at the first request after its owner leaves the admin group.
func (s *adminSite) requireToken(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("Cache-Control", "no-store")
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			scheme, secret, _ := strings.Cut(h, " ")
			if h == "" || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="replyreset"`)
				return apiFail(c, http.StatusUnauthorized, "unauthorized",
					"an API token is required: Authorization: Bearer <token> (replyreset api-token create -owner USER -scopes read,write NAME)")
			}
			ctx, cancel := withSource(c) // a refusal is audited with the address
			defer cancel()
			key, now := "api-token:ip:"+c.RealIP(), s.now()
			if until, blocked, err := s.ops.store.Blocked(ctx, key, now); storeDown(err) {
				return s.apiProblem(c, err) // the store's 503, and the gate is told
			} else if err != nil {
				return apiFail(c, http.StatusServiceUnavailable, "unavailable", "the data store does not answer")
			} else if blocked {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Seconds())+1))
				return apiFail(c, http.StatusTooManyRequests, "rate_limited", "too many invalid tokens from this address; try again later")
			}
			tok, err := s.ops.svc.VerifyToken(ctx, strings.TrimSpace(secret), scope)
			if err != nil {
				if errors.Is(err, enroll.ErrAPITokenUnknown) || errors.Is(err, enroll.ErrAPITokenRevoked) {
					// Counted after the check: a token costs no directory bind,
					// and a valid one is far beyond guessing.
					if _, _, ferr := s.ops.store.Attempt(ctx, key, now, loginFailWindow, apiFailLimit, loginBlock); ferr != nil {
						s.log.ErrorContext(ctx, "api token guard", "err", ferr)
					}
				}
				return s.tokenRefused(c, scope, tok, err)
			}
			c.Set("api_token", tok.Name)
			return next(c)
		}
	}
}

// tokenRefused answers a token VerifyToken refused: 401 for a token that
// does not (or no longer) work, 403 for a good token without the scope,
// 503 when the directory cannot tell whether its owner is still an admin.
func (s *adminSite) tokenRefused(c echo.Context, scope string, tok enroll.APIToken, err error) error {
	invalid := func(code, msg string) error {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="replyreset", error="invalid_token"`)
		return apiFail(c, http.StatusUnauthorized, code, msg)
	}
	switch {
	case errors.Is(err, enroll.ErrAPITokenRevoked):
		return invalid("token_revoked", "this API token was revoked")
	case errors.Is(err, enroll.ErrAPITokenUnknown):
		return invalid("invalid_token", "this API token is not valid")
	case errors.Is(err, enroll.ErrAPITokenNoOwner):
		return invalid("token_no_owner", "this API token was made before tokens had an owner and scopes, and no longer works: "+
			"create a new one (replyreset api-token create -owner USER -scopes read,write NAME), then revoke this one ("+
			"replyreset api-token revoke "+tok.Name+")")
	case errors.Is(err, enroll.ErrAPITokenOwner):
		return invalid("token_owner_not_admin", "this API token no longer works: its owner must be an enabled member of the admin group ("+
			strings.TrimPrefix(err.Error(), enroll.ErrAPITokenOwner.Error()+": ")+")")
	case errors.Is(err, enroll.ErrAPITokenScope):
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="replyreset", error="insufficient_scope", scope="`+scope+`"`)
		return apiFail(c, http.StatusForbidden, "insufficient_scope", "this call needs an API token with the "+scope+
			" scope; this one has: "+strings.Join(tok.Scopes, ", "))
	}
	s.log.ErrorContext(c.Request().Context(), "api token check", "err", err)
	if storeDown(err) { // before directoryDown: it may wrap a deadline
		return s.apiProblem(c, err)
	}
	if directoryDown(err) { // the owner check asks the directory: its outage answers as everywhere
		return apiFail(c, http.StatusServiceUnavailable, "directory_unavailable", directoryUnavailableMessage)
	}
	return apiFail(c, http.StatusServiceUnavailable, "unavailable", "the token cannot be checked now; try again in a few minutes")
}

func apiActor(c echo.Context) string {
	name, _ := c.Get("api_token").(string)
	return "api:" + name
}

// bindJSON decodes a JSON body strictly: unknown fields are errors.
func bindJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return apiFail(c, http.StatusUnsupportedMediaType, "invalid_request", "the body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "the body is not valid JSON for this call: "+err.Error())
	}
	if dec.More() {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "the body holds more than one JSON value")
	}
	return nil
}

// apiEnrollment is an enrollment as the API shows it: no sealed secrets.
type apiEnrollment struct {
	Username   string    `json:"username"`
	State      string    `json:"state"`
	Phone      string    `json:"phone,omitempty"`
	Language   string    `json:"language"`
	Method     string    `json:"method,omitempty"`
	Mail       string    `json:"mail,omitempty"`
	App        bool      `json:"authenticator_app"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// The pending activation link, when there is one (state invited, or
	// an enrolled user sent a new link).
	InvitedAt     time.Time `json:"invited_at,omitzero"`
	InvitedBy     string    `json:"invited_by,omitempty"`
	LinkExpiresAt time.Time `json:"link_expires_at,omitzero"`
}

// toAPIListed is a row of the enrollments list as the API shows it.
func toAPIListed(l listedEnrollment) apiEnrollment {
	out := toAPIEnrollment(l.Enrollment)
	out.State = string(l.State)
	if a := l.Invite; a != nil {
		out.InvitedAt, out.InvitedBy, out.LinkExpiresAt = a.CreatedAt, a.CreatedBy, a.ExpiresAt
	}
	return out
}

func toAPIEnrollment(e enroll.Enrollment) apiEnrollment {
	return apiEnrollment{Username: e.Username, State: string(e.State), Phone: e.Phone, Language: e.Language, Method: e.Method,
		Mail: e.Mail, App: len(e.TOTPSealed) > 0, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, VerifiedAt: e.VerifiedAt}
}

// apiUser is a directory user as the API shows it.
type apiUser struct {
	Username    string       `json:"username"`
	DN          string       `json:"dn"`
	DisplayName string       `json:"display_name,omitempty"`
	Mail        string       `json:"mail,omitempty"`
	Mobile      string       `json:"mobile,omitempty"`
	Locked      bool         `json:"locked"`
	LockedAt    time.Time    `json:"locked_at,omitzero"`
	Disabled    bool         `json:"disabled"`
	State       enroll.State `json:"enrollment_state,omitempty"`
}

func toAPIUser(u directory.User, st enroll.State) apiUser {
	return apiUser{Username: u.Username, DN: u.DN, DisplayName: u.DisplayName, Mail: u.Mail, Mobile: u.Mobile,
		Locked: u.Locked, LockedAt: u.LockoutTime, Disabled: u.Disabled, State: st}
}

func (s *adminSite) apiSummary(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	sum, err := s.ops.svc.Summary(ctx, s.now())
	if err != nil {
		return s.apiProblem(c, err)
	}
	if sum.Recent == nil {
		sum.Recent = []enroll.Event{}
	}
	return c.JSON(http.StatusOK, sum)
}

// intParam reads an optional non-negative integer query parameter.
func intParam(c echo.Context, name string, def, maxVal int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: must be a non-negative integer", name)
	}
	return min(n, maxVal), nil
}

func (s *adminSite) apiUsers(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	if q == "" {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "q: the text to search for is required")
	}
	limit, err := intParam(c, "limit", 50, 1000)
	if err != nil {
		return apiFail(c, http.StatusBadRequest, "invalid_request", err.Error())
	}
	ctx, cancel := withSource(c)
	defer cancel()
	found, truncated, err := s.ops.dir.SearchUsers(ctx, q, limit)
	if err != nil {
		return s.apiProblem(c, err)
	}
	out := make([]apiUser, 0, len(found))
	for _, u := range found {
		var st enroll.State
		if e, err := s.ops.store.Enrollment(ctx, u.Username); err == nil {
			st = e.State
		}
		out = append(out, toAPIUser(u, st))
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out, "truncated": truncated})
}

// activationRequest names whom to activate: exactly one of usernames,
// group and ou.
type activationRequest struct {
	Usernames    []string `json:"usernames"`
	Group        string   `json:"group"`
	OU           string   `json:"ou"`
	SkipEnrolled *bool    `json:"skip_enrolled"` // default: true for a group or OU, false for usernames
}

func (s *adminSite) apiActivate(c echo.Context) error {
	var req activationRequest
	if err := bindJSON(c, &req); err != nil || c.Response().Committed {
		return err
	}
	n := 0
	for _, set := range []bool{len(req.Usernames) > 0, strings.TrimSpace(req.Group) != "", strings.TrimSpace(req.OU) != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "give exactly one of usernames, group and ou")
	}
	ctx, cancel := withSource(c)
	defer cancel()
	names, skip := req.Usernames, false
	var err error
	var users []directory.User
	switch {
	case req.Group != "":
		users, err = s.ops.dir.GroupMembers(ctx, strings.TrimSpace(req.Group))
		names, skip = usernames(users), true
	case req.OU != "":
		users, err = s.ops.dir.UsersUnder(ctx, strings.TrimSpace(req.OU))
		names, skip = usernames(users), true
	}
	if err != nil {
		return s.apiProblem(c, err)
	}
	if req.SkipEnrolled != nil {
		skip = *req.SkipEnrolled
	}
	if len(names) > maxBulk {
		return apiFail(c, http.StatusUnprocessableEntity, "too_many", errTooMany.Error())
	}
	rows := s.ops.activateMany(ctx, apiActor(c), names, skip)
	ok := 0
	for _, r := range rows {
		if r.OK {
			ok++
		}
	}
	if rows == nil {
		rows = []activationRow{}
	}
	return c.JSON(http.StatusOK, map[string]any{"activated": ok, "failed": len(rows) - ok, "results": rows})
}

func (s *adminSite) apiEnrollments(c echo.Context) error {
	state := enroll.State(c.QueryParam("state"))
	if state != "" && !validListState(state) {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "state: must be invited, pending, active, frozen or deactivated")
	}
	offset, err := intParam(c, "offset", 0, 1<<31-1)
	if err == nil {
		var limit int
		if limit, err = intParam(c, "limit", 100, 1000); err == nil {
			ctx, cancel := withSource(c)
			defer cancel()
			list, err := s.ops.listEnrollments(ctx, enrollmentFilter{State: state, Query: c.QueryParam("q")})
			if err != nil {
				return s.apiProblem(c, err)
			}
			page := list[min(offset, len(list)):min(offset+limit, len(list))]
			out := make([]apiEnrollment, len(page))
			for i, e := range page {
				out[i] = toAPIListed(e)
			}
			return c.JSON(http.StatusOK, map[string]any{"total": len(list), "offset": offset, "enrollments": out})
		}
	}
	return apiFail(c, http.StatusBadRequest, "invalid_request", err.Error())
}

func (s *adminSite) apiEnrollment(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	e, err := s.ops.store.Enrollment(ctx, c.Param("username"))
	if err != nil {
		return s.apiProblem(c, err)
	}
	return c.JSON(http.StatusOK, toAPIEnrollment(e))
}

type inPersonRequest struct {
	Username string `json:"username"`
	Phone    string `json:"phone"`
	Language string `json:"language"`
}

func (s *adminSite) apiEnrollInPerson(c echo.Context) error {
	var req inPersonRequest
	if err := bindJSON(c, &req); err != nil || c.Response().Committed {
		return err
	}
	if strings.TrimSpace(req.Username) == "" || strings.TrimSpace(req.Phone) == "" {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "username and phone are required")
	}
	ctx, cancel := withSource(c)
	defer cancel()
	e, err := s.ops.svc.EnrollInPerson(ctx, strings.TrimSpace(req.Username), req.Phone, req.Language, apiActor(c))
	if err != nil {
		return s.apiProblem(c, err)
	}
	return c.JSON(http.StatusCreated, toAPIEnrollment(e))
}

// POST /api/v1/enrollments/:username/{deactivate,unfreeze,resend}.
func (s *adminSite) apiEnrollmentAction(c echo.Context) error {
	name := c.Param("username")
	ctx, cancel := withSource(c)
	defer cancel()
	var e enroll.Enrollment
	var err error
	switch c.Path()[strings.LastIndexByte(c.Path(), '/')+1:] {
	case "deactivate":
		e, err = s.ops.svc.Deactivate(ctx, name, apiActor(c))
	case "unfreeze":
		e, err = s.ops.svc.Unfreeze(ctx, name, apiActor(c))
	case "resend":
		res, err := s.ops.svc.Activate(ctx, name, apiActor(c))
		if err != nil {
			return s.apiProblem(c, err)
		}
		return c.JSON(http.StatusOK, map[string]any{"username": res.Username, "mail": res.Mail, "expires_at": res.ExpiresAt})
	case "revoke":
		a, err := s.ops.svc.RevokeActivation(ctx, name, apiActor(c))
		if err != nil {
			return s.apiProblem(c, err)
		}
		return c.JSON(http.StatusOK, map[string]any{"username": a.Username, "revoked": true})
	}
	if err != nil {
		return s.apiProblem(c, err)
	}
	return c.JSON(http.StatusOK, toAPIEnrollment(e))
}

func (s *adminSite) apiChangePhone(c echo.Context) error {
	var req struct {
		Phone string `json:"phone"`
	}
	if err := bindJSON(c, &req); err != nil || c.Response().Committed {
		return err
	}
	if strings.TrimSpace(req.Phone) == "" {
		return apiFail(c, http.StatusBadRequest, "invalid_request", "phone is required")
	}
	ctx, cancel := withSource(c)
	defer cancel()
	e, err := s.ops.svc.ChangePhone(ctx, c.Param("username"), req.Phone, apiActor(c))
	if err != nil {
		return s.apiProblem(c, err)
	}
	return c.JSON(http.StatusOK, toAPIEnrollment(e))
}

func (s *adminSite) apiLockouts(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	rows, err := s.ops.locked(ctx)
	if err != nil {
		return s.apiProblem(c, err)
	}
	out := make([]apiUser, len(rows))
	for i, r := range rows {
		out[i] = toAPIUser(r.User, r.State)
	}
	return c.JSON(http.StatusOK, map[string]any{"locked": out})
}

func (s *adminSite) apiUnlock(c echo.Context) error {
	ctx, cancel := withSource(c)
	defer cancel()
	u, err := s.ops.svc.UnlockUser(ctx, c.Param("username"), apiActor(c))
	if err != nil {
		return s.apiProblem(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"username": u.Username, "unlocked": true})
}

func (s *adminSite) apiAudit(c echo.Context) error {
	f, err := parseAuditFilter(c, time.UTC)
	if err == nil {
		f.Limit, err = intParam(c, "limit", 1000, maxAuditExport)
	}
	if err != nil {
		return apiFail(c, http.StatusBadRequest, "invalid_request", err.Error())
	}
	if f.Limit == 0 {
		f.Limit = 1000
	}
	ctx, cancel := withSource(c)
	defer cancel()
	evs, err := s.ops.store.Audit(ctx, f)
	if err != nil {
		return s.apiProblem(c, err)
	}
	if evs == nil {
		evs = []enroll.Event{}
	}
	body := map[string]any{"events": evs}
	if len(evs) == f.Limit {
		body["next_after"] = evs[len(evs)-1].Seq // more may follow: ask again with after=
	}
	return c.JSON(http.StatusOK, body)
}
