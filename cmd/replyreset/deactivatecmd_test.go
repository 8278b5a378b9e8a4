package main

import (
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/demodir"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// seedEnrollments writes enrollments straight into the data file of f.
func seedEnrollments(t *testing.T, f configFile, list ...enroll.Enrollment) {
	t.Helper()
	st, release := openTestStore(t, f)
	defer release()
	for _, e := range list {
		if err := st.PutEnrollment(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func activeEnrollment(username, phone string) enroll.Enrollment {
	now := time.Now().UTC().Truncate(time.Second)
	return enroll.Enrollment{Username: username, Phone: phone, Language: "en", State: enroll.StateActive, Method: "sms",
		CreatedAt: now, UpdatedAt: now, VerifiedAt: now}
}

func TestDeactivate(t *testing.T) {
	t.Parallel()
	s := ldaplab.OpenLDAP(t)
	f := writeConfig(t, labConfig(s))
	first, second := s.UniqueName("deact"), s.UniqueName("deact")
	s.AddUser(t, ldaplab.UserSpec{Username: first})
	s.AddUser(t, ldaplab.UserSpec{Username: second})
	mustRun(t, "enroll", "-config", f.Path, first, "+1 201 555 0161")
	mustRun(t, "enroll", "-config", f.Path, second, "+1 201 555 0162")

	// Flags may follow the usernames; one unknown user fails the run, not the others.
	r := runCLI(t, "deactivate", first, "ghost-"+first, second, "-config", f.Path, "-by", "helpdesk-ann")
	wantCode(t, r, 1)
	wantLine(t, r, r.stdout, first+": deactivated (was active); phone +12015550161 released and told by SMS")
	wantLine(t, r, r.stdout, "ghost-"+first+": NOT deactivated: no enrollment and no pending activation")
	wantLine(t, r, r.stdout, second+": deactivated (was active); phone +12015550162 released and told by SMS")
	wantLine(t, r, r.stderr, "replyreset deactivate: 1 of 3 users not deactivated")

	list := listEnrollments(t, f)
	for _, e := range list {
		if e.State != enroll.StateDeactivated {
			t.Errorf("enrollment %s is %s, want deactivated", e.Username, e.State)
		}
	}
	r = mustRun(t, "enrollments", "-config", f.Path, "-state", "active", "-format", "json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("enrollments -state active after deactivating all:\n%v", r)
	}
	r = mustRun(t, "enrollments", "-config", f.Path, "-state", "deactivated")
	if !strings.Contains(r.stdout, first) || !strings.Contains(r.stdout, second) {
		t.Errorf("enrollments -state deactivated lacks the users:\n%v", r)
	}
	r = mustRun(t, "outbox", "-config", f.Path, "-format", "json")
	if n := strings.Count(r.stdout, `"purpose": "deactivated"`); n != 2 {
		t.Errorf("outbox holds %d deactivation notices, want 2:\n%s", n, r.stdout)
	}
	events := auditEvents(t, f, "-action", "deactivate")
	if len(events) != 3 {
		t.Fatalf("audit = %+v, want 3 deactivate events", events)
	}
	for _, ev := range events {
		if ev.Actor != "cli:helpdesk-ann" {
			t.Errorf("deactivate event by %q, want cli:helpdesk-ann", ev.Actor)
		}
	}

	// Again: no error, nothing more sent.
	r = mustRun(t, "deactivate", "-config", f.Path, first)
	wantLine(t, r, r.stdout, first+": already deactivated")
	r = mustRun(t, "outbox", "-config", f.Path, "-format", "json")
	if n := strings.Count(r.stdout, `"purpose": "deactivated"`); n != 2 {
		t.Errorf("a second deactivation sent another notice (%d)", n)
	}
	// The number is free again.
	mustRun(t, "enroll", "-config", f.Path, second, "+1 201 555 0161")
}

func TestDeactivateUsage(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, embeddedConfig(t))
	r := runCLI(t, "deactivate", "-config", f.Path)
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset deactivate: usage: want one or more usernames, e.g. replyreset deactivate -config config.yaml jdoe asmith")
	r = runCLI(t, "enrollments", "-config", f.Path, "-state", "gone")
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, `replyreset enrollments: usage: -state "gone": must be pending, active, frozen or deactivated`)
}

// TestAdminCommandsWhileServing: deactivate, audit -format csv and
// api-token run inside a running server through the control socket.
func TestAdminCommandsWhileServing(t *testing.T) {
	t.Parallel()
	c := embeddedConfig(t) // an API token's owner is checked in the directory
	c.Listen = freePort(t)
	f := writeConfig(t, c)
	seedEnrollments(t, f, activeEnrollment("jdoe", "+12015550171"))
	srv := startServe(t, f, c.Listen)

	r := mustRun(t, "deactivate", "-config", f.Path, "-by", "ann", "jdoe")
	wantLine(t, r, r.stdout, "jdoe: deactivated (was active); phone +12015550171 released and told by SMS")
	r = mustRun(t, "audit", "-config", f.Path, "-format", "csv", "-action", "deactivate")
	if !strings.Contains(r.stdout, "cli:ann,deactivate,jdoe,'+12015550171,ok,was active") {
		t.Errorf("audit CSV through the server:\n%v", r)
	}
	r = mustRun(t, "api-token", "create", "-config", f.Path, "-owner", demodir.HelpdeskUsername, "-scopes", "read", "ci")
	if !strings.HasPrefix(r.stdout, "rr_") {
		t.Errorf("api-token create through the server:\n%v", r)
	}
	srv.stop(t)
	if log := srv.stderr.String(); strings.Contains(log, strings.TrimSpace(r.stdout)[3:]) {
		t.Error("the server log holds the API token's secret")
	}
	list := listEnrollments(t, f)
	if len(list) != 1 || list[0].State != enroll.StateDeactivated {
		t.Errorf("enrollments after serve = %+v", list)
	}
}
