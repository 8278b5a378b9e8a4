package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// api sends one API request with a bearer token ("" = none) and decodes
// the JSON answer into out (when not nil).
func (a *adminApp) api(t *testing.T, token, method, path, body string, out any) (int, apiErrorBody) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "198.51.100.7:5000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, rec.Body)
	}
	var e apiErrorBody
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s %s: error body %s (%v)", method, path, rec.Body, err)
		}
	} else if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, rec.Body)
		}
	}
	return rec.Code, e
}

func wantAPI(t *testing.T, what string, code int, e apiErrorBody, wantCode int, wantErr string) {
	t.Helper()
	if code != wantCode || e.Error.Code != wantErr {
		t.Fatalf("%s: %d %q (%s), want %d %q", what, code, e.Error.Code, e.Error.Message, wantCode, wantErr)
	}
}

func TestAPIAuthentication(t *testing.T) {
	a := newAdminApp(t)
	good := a.token("script")
	revoked := a.token("old")
	if _, err := a.svc.RevokeToken(context.Background(), "old", "cli:test"); err != nil {
		t.Fatal(err)
	}
	// Every route of the API, each asked without, with a wrong and with a
	// revoked token: none does anything.
	for _, r := range apiRoutes(t, a) {
		path := strings.ReplaceAll(r.Path, ":username", "jdoe")
		for _, tc := range []struct{ name, token, code string }{
			{"missing", "", "unauthorized"},
			{"wrong", "rr_" + strings.Repeat("A", 43), "invalid_token"},
			{"malformed", "hello", "invalid_token"},
			{"revoked", revoked, "token_revoked"},
		} {
			code, e := a.api(t, tc.token, r.Method, path, "", nil)
			wantAPI(t, r.Method+" "+path+" with a "+tc.name+" token", code, e, http.StatusUnauthorized, tc.code)
		}
		// The per-address guard counts wrong tokens; start each route afresh.
		if err := a.store.ClearFailures(context.Background(), "api-token:ip:198.51.100.7"); err != nil {
			t.Fatal(err)
		}
	}
	var sum enroll.Summary
	if code, e := a.api(t, good, "GET", "/api/v1/summary", "", &sum); code != 200 {
		t.Fatalf("good token: %d %+v", code, e)
	}
	if code, e := a.api(t, "", "GET", "/api/v1/openapi.json", "", nil); code != 200 {
		t.Fatalf("the OpenAPI document needs no token: %d %+v", code, e)
	}

	t.Run("five wrong tokens block the address", func(t *testing.T) {
		for i := range 5 {
			code, e := a.api(t, "rr_guess"+strings.Repeat("x", i), "GET", "/api/v1/summary", "", nil)
			wantAPI(t, "guess", code, e, http.StatusUnauthorized, "invalid_token")
		}
		code, e := a.api(t, good, "GET", "/api/v1/summary", "", nil)
		wantAPI(t, "good token from a blocked address", code, e, http.StatusTooManyRequests, "rate_limited")
		a.clock.Advance(10*time.Minute + time.Second)
		if code, _ := a.api(t, good, "GET", "/api/v1/summary", "", nil); code != 200 {
			t.Fatalf("after 10 minutes: %d", code)
		}
	})
}

func TestAPIOperations(t *testing.T) {
	a := newAdminApp(t)
	tok := a.token("helpdesk-bot")
	ctx := context.Background()

	t.Run("users", func(t *testing.T) {
		name := a.user("apiu")
		var out struct {
			Users     []apiUser `json:"users"`
			Truncated bool      `json:"truncated"`
		}
		if code, e := a.api(t, tok, "GET", "/api/v1/users?q="+name, "", &out); code != 200 || len(out.Users) != 1 || out.Users[0].Username != name {
			t.Fatalf("search: %d %+v %+v", code, e, out)
		}
		code, e := a.api(t, tok, "GET", "/api/v1/users", "", nil)
		wantAPI(t, "no query", code, e, 400, "invalid_request")
		code, e = a.api(t, tok, "GET", "/api/v1/users?q=x&limit=-1", "", nil)
		wantAPI(t, "bad limit", code, e, 400, "invalid_request")
	})

	t.Run("activations", func(t *testing.T) {
		u1, u2 := a.user("apia"), a.user("apia")
		grp := a.lab.AddGroup(t, ldaplab.GroupSpec{Name: a.lab.UniqueName("apig"), Members: []string{dnOf(t, a, u1), dnOf(t, a, u2)}})
		var res struct {
			Activated int             `json:"activated"`
			Failed    int             `json:"failed"`
			Results   []activationRow `json:"results"`
		}
		code, e := a.api(t, tok, "POST", "/api/v1/activations", `{"usernames":["`+u1+`","nobody-xyz"]}`, &res)
		if code != 200 || res.Activated != 1 || res.Failed != 1 || res.Results[1].Code != "not_found" {
			t.Fatalf("usernames: %d %+v %+v", code, e, res)
		}
		code, e = a.api(t, tok, "POST", "/api/v1/activations", `{"group":"`+grp+`"}`, &res)
		// u1 got its link just above: left alone; u2 is mailed.
		if code != 200 || res.Activated != 1 || res.Failed != 1 || !slices.ContainsFunc(res.Results, func(r activationRow) bool {
			return r.Username == u1 && r.Code == "already_activated"
		}) {
			t.Fatalf("group: %d %+v %+v", code, e, res)
		}
		evs := a.events("activate")
		if last := evs[len(evs)-1]; last.Actor != "api:helpdesk-bot" || last.SourceIP != "198.51.100.7" {
			t.Fatalf("audit: %+v", last)
		}
		for body, want := range map[string]string{
			`{}`:                              "invalid_request",
			`{"usernames":["a"],"group":"g"}`: "invalid_request",
			`{"usernames":"a"}`:               "invalid_request",
			`{"user":"a"}`:                    "invalid_request",
			`not json`:                        "invalid_request",
		} {
			code, e := a.api(t, tok, "POST", "/api/v1/activations", body, nil)
			wantAPI(t, body, code, e, 400, want)
		}
		code, e = a.api(t, tok, "POST", "/api/v1/activations", `{"group":"no-such-group-xyz"}`, nil)
		wantAPI(t, "unknown group", code, e, 404, "user_not_found")
	})

	name := a.user("apie")
	t.Run("enrollments", func(t *testing.T) {
		var e1 apiEnrollment
		code, e := a.api(t, tok, "POST", "/api/v1/enrollments", `{"username":"`+name+`","phone":"(201) 555-0144","language":"fr"}`, &e1)
		if code != 201 || e1.State != "active" || e1.Phone != "+12015550144" || e1.Language != "fr" {
			t.Fatalf("enroll in person: %d %+v %+v", code, e, e1)
		}
		other := a.user("apie")
		code, e = a.api(t, tok, "POST", "/api/v1/enrollments", `{"username":"`+other+`","phone":"+12015550144"}`, nil)
		wantAPI(t, "taken phone", code, e, 409, "phone_taken")
		code, e = a.api(t, tok, "POST", "/api/v1/enrollments", `{"username":"`+other+`","phone":"12"}`, nil)
		wantAPI(t, "bad phone", code, e, 422, "invalid_phone")
		code, e = a.api(t, tok, "POST", "/api/v1/enrollments", `{"username":"nobody-xyz","phone":"+12015550145"}`, nil)
		wantAPI(t, "unknown user", code, e, 404, "user_not_found")

		var list struct {
			Total       int             `json:"total"`
			Enrollments []apiEnrollment `json:"enrollments"`
		}
		if code, _ := a.api(t, tok, "GET", "/api/v1/enrollments?state=active&q="+name, "", &list); code != 200 || list.Total != 1 {
			t.Fatalf("list: %d %+v", code, list)
		}
		code, e = a.api(t, tok, "GET", "/api/v1/enrollments?state=bogus", "", nil)
		wantAPI(t, "bad state", code, e, 400, "invalid_request")

		var one map[string]any
		if code, _ := a.api(t, tok, "GET", "/api/v1/enrollments/"+name, "", &one); code != 200 || one["username"] != name {
			t.Fatalf("get: %d %+v", code, one)
		}
		for k := range one {
			if strings.Contains(strings.ToLower(k), "totp") || strings.Contains(strings.ToLower(k), "sealed") {
				t.Fatalf("the API shows %s", k)
			}
		}
		code, e = a.api(t, tok, "GET", "/api/v1/enrollments/nobody-xyz", "", nil)
		wantAPI(t, "unknown enrollment", code, e, 404, "not_enrolled")

		if code, e := a.api(t, tok, "PUT", "/api/v1/enrollments/"+name+"/phone", `{"phone":"+1 201 555 0146"}`, &e1); code != 200 || e1.Phone != "+12015550146" {
			t.Fatalf("change phone: %d %+v", code, e)
		}
		code, e = a.api(t, tok, "PUT", "/api/v1/enrollments/"+name+"/phone", `{}`, nil)
		wantAPI(t, "no phone", code, e, 400, "invalid_request")

		if code, e := a.api(t, tok, "POST", "/api/v1/enrollments/"+name+"/unfreeze", "", nil); code != 409 || e.Error.Code != "wrong_state" {
			t.Fatalf("unfreeze an active one: %d %+v", code, e)
		}
		if code, e := a.api(t, tok, "POST", "/api/v1/enrollments/"+name+"/deactivate", "", &e1); code != 200 || e1.State != "deactivated" {
			t.Fatalf("deactivate: %d %+v", code, e)
		}
		var resent map[string]any
		if code, e := a.api(t, tok, "POST", "/api/v1/enrollments/"+name+"/resend", "", &resent); code != 200 || resent["mail"] != name+"@example.com" {
			t.Fatalf("resend: %d %+v %+v", code, e, resent)
		}
		// A frozen enrollment (NOT ME) can be made active again.
		frozen := a.user("apif")
		if _, err := a.svc.EnrollInPerson(ctx, frozen, "+12015550147", "en", "cli:test"); err != nil {
			t.Fatal(err)
		}
		if err := a.store.UpdateEnrollment(ctx, frozen, func(e *enroll.Enrollment) error { e.State = enroll.StateFrozen; return nil }); err != nil {
			t.Fatal(err)
		}
		if code, e := a.api(t, tok, "POST", "/api/v1/enrollments/"+frozen+"/unfreeze", "", &e1); code != 200 || e1.State != "active" {
			t.Fatalf("unfreeze: %d %+v", code, e)
		}
	})

	t.Run("lockouts and unlock", func(t *testing.T) {
		locked := a.user("apil")
		dn := dnOf(t, a, locked)
		a.lab.LockOut(t, dn)
		var out struct {
			Locked []apiUser `json:"locked"`
		}
		if code, _ := a.api(t, tok, "GET", "/api/v1/lockouts", "", &out); code != 200 ||
			!slices.ContainsFunc(out.Locked, func(u apiUser) bool { return u.Username == locked && u.Locked && !u.LockedAt.IsZero() }) {
			t.Fatalf("lockouts: %d %+v", code, out)
		}
		if code, e := a.api(t, tok, "POST", "/api/v1/lockouts/"+locked+"/unlock", "", nil); code != 200 {
			t.Fatalf("unlock: %d %+v", code, e)
		}
		if a.lab.Locked(t, dn) {
			t.Fatal("still locked")
		}
		code, e := a.api(t, tok, "POST", "/api/v1/lockouts/"+locked+"/unlock", "", nil)
		wantAPI(t, "unlock an unlocked account", code, e, 409, "not_locked")
		code, e = a.api(t, tok, "POST", "/api/v1/lockouts/nobody-xyz/unlock", "", nil)
		wantAPI(t, "unlock nobody", code, e, 404, "user_not_found")
	})

	t.Run("audit", func(t *testing.T) {
		var out struct {
			Events    []enroll.Event `json:"events"`
			NextAfter uint64         `json:"next_after"`
		}
		if code, _ := a.api(t, tok, "GET", "/api/v1/audit?user="+name+"&limit=2", "", &out); code != 200 || len(out.Events) != 2 || out.NextAfter != out.Events[1].Seq {
			t.Fatalf("page 1: %d %+v", code, out)
		}
		first := slices.Clone(out.Events)
		if code, _ := a.api(t, tok, "GET", "/api/v1/audit?user="+name+"&limit=2&after="+strconv.FormatUint(out.NextAfter, 10), "", &out); code != 200 || len(out.Events) == 0 || out.Events[0].Seq <= first[1].Seq {
			t.Fatalf("page 2: %d %+v", code, out)
		}
		code, e := a.api(t, tok, "GET", "/api/v1/audit?since=nope", "", nil)
		wantAPI(t, "bad since", code, e, 400, "invalid_request")
	})

	t.Run("summary", func(t *testing.T) {
		var sum enroll.Summary
		if code, _ := a.api(t, tok, "GET", "/api/v1/summary", "", &sum); code != 200 || sum.Enrollments[enroll.StateActive] < 1 {
			t.Fatalf("summary: %d %+v", code, sum)
		}
	})

	t.Run("unknown routes and methods answer JSON errors", func(t *testing.T) {
		code, e := a.api(t, tok, "GET", "/api/v1/nothing", "", nil)
		wantAPI(t, "unknown route", code, e, 404, "not_found")
		code, e = a.api(t, tok, "DELETE", "/api/v1/lockouts", "", nil)
		wantAPI(t, "wrong method", code, e, 405, "method_not_allowed")
	})
}

// apiRoutes are the API routes registered on the server (but the OpenAPI
// document, which is public).
func apiRoutes(t *testing.T, a *adminApp) []*echo.Route {
	t.Helper()
	var out []*echo.Route
	for _, r := range a.handler.(*echo.Echo).Routes() {
		if strings.HasPrefix(r.Path, "/api/v1/") && r.Path != "/api/v1/openapi.json" && r.Method != echo.RouteNotFound {
			out = append(out, r)
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d API routes", len(out))
	}
	return out
}

// TestOpenAPIMatchesRoutes: every API route is documented with its method
// and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newAdminApp(t).handler.(*echo.Echo)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	param := regexp.MustCompile(`:([a-z]+)`)
	served := map[string]bool{}
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/") || r.Method == echo.RouteNotFound {
			continue
		}
		key := strings.ToLower(r.Method) + " " + param.ReplaceAllString(r.Path, "{$1}")
		served[key] = true
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[method+" "+path] = true
		}
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.json documents %s, which is not served", k)
		}
	}
}

// An activated user is listed by the API at once, as invited with the
// link's dates, like the console; revoke takes the link back.
func TestAPIInvitedUsers(t *testing.T) {
	a := newAdminApp(t)
	tok := a.token("invites")
	name := a.user("apiinv")
	if _, err := a.svc.Activate(context.Background(), name, "cli:test"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Total       int             `json:"total"`
		Enrollments []apiEnrollment `json:"enrollments"`
	}
	if code, e := a.api(t, tok, "GET", "/api/v1/enrollments?state=invited&q="+name, "", &list); code != 200 || list.Total != 1 {
		t.Fatalf("list invited: %d %+v %+v", code, e, list)
	}
	got := list.Enrollments[0]
	if got.Username != name || got.State != "invited" || got.InvitedBy != "cli:test" ||
		!got.LinkExpiresAt.Equal(a.clock.Now().Add(7*24*time.Hour)) || got.InvitedAt.IsZero() {
		t.Fatalf("invited row %+v", got)
	}
	var rev map[string]any
	if code, e := a.api(t, tok, "POST", "/api/v1/enrollments/"+name+"/revoke", "", &rev); code != 200 || rev["revoked"] != true {
		t.Fatalf("revoke: %d %+v %v", code, e, rev)
	}
	if code, _ := a.api(t, tok, "POST", "/api/v1/enrollments/"+name+"/revoke", "", nil); code != 404 {
		t.Fatalf("revoke again: %d, want 404", code)
	}
	if code, _ := a.api(t, tok, "GET", "/api/v1/enrollments?state=invited&q="+name, "", &list); code != 200 || list.Total != 0 {
		t.Fatalf("after revoke: %d %+v", code, list)
	}
}
