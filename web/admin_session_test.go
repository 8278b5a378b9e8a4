package web

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// Admin sessions live in the store: a new server on the same store (a
// restart of serve, or another node) answers the sessions of the first.

func TestAdminSessionSurvivesANewServer(t *testing.T) {
	a := newAdminApp(t)
	b := a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	id := sessionCookie(b).Value

	// serve restarts: the old handler is gone, a new one runs on the store.
	b.handler = NewEcho(a.deps)
	p := b.get("/admin/dashboard")
	if p.code != http.StatusOK || !strings.Contains(p.body, a.text("admin.dash.recent", nil)) {
		t.Fatalf("dashboard on a new server with the old cookie: %d %s", p.code, p.header.Get("Location"))
	}
	// The form token of the old server's page still works: it is bound to
	// the session, which is the same.
	b.handler = NewEcho(a.deps)
	if p := b.post("/admin/logout", nil); p.code != http.StatusSeeOther ||
		p.header.Get("Location") != "/admin/login?why=admin.login.signed_out" {
		t.Fatalf("logout on a third server: %d %s %s", p.code, p.header.Get("Location"), errorText(p.body))
	}
	// Signed out there is signed out everywhere, the first server included.
	c := a.browser(t)
	c.cookies[adminCookie] = &http.Cookie{Name: adminCookie, Value: id}
	if p := c.get("/admin/dashboard"); p.code != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "why=admin.login.expired") {
		t.Fatalf("the first server after a sign-out on another: %d %s", p.code, p.header.Get("Location"))
	}
}

func TestAdminSessionSharedByTwoServers(t *testing.T) {
	a := newAdminApp(t)
	other := NewEcho(a.deps) // a second node on the same store
	b := a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	id := sessionCookie(b).Value

	// The language chosen on one node is the session's on the other (the
	// choice's own cookie dropped, so only the session can tell).
	if p := b.post("/admin/language", map[string][]string{"lang": {"fr"}, "back": {"/admin/dashboard"}}); p.code != http.StatusSeeOther {
		t.Fatalf("language switch: %d", p.code)
	}
	delete(b.cookies, langCookie)
	b.handler = other
	if p := b.get("/admin/dashboard"); p.code != http.StatusOK || !strings.Contains(p.body, `<html lang="fr"`) {
		t.Fatalf("the other node's dashboard: %d, want it in the session's French", p.code)
	}

	// The TTL counts from the sign-in on whichever node answers.
	a.clock.Advance(59 * time.Minute)
	if p := b.get("/admin/enrollments"); p.code != http.StatusOK {
		t.Fatalf("within the TTL on the other node: %d", p.code)
	}
	b.handler = a.handler
	a.clock.Advance(2 * time.Minute)
	if p := b.get("/admin/enrollments"); p.code != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "why=admin.login.expired") {
		t.Fatalf("after the TTL on the first node: %d %s", p.code, p.header.Get("Location"))
	}

	// The data file holds no session ID, only its hash.
	raw, err := os.ReadFile(a.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(id)) {
		t.Fatal("the data file holds a session ID in clear")
	}
	if !bytes.Contains(raw, []byte(sessionKey(id))) {
		t.Fatal("the session is not in the data file under the hash of its ID")
	}
}

// A member removed from the admin group is signed out by the next node
// that checks, and stays out on every node.
func TestAdminSessionRevokedOnEveryServer(t *testing.T) {
	a := newAdminAppOn(t, ldaplab.Samba(t))
	other := NewEcho(a.deps)
	name, password := a.admin("leaver2")
	b := a.browser(t)
	b.login(name, password)
	id := sessionCookie(b).Value
	removeMember(t, a.lab, a.lab.AdminGroupDN, name)
	a.clock.Advance(time.Minute)
	b.handler = other
	if p := b.get("/admin/dashboard"); p.code != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "not_admin_any_more") {
		t.Fatalf("the other node after leaving the group: %d %s", p.code, p.header.Get("Location"))
	}
	c := a.browser(t)
	c.cookies[adminCookie] = &http.Cookie{Name: adminCookie, Value: id}
	if p := c.get("/admin/dashboard"); p.code != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "why=admin.login.expired") {
		t.Fatalf("the first node after the revocation: %d %s", p.code, p.header.Get("Location"))
	}
}
