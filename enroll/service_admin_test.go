package enroll_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/notify"
)

// The admin operations (service_admin.go) against the real store, sealer
// and catalog, as the console, the API and the CLI call them.

const adminIP = "198.51.100.23"

// adminCtx is what a console or API request hands the service.
func (h *harness) adminCtx() context.Context { return enroll.WithSource(h.ctx, adminIP) }

// enrolled enrolls username with phone in lang (in person) and forgets
// the messages and mails that sent, so a test sees only its own.
func (h *harness) enrolled(username, phone, lang string) enroll.Enrollment {
	h.t.Helper()
	e, err := h.svc.EnrollInPerson(h.ctx, username, phone, lang, "admin:root")
	if err != nil {
		h.t.Fatalf("EnrollInPerson(%s): %v", username, err)
	}
	h.skipMessages = len(h.messages())
	h.skipMails = len(h.mailer.Sent())
	return e
}

// newMessages returns the messages queued since enrolled, as "to|purpose|body".
func (h *harness) newMessages() []string {
	h.t.Helper()
	var out []string
	for _, m := range h.messages()[h.skipMessages:] {
		out = append(out, m.To+"|"+m.Purpose+"|"+h.body(m))
	}
	return out
}

func (h *harness) newMails() []notify.Mail { return h.mailer.Sent()[h.skipMails:] }

// lastEvent returns the newest audit event of action; it fails if none.
func (h *harness) lastEvent(action string) enroll.Event {
	h.t.Helper()
	evs := h.audit(action)
	if len(evs) == 0 {
		h.t.Fatalf("no %q audit event", action)
	}
	return evs[len(evs)-1]
}

// wantEvent checks the fields of an admin audit event that matter here.
func wantEvent(t *testing.T, ev enroll.Event, actor, username, outcome string) {
	t.Helper()
	if ev.Actor != actor || !strings.EqualFold(ev.Username, username) || ev.Outcome != outcome ||
		ev.SourceIP != adminIP || !ev.Time.Equal(t0) {
		t.Errorf("audit event %+v: want actor %s, user %s, outcome %s, source %s, time %s",
			ev, actor, username, outcome, adminIP, t0)
	}
}

func TestDeactivateActive(t *testing.T) {
	h := newHarness(t)
	h.enrolled("jdoe", phoneJdoe, "en")
	token := h.activate("jdoe") // a re-activation link waiting
	e, err := h.svc.Deactivate(h.adminCtx(), "JDOE", "admin:helpdesk")
	if err != nil {
		t.Fatalf("Deactivate: %v", err)
	}
	if e.State != enroll.StateDeactivated || e.Username != "jdoe" || e.Phone != phoneJdoe {
		t.Errorf("Deactivate returned %+v, want jdoe deactivated, phone kept for the record", e)
	}
	if stored, err := h.store.Enrollment(h.ctx, "jdoe"); err != nil || stored.State != enroll.StateDeactivated {
		t.Errorf("stored enrollment %+v, %v; want deactivated", stored, err)
	}
	if _, err := h.store.EnrollmentByPhone(h.ctx, phoneJdoe); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("the phone still belongs to an enrollment: %v", err)
	}
	if _, err := h.svc.Open(h.ctx, token); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("the pending activation link still opens: %v", err)
	}
	want := []string{phoneJdoe + "|deactivated|" + h.catalog.Text("en", "sms.deactivated", map[string]string{"username": "jdoe"})}
	if got := h.newMessages(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages %q, want %q", got, want)
	}
	ev := h.lastEvent("deactivate")
	wantEvent(t, ev, "admin:helpdesk", "jdoe", "ok")
	if ev.Phone != phoneJdoe || !strings.Contains(ev.Detail, "was active") || !strings.Contains(ev.Detail, "activation link removed") {
		t.Errorf("audit %+v: want the phone and what changed", ev)
	}

	// Again: no error, no second SMS, audited as unchanged.
	if e, err := h.svc.Deactivate(h.adminCtx(), "jdoe", "admin:helpdesk"); err != nil || e.State != enroll.StateDeactivated {
		t.Fatalf("second Deactivate = %+v, %v; want no error", e, err)
	}
	if got := h.newMessages(); len(got) != 1 {
		t.Errorf("second Deactivate queued more: %q", got)
	}
	wantEvent(t, h.lastEvent("deactivate"), "admin:helpdesk", "jdoe", "unchanged")

	// The number is free for someone else now.
	if _, err := h.svc.EnrollInPerson(h.ctx, "asmith", phoneJdoe, "en", "admin:root"); err != nil {
		t.Errorf("enrolling the released number for another user: %v", err)
	}
}

func TestDeactivateTellsInTheUsersLanguage(t *testing.T) {
	h := newHarness(t)
	h.enrolled("asmith", phoneFR, "fr")
	if _, err := h.svc.Deactivate(h.adminCtx(), "asmith", "api:ops"); err != nil {
		t.Fatal(err)
	}
	fr := h.catalog.Text("fr", "sms.deactivated", map[string]string{"username": "asmith"})
	if got := h.newMessages(); len(got) != 1 || got[0] != phoneFR+"|deactivated|"+fr {
		t.Errorf("messages %q, want the French notice %q", got, fr)
	}
	if fr == h.catalog.Text("en", "sms.deactivated", map[string]string{"username": "asmith"}) {
		t.Error("the French and English notices are the same text")
	}
}

func TestDeactivateOptedOutNumberGetsNoSMS(t *testing.T) {
	h := newHarness(t)
	h.enrolled("jdoe", phoneJdoe, "en")
	if err := h.store.SetOptOut(h.ctx, phoneJdoe, true, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Deactivate(h.adminCtx(), "jdoe", "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	if got := h.newMessages(); len(got) != 0 {
		t.Errorf("a number that replied STOP got %q", got)
	}
}

func TestDeactivatePendingOnly(t *testing.T) {
	h := newHarness(t)
	token := h.activate("asmith")
	e, err := h.svc.Deactivate(h.adminCtx(), "asmith", "admin:helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != enroll.StateDeactivated || e.Phone != "" || e.Mail != "asmith@example.com" {
		t.Errorf("Deactivate of an activated user = %+v, want a deactivated record with no phone", e)
	}
	if _, err := h.svc.Open(h.ctx, token); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("the activation link still opens: %v", err)
	}
	if got := h.newMessages(); len(got) != 0 {
		t.Errorf("no phone was registered, yet %q was queued", got)
	}
	ev := h.lastEvent("deactivate")
	wantEvent(t, ev, "admin:helpdesk", "asmith", "ok")
	if !strings.Contains(ev.Detail, "activation link removed") {
		t.Errorf("audit detail %q does not say the link was removed", ev.Detail)
	}
	// Activating again works and mails a new link.
	if _, err := h.svc.Open(h.ctx, h.activate("asmith")); err != nil {
		t.Errorf("re-activation after deactivation: %v", err)
	}
}

func TestDeactivateUnknown(t *testing.T) {
	h := newHarness(t)
	_, err := h.svc.Deactivate(h.adminCtx(), "ghost", "admin:helpdesk")
	wantErr(t, "Deactivate(ghost)", err, enroll.ErrNotFound)
	wantEvent(t, h.lastEvent("deactivate"), "admin:helpdesk", "ghost", "denied")
	_, err = h.svc.Deactivate(h.adminCtx(), " ", "admin:helpdesk")
	wantErr(t, "Deactivate(blank)", err, enroll.ErrInvalid)
}

func TestUnfreeze(t *testing.T) {
	h := newHarness(t)
	h.enrolled("jdoe", phoneJdoe, "en")
	_, err := h.svc.Unfreeze(h.adminCtx(), "jdoe", "admin:helpdesk")
	se := asErr[*enroll.StateError](t, "Unfreeze(active)", err)
	if se.State != enroll.StateActive || !errors.Is(err, enroll.ErrWrongState) {
		t.Errorf("StateError %+v does not name the active state or match ErrWrongState", se)
	}
	wantEvent(t, h.lastEvent("unfreeze"), "admin:helpdesk", "jdoe", "denied")

	// NOT ME froze it.
	if err := h.store.UpdateEnrollment(h.ctx, "jdoe", func(e *enroll.Enrollment) error {
		e.State = enroll.StateFrozen
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.clock.Set(t0)
	e, err := h.svc.Unfreeze(h.adminCtx(), "JDoe", "admin:helpdesk")
	if err != nil || e.State != enroll.StateActive || !e.UpdatedAt.Equal(t0) {
		t.Fatalf("Unfreeze(frozen) = %+v, %v; want active, updated now", e, err)
	}
	if owner, err := h.store.EnrollmentByPhone(h.ctx, phoneJdoe); err != nil || owner.State != enroll.StateActive {
		t.Errorf("after Unfreeze the phone answers %+v, %v; want the active enrollment", owner, err)
	}
	wantEvent(t, h.lastEvent("unfreeze"), "admin:helpdesk", "jdoe", "ok")

	_, err = h.svc.Unfreeze(h.adminCtx(), "ghost", "admin:helpdesk")
	wantErr(t, "Unfreeze(ghost)", err, enroll.ErrNotFound)
}

func TestChangePhone(t *testing.T) {
	h := newHarness(t)
	h.enrolled("jdoe", phoneJdoe, "en")
	e, err := h.svc.ChangePhone(h.adminCtx(), "jdoe", "(613) 555-0181", "admin:helpdesk") // typed like at enrollment
	if err != nil {
		t.Fatalf("ChangePhone: %v", err)
	}
	if e.Phone != phoneOther || e.State != enroll.StateActive || !e.VerifiedAt.Equal(t0) {
		t.Errorf("ChangePhone returned %+v, want %s, active, verified now", e, phoneOther)
	}
	if owner, err := h.store.EnrollmentByPhone(h.ctx, phoneOther); err != nil || owner.Username != "jdoe" {
		t.Errorf("new phone owner = %+v, %v; want jdoe", owner, err)
	}
	if _, err := h.store.EnrollmentByPhone(h.ctx, phoneJdoe); !errors.Is(err, enroll.ErrNotFound) {
		t.Errorf("the old phone still belongs to jdoe: %v", err)
	}
	args := map[string]string{"username": "jdoe"}
	want := []string{
		phoneJdoe + "|phone_changed|" + h.catalog.Text("en", "sms.phone.changed_away", args),
		phoneOther + "|phone_changed|" + h.catalog.Text("en", "sms.phone.changed_to", args),
	}
	if got := h.newMessages(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages\n%q\nwant\n%q", got, want)
	}
	mails := h.newMails()
	if len(mails) != 1 || mails[0].To != "jdoe@example.com" || mails[0].Subject != "phone_changed|en" ||
		!strings.Contains(mails[0].Text, "old_phone="+phoneJdoe) || !strings.Contains(mails[0].Text, "new_phone="+phoneOther) ||
		!strings.Contains(mails[0].Text, "display_name=John Doe") {
		t.Errorf("mails %+v, want one phone_changed to jdoe@example.com with both numbers", mails)
	}
	ev := h.lastEvent("change_phone")
	wantEvent(t, ev, "admin:helpdesk", "jdoe", "ok")
	if ev.Phone != phoneOther || ev.Detail != "from "+phoneJdoe+" to "+phoneOther {
		t.Errorf("audit %+v: want the new phone and both numbers in the detail", ev)
	}

	// The same number again: nothing changes, nobody is told.
	if _, err := h.svc.ChangePhone(h.adminCtx(), "jdoe", phoneOther, "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	if len(h.newMessages()) != 2 || len(h.newMails()) != 1 {
		t.Errorf("ChangePhone to the same number sent notices")
	}
	wantEvent(t, h.lastEvent("change_phone"), "admin:helpdesk", "jdoe", "unchanged")
}

func TestChangePhoneRefusals(t *testing.T) {
	h := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.AllowedCountries = []string{"US", "CA"} })
	h.enrolled("asmith", phoneOther, "en")
	h.enrolled("jdoe", phoneJdoe, "en")
	for _, tc := range []struct {
		user, phone string
		want        error
	}{
		{"jdoe", phoneOther, enroll.ErrPhoneTaken},
		{"jdoe", "+1 (613) 555-0181", enroll.ErrPhoneTaken}, // the same number typed another way
		{"jdoe", phoneFR, enroll.ErrCountryNotAllowed},
		{"jdoe", "12", enroll.ErrInvalid},
		{"ghost", phoneFR, enroll.ErrNotFound},
	} {
		_, err := h.svc.ChangePhone(h.adminCtx(), tc.user, tc.phone, "admin:helpdesk")
		wantErr(t, fmt.Sprintf("ChangePhone(%s, %s)", tc.user, tc.phone), err, tc.want)
		wantEvent(t, h.lastEvent("change_phone"), "admin:helpdesk", tc.user, "denied")
	}
	if e, _ := h.store.Enrollment(h.ctx, "jdoe"); e.Phone != phoneJdoe {
		t.Errorf("a refused change changed the phone to %s", e.Phone)
	}
	if got := h.newMessages(); len(got) != 0 || len(h.newMails()) != 0 {
		t.Errorf("refused changes sent %q and %d mails", got, len(h.newMails()))
	}
	// Only an active or frozen enrollment has a phone to change.
	if _, err := h.svc.Deactivate(h.ctx, "jdoe", "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	_, err := h.svc.ChangePhone(h.adminCtx(), "jdoe", "+1 201 555 0199", "admin:helpdesk")
	wantErr(t, "ChangePhone(deactivated)", err, enroll.ErrWrongState)
}

// lockDir is a directory whose accounts can be locked and unlocked.
type lockDir struct {
	users enroll.UserFinder
	mu    sync.Mutex
	calls []string
	fail  error
	set   func(username string, locked bool)
}

func (d *lockDir) Unlock(_ context.Context, u directory.User) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, u.Username)
	if d.fail != nil {
		return d.fail
	}
	d.set(u.Username, false)
	return nil
}

func TestUnlockUser(t *testing.T) {
	var dir *lockDir
	h := newHarness(t, func(deps *enroll.ServiceDeps, _ *enroll.ServiceSettings) {
		dir = &lockDir{users: deps.Directory}
		deps.Unlocker = dir
	})
	dir.set = func(username string, locked bool) {
		u := h.users[username]
		u.Locked = locked
		u.LockoutTime = time.Time{}
		if locked {
			u.LockoutTime = t0.Add(-5 * time.Minute)
		}
		h.users[username] = u
	}
	dir.set("jdoe", true)

	u, err := h.svc.UnlockUser(h.adminCtx(), "JDOE", "admin:helpdesk")
	if err != nil {
		t.Fatalf("UnlockUser: %v", err)
	}
	if u.Username != "jdoe" || u.Locked || !u.LockoutTime.IsZero() || len(dir.calls) != 1 {
		t.Errorf("UnlockUser = %+v (unlock calls %v), want jdoe unlocked once", u, dir.calls)
	}
	ev := h.lastEvent("unlock")
	wantEvent(t, ev, "admin:helpdesk", "jdoe", "ok")
	if !strings.Contains(ev.Detail, t0.Add(-5*time.Minute).Format(time.RFC3339)) {
		t.Errorf("audit detail %q does not say since when it was locked", ev.Detail)
	}

	// Not locked: a typed answer, still audited, nothing called.
	_, err = h.svc.UnlockUser(h.adminCtx(), "jdoe", "admin:helpdesk")
	wantErr(t, "UnlockUser(not locked)", err, enroll.ErrNotLocked)
	wantEvent(t, h.lastEvent("unlock"), "admin:helpdesk", "jdoe", "not_locked")
	if len(dir.calls) != 1 {
		t.Errorf("Unlock called for an account that is not locked: %v", dir.calls)
	}

	_, err = h.svc.UnlockUser(h.adminCtx(), "ghost", "admin:helpdesk")
	wantErr(t, "UnlockUser(ghost)", err, enroll.ErrNotFound)
	wantErr(t, "UnlockUser(ghost)", err, directory.ErrNotFound)
	wantEvent(t, h.lastEvent("unlock"), "admin:helpdesk", "ghost", "denied")

	dir.set("asmith", true)
	dir.fail = fmt.Errorf("modify: %w", directory.ErrInsufficientRights)
	_, err = h.svc.UnlockUser(h.adminCtx(), "asmith", "admin:helpdesk")
	wantErr(t, "UnlockUser(refused by the directory)", err, directory.ErrInsufficientRights)
	wantEvent(t, h.lastEvent("unlock"), "admin:helpdesk", "asmith", "error")
}

func TestUnlockUserWithoutUnlocker(t *testing.T) {
	h := newHarness(t) // enrolltest.Users cannot unlock
	_, err := h.svc.UnlockUser(h.adminCtx(), "jdoe", "admin:helpdesk")
	wantErr(t, "UnlockUser", err, enroll.ErrNoUnlock)
}

// TestSourceIPAudited: every admin action records where it came from; the
// re-send of an activation is Activate again, whose new link replaces the
// old.
func TestSourceIPAudited(t *testing.T) {
	h := newHarness(t)
	first := h.activate("jdoe")
	if _, err := h.svc.Activate(h.adminCtx(), "jdoe", "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	second := h.lastToken()
	if _, err := h.svc.Open(h.ctx, first); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("the first link still opens after a re-send: %v", err)
	}
	if _, err := h.svc.Open(h.ctx, second); err != nil {
		t.Errorf("the re-sent link: %v", err)
	}
	evs := h.audit("activate")
	if len(evs) != 2 || evs[0].SourceIP != "" || evs[1].SourceIP != adminIP || evs[1].Actor != "admin:helpdesk" {
		t.Errorf("activate events %+v: want the second from %s by admin:helpdesk, the first without a source", evs, adminIP)
	}
	if _, err := h.svc.EnrollInPerson(h.adminCtx(), "asmith", phoneOther, "", "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	if ev := h.lastEvent("enroll"); ev.SourceIP != adminIP {
		t.Errorf("enroll in person: source %q, want %s", ev.SourceIP, adminIP)
	}
	if got := enroll.SourceFrom(h.ctx); got != "" {
		t.Errorf("SourceFrom(a plain context) = %q", got)
	}
}

// TestAdminOpsKeepSecretsOut: no token, code or secret of the operations
// reaches the data file, the audit trail or the log.
func TestAdminOpsKeepSecretsOut(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.enrolled("asmith", phoneOther, "en")
	secret, _, err := h.svc.CreateToken(h.adminCtx(), rw("grafana"), "admin:helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.VerifyToken(h.ctx, secret, enroll.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Deactivate(h.adminCtx(), "jdoe", "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.RevokeToken(h.adminCtx(), "grafana", "admin:helpdesk"); err != nil {
		t.Fatal(err)
	}
	evs, err := h.store.Audit(h.ctx, enroll.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if s := fmt.Sprintf("%+v", ev); strings.Contains(s, secret) || strings.Contains(s, token) {
			t.Errorf("audit event holds a secret: %s", s)
		}
	}
	if strings.Contains(h.logs.String(), secret) || strings.Contains(h.logs.String(), token) {
		t.Error("the log holds a secret")
	}
	data := h.dataFile()
	for _, s := range []string{secret, token, strings.TrimPrefix(secret, "rr_")} {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("the data file holds a secret in clear")
		}
	}
}
