package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

// Double and triple submits of the admin console's actions, as real
// parallel HTTP posts with one session and one form token (a double click,
// two tabs), against the Samba AD lab: never a 5xx, every answer an HTML
// page (or a redirect to one), and the action done once.

// wantAdminAnswers fails unless every answer is a 303 to an /admin/ page
// that answers 200 HTML, or an HTML page itself, never a 5xx.
func wantAdminAnswers(t *testing.T, tc *tapClient, what string, as []tapAnswer) {
	t.Helper()
	for i, r := range as {
		switch {
		case r.status >= 500:
			t.Errorf("%s #%d: status %d\n%s", what, i, r.status, r.body)
		case r.status == http.StatusSeeOther:
			if !strings.HasPrefix(r.location, "/admin/") {
				t.Errorf("%s #%d: redirect to %q", what, i, r.location)
				continue
			}
			if code, body := tc.get(r.location); code != http.StatusOK || !strings.Contains(body, "<html") {
				t.Errorf("%s #%d: %s answers %d\n%s", what, i, r.location, code, body)
			}
		case !strings.Contains(r.body, "<html"):
			t.Errorf("%s #%d: status %d, not an HTML page\n%s", what, i, r.status, r.body)
		}
	}
}

// adminOutcomes counts the audit events of action for username by outcome.
func adminOutcomes(a *adminApp, action, username string) map[string]int {
	n := map[string]int{}
	for _, ev := range a.events(action) {
		if strings.EqualFold(ev.Username, username) {
			n[ev.Outcome]++
		}
	}
	return n
}

func TestAdminDoubleSubmit(t *testing.T) {
	a := newAdminApp(t)
	tc := newTapClientOn(t, a.handler)
	tc.get("/admin/login")
	form := url.Values{"username": {a.lab.HelpdeskUsername}, "password": {a.lab.HelpdeskPassword}}
	if as := tc.postTimes(1, "/admin/login", form); as[0].status != http.StatusSeeOther {
		t.Fatalf("login: %d\n%s", as[0].status, errorText(as[0].body))
	}
	tc.get("/admin/dashboard") // its forms carry the session's token
	ctx := context.Background()

	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("resend activation x%d", n), func(t *testing.T) {
			name := a.user("dresend")
			if _, err := a.svc.Activate(ctx, name, "cli:test"); err != nil {
				t.Fatal(err)
			}
			before := len(a.mailer.Sent())
			wantAdminAnswers(t, tc, "resend", tc.postTimes(n, "/admin/enrollments/"+name+"/resend", url.Values{}))
			if _, err := a.store.ActivationByUser(ctx, name); err != nil {
				t.Fatalf("after the resends, no pending activation: %v", err)
			}
			if got := adminOutcomes(a, "activate", name); got["error"] != 0 {
				t.Fatalf("activate outcomes %v", got)
			}
			if len(a.mailer.Sent()) == before {
				t.Fatal("no activation mail re-sent")
			}
		})

		t.Run(fmt.Sprintf("revoke x%d", n), func(t *testing.T) {
			name := a.user("drevoke")
			if _, err := a.svc.Activate(ctx, name, "cli:test"); err != nil {
				t.Fatal(err)
			}
			wantAdminAnswers(t, tc, "revoke", tc.postTimes(n, "/admin/enrollments/"+name+"/revoke", url.Values{"confirm": {"yes"}}))
			if _, err := a.store.ActivationByUser(ctx, name); !errors.Is(err, enroll.ErrTokenUnknown) && !errors.Is(err, enroll.ErrNotFound) {
				t.Fatalf("after the revokes, the activation: %v", err)
			}
			if got := adminOutcomes(a, "revoke_activation", name); got["ok"] != 1 || got["error"] != 0 {
				t.Fatalf("revoke_activation outcomes %v, want one ok and no error", got)
			}
		})

		t.Run(fmt.Sprintf("deactivate x%d", n), func(t *testing.T) {
			name := a.user("ddeact")
			if _, err := a.svc.EnrollInPerson(ctx, name, "+12015550177", "en", "cli:test"); err != nil {
				t.Fatal(err)
			}
			wantAdminAnswers(t, tc, "deactivate", tc.postTimes(n, "/admin/enrollments/"+name+"/deactivate", url.Values{"confirm": {"yes"}}))
			e, err := a.store.Enrollment(ctx, name)
			if err != nil || e.State != enroll.StateDeactivated {
				t.Fatalf("after the deactivations: %+v %v", e, err)
			}
			if got := adminOutcomes(a, "deactivate", name); got["ok"] != 1 || got["unchanged"] != n-1 {
				t.Fatalf("deactivate outcomes %v, want one ok and %d unchanged", got, n-1)
			}
		})

		t.Run(fmt.Sprintf("unlock x%d", n), func(t *testing.T) {
			name := a.user("dunlock")
			dn := dnOf(t, a, name)
			a.lab.LockOut(t, dn)
			wantAdminAnswers(t, tc, "unlock", tc.postTimes(n, "/admin/lockouts/"+name+"/unlock", url.Values{}))
			if a.lab.Locked(t, dn) {
				t.Fatal("still locked")
			}
			if got := adminOutcomes(a, "unlock", name); got["ok"] < 1 || got["error"] != 0 {
				t.Fatalf("unlock outcomes %v, want an ok and no error", got)
			}
		})
	}
}
