package enroll_test

import (
	"context"
	"errors"
	"testing"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// finderOnly is a directory that can find users but says nothing about
// who may use self-service.
type finderOnly struct{ enroll.UserFinder }

// TestSelfServiceWithoutCheckerFailsClosed: a Service whose directory
// cannot answer the self-service question activates and enrolls no one.
func TestSelfServiceWithoutCheckerFailsClosed(t *testing.T) {
	h := newHarness(t, func(d *enroll.ServiceDeps, _ *enroll.ServiceSettings) { d.Directory = finderOnly{d.Directory} })
	if _, err := h.svc.Activate(h.ctx, "jdoe", "admin:root"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Activate without a checker = %v, want ErrUnavailable", err)
	}
	if _, err := h.svc.EnrollInPerson(h.ctx, "jdoe", phoneJdoe, "en", "cli:test"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("EnrollInPerson without a checker = %v, want ErrUnavailable", err)
	}
	if n := len(h.mailer.Sent()); n != 0 {
		t.Fatalf("%d mails sent", n)
	}
}

// refuser refuses every account as a member of a deny group.
type refuser struct{}

func (refuser) CheckSelfService(_ context.Context, u directory.User) error {
	return &directory.RefusedError{Username: u.Username, Reason: directory.ReasonDenyGroup, Group: "No SMS"}
}

// TestCheckSelfServiceAudits: the domain function audits a refusal once,
// with the act and the reason, and returns it.
func TestCheckSelfServiceAudits(t *testing.T) {
	h := newHarness(t)
	u := directory.User{DN: "CN=jdoe", Username: "jdoe"}
	ctx := enroll.WithSource(h.ctx, "192.0.2.9")
	err := enroll.CheckSelfService(ctx, refuser{}, h.store, u, "web_reset", enroll.Event{Time: t0, Actor: "web"})
	var re *directory.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, directory.ErrNoSelfService) {
		t.Fatalf("CheckSelfService = %v, want the refusal", err)
	}
	evs, err := h.store.Audit(h.ctx, enroll.AuditFilter{Action: enroll.ActionSelfServiceRefused})
	if err != nil || len(evs) != 1 {
		t.Fatalf("audit = %+v, %v", evs, err)
	}
	want := "web_reset: jdoe is a member of No SMS (reset.deny_groups): this account can't use self-service"
	if ev := evs[0]; ev.Username != "jdoe" || ev.Actor != "web" || ev.Outcome != "denied" || ev.Detail != want || ev.SourceIP != "192.0.2.9" {
		t.Fatalf("audit event %+v, want detail %q", ev, want)
	}
}
