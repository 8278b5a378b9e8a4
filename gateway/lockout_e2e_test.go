package gateway_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// End to end against the real directory servers: the real directory.Client
// scans for lockouts and lists the admins, the real bbolt store keeps the
// events and the outbox (the SMS texts are read from it), the real mailer
// sends the admin mails to an in-process SMTP server, and replies come in
// as signed webhooks.

// e2ePoll is the poll interval of these tests.
const e2ePoll = time.Second

// lockoutRig is the SMS harness plus the lockout watch and admin mail.
type lockoutRig struct {
	*harness
	dir    *directory.Client // with directory.admin_group set
	sealer *enroll.Sealer
	mails  *templates.Mails
	smtp   *smtptest.Server
	mailer *mailer.Mailer
	cfg    lockout.Config
	admin  directory.User // the helpdesk admin, with its mail address

	mu      sync.Mutex
	stop    context.CancelFunc
	stopped chan error
}

func newLockoutRig(t *testing.T, lab *ldaplab.Server) *lockoutRig {
	t.Helper()
	dcfg := lab.DirectoryConfig()
	dcfg.AdminGroup = lab.AdminGroupDN
	dir, err := directory.New(dcfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.New(t, smtptest.Options{})
	mcfg := mailer.DefaultConfig()
	mcfg.Host, mcfg.Port, mcfg.From, mcfg.TLS = srv.Host, srv.Port, "ReplyReset <replyreset@example.test>", mailer.TLSNone
	m, err := mailer.New(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	alerts := notify.NewAdminAlerts(dir, m, mails, notify.AdminAlertOptions{Language: "en"})
	h := newHarness(t, lab, func(_ *directory.Config, s *gateway.Settings) { s.NotMe = alerts })
	r := &lockoutRig{harness: h, dir: dir, sealer: testkit.Sealer(t), mails: mails, smtp: srv, mailer: m,
		cfg: lockout.Config{Enabled: true, PollInterval: e2ePoll, StormThreshold: 10, StormWindow: 5 * time.Minute}}

	// The lab's helpdesk admin (member of Helpdesk through the nested group
	// Tier2) must be found, with a mail address, or no admin is alerted.
	admins, err := dir.AdminContacts(t.Context())
	if err != nil {
		t.Fatalf("AdminContacts: %v", err)
	}
	i := slices.IndexFunc(admins, func(u directory.User) bool { return strings.EqualFold(u.Username, lab.HelpdeskUsername) })
	if i < 0 {
		t.Fatalf("AdminContacts = %+v: the lab's %s (nested member of %s) is missing or has no mail address",
			admins, lab.HelpdeskUsername, lab.AdminGroupDN)
	}
	r.admin = admins[i]
	t.Cleanup(r.stopWatch)
	return r
}

// startWatch starts a lockout watch on the rig's store, as the process
// would at start-up.
func (r *lockoutRig) startWatch() {
	r.t.Helper()
	r.startWatchOn(r.dir)
}

func (r *lockoutRig) startWatchOn(scanner directory.LockoutScanner) {
	r.t.Helper()
	r.stopWatch()
	alerts := notify.NewAdminAlerts(r.dir, r.mailer, r.mails, notify.AdminAlertOptions{Language: "en"})
	w := lockout.NewWatch(r.cfg, lockout.Deps{Scanner: scanner, Store: r.store,
		Outbox: outbox.NewQueue(r.store, r.sealer, nil), Catalog: r.catalog, Alerts: alerts}, lockout.Options{Language: "en"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	r.mu.Lock()
	r.stop, r.stopped = cancel, done
	r.mu.Unlock()
}

// stopWatch stops the running watch, as a shutdown would.
func (r *lockoutRig) stopWatch() {
	r.mu.Lock()
	stop, stopped := r.stop, r.stopped
	r.stop, r.stopped = nil, nil
	r.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	select {
	case err := <-stopped:
		if err != nil {
			r.t.Errorf("LockoutWatch.Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Error("LockoutWatch.Run did not return after its context ended")
	}
}

// lockOut locks dn with bad binds and unlocks it when the test ends, so
// that no later test finds it locked.
func (r *lockoutRig) lockOut(username, dn string) time.Time {
	r.t.Helper()
	r.lab.LockOut(r.t, dn)
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if u, err := r.dir.FindUser(ctx, username); err == nil && u.Locked {
			if err := r.dir.Unlock(ctx, u); err != nil {
				r.t.Logf("cleanup: unlock %s: %v", username, err)
			}
		}
	})
	return time.Now()
}

func (r *lockoutRig) texts(username string) []string {
	r.t.Helper()
	return testkit.LockoutTexts(r.t, r.store, r.sealer, username)
}

// waitTexts waits until username has n lockout texts, at most within,
// and returns how long it took.
func (r *lockoutRig) waitTexts(username string, n int, within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	for {
		got := r.texts(username)
		if len(got) >= n {
			if len(got) > n {
				r.t.Fatalf("%d lockout texts for %s, want %d: %q", len(got), username, n, got)
			}
			return time.Since(start)
		}
		if time.Since(start) > within {
			r.t.Fatalf("%d lockout texts for %s after %v, want %d", len(got), username, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alertRe is the English alert; the time is HH:MM.
var alertRe = regexp.MustCompile(`^ReplyReset: your account (\S+) was locked at (\d\d:\d\d)\. Reply UNLOCK to unlock it, RESET for a new password, or NOT ME if this wasn't you\.$`)

// checkAlert checks an alert text for username locked at about at.
func checkAlert(t *testing.T, text, username string, at time.Time) {
	t.Helper()
	m := alertRe.FindStringSubmatch(text)
	if m == nil || m[1] != username {
		t.Fatalf("alert text = %q, want the lockout alert for %s", text, username)
	}
	// The lockout happened during lockOut, just before at, in the server's
	// local time zone.
	local := at.In(time.Local)
	if m[2] != local.Format("15:04") && m[2] != local.Add(-time.Minute).Format("15:04") {
		t.Errorf("alert time %s, want about %s (local time)", m[2], local.Format("15:04"))
	}
}

func (r *lockoutRig) wantLocked(dn string, want bool) {
	r.t.Helper()
	if got := r.lab.Locked(r.t, dn); got != want {
		r.t.Fatalf("%s locked = %v, want %v", dn, got, want)
	}
}

// TestLockoutAlertE2E: 5 bad binds give exactly one SMS within the poll
// interval + 2 s; a restarted watch does not text again; UNLOCK by reply
// unlocks; a second lockout is a second alert; NOT ME leaves the account
// locked, freezes the enrollment and mails the helpdesk admin.
func TestLockoutAlertE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newLockoutRig(t, lab)
		const phone = "+12015550131"
		username, dn, password := r.user(phone, "en")
		r.startWatch()
		var err error

		at := r.lockOut(username, dn)
		took := r.waitTexts(username, 1, e2ePoll+2*time.Second)
		t.Logf("lockout alert queued %v after the fifth bad bind", took.Round(time.Millisecond))
		checkAlert(t, r.texts(username)[0], username, at)
		// The audit event follows the queued text.
		var evs []enroll.Event
		testkit.Eventually(t, "the lockout_alert audit event", func() bool {
			evs, err = r.store.Audit(t.Context(), enroll.AuditFilter{Username: username, Action: "lockout_alert"})
			return err != nil || len(evs) > 0
		})
		if err != nil || len(evs) != 1 || evs[0].Outcome != "ok" || evs[0].Phone != phone {
			t.Fatalf("lockout_alert audit = %+v, %v", evs, err)
		}

		// Later polls and a restart of the watch, with its cursor or with a
		// full sweep, do not text again.
		time.Sleep(2*e2ePoll + 500*time.Millisecond)
		r.startWatch()
		time.Sleep(2*e2ePoll + 500*time.Millisecond)
		r.stopWatch()
		if err := r.store.SetMonitorCursor(t.Context(), "lockout", nil); err != nil {
			t.Fatal(err)
		}
		r.startWatch()
		time.Sleep(2*e2ePoll + 500*time.Millisecond)
		if got := r.texts(username); len(got) != 1 {
			t.Fatalf("%d lockout texts after restarts, want 1: %q", len(got), got)
		}

		// UNLOCK by reply: the account binds again.
		rep, _ := r.sms(phone, "UNLOCK")
		if got, want := oneText(t, rep), r.text("sms.unlock.ok", map[string]string{"username": username}); got != want {
			t.Fatalf("UNLOCK reply = %q, want %q", got, want)
		}
		r.expectBind(dn, password, "ok")

		// Locked again: a new event, a new alert.
		at = r.lockOut(username, dn)
		r.waitTexts(username, 2, e2ePoll+2*time.Second)
		checkAlert(t, r.texts(username)[1], username, at)

		// NOT ME: frozen, still locked, the admins told.
		rep, _ = r.sms(phone, "NOT ME")
		if got := oneText(t, rep); got != r.text("sms.notme.ok", nil) {
			t.Fatalf("NOT ME reply = %q", got)
		}
		e, err := r.store.Enrollment(t.Context(), username)
		if err != nil || e.State != enroll.StateFrozen {
			t.Fatalf("enrollment after NOT ME = %+v, %v; want frozen", e, err)
		}
		r.wantLocked(dn, true)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		msgs, err := r.smtp.Wait(ctx, 1)
		if err != nil {
			t.Fatalf("admin mail: %v", err)
		}
		m := msgs[0]
		if m.Err != nil {
			t.Fatalf("the admin mail does not parse: %v", m.Err)
		}
		if !slices.ContainsFunc(m.To, func(to string) bool { return strings.EqualFold(to, r.admin.Mail) }) {
			t.Errorf("admin mail went to %q, want the helpdesk admin %s", m.To, r.admin.Mail)
		}
		for part, s := range map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML} {
			if !strings.Contains(s, username) {
				t.Errorf("the admin mail's %s does not name %s", part, username)
			}
		}
		if !strings.Contains(m.Text, "E2E "+username) || !strings.Contains(m.Text, "•31") || strings.Contains(m.Text, "5550131") {
			t.Errorf("admin mail text: want the display name and the masked phone:\n%s", m.Text)
		}
		for _, action := range []string{"not_me", "not_me_alert"} {
			evs, err := r.store.Audit(t.Context(), enroll.AuditFilter{Username: username, Action: action})
			if err != nil || len(evs) != 1 {
				t.Fatalf("%s audit = %+v, %v; want one", action, evs, err)
			}
			if action == "not_me" && (evs[0].Outcome != "frozen" || evs[0].Detail != "account locked: true") {
				t.Errorf("not_me audit = %+v", evs[0])
			}
			if action == "not_me_alert" && evs[0].Outcome != "ok" {
				t.Errorf("not_me_alert audit = %+v", evs[0])
			}
		}

		// Frozen: UNLOCK and RESET are refused, the account stays locked.
		for _, body := range []string{"UNLOCK", "RESET"} {
			rep, _ := r.sms(phone, body)
			if got := oneText(t, rep); got != r.text("sms.frozen", nil) {
				t.Errorf("%s after NOT ME = %q, want the frozen reply", body, got)
			}
		}
		r.wantLocked(dn, true)
		r.expectBind(dn, password, "locked")
		if n := len(r.smtp.Messages()); n != 1 {
			t.Errorf("%d admin mails, want 1", n)
		}
	})
}

// gatedScanner holds scans while the test locks accounts, so that
// accounts locked together are seen by one scan, as a poll interval's
// worth of lockouts is.
type gatedScanner struct {
	directory.LockoutScanner
	gate sync.Mutex
}

func (g *gatedScanner) ScanLockouts(ctx context.Context, cursor []byte, full bool) ([]directory.LockoutEvent, []byte, directory.ScanStats, error) {
	g.gate.Lock()
	defer g.gate.Unlock()
	return g.LockoutScanner.ScanLockouts(ctx, cursor, full)
}

// TestLockoutStormE2E: 12 accounts locked together with storm_threshold
// 10 give one admin mail listing them and no per-user text.
func TestLockoutStormE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newLockoutRig(t, lab)
		type account struct{ username, dn string }
		var accounts []account
		for i := range 12 {
			username, dn, _ := r.user("+120155502"+string(rune('0'+i/10))+string(rune('0'+i%10)), "en")
			accounts = append(accounts, account{username, dn})
		}
		g := &gatedScanner{LockoutScanner: r.dir}
		r.startWatchOn(g)
		time.Sleep(e2ePoll + 500*time.Millisecond) // the first sweep finds nothing

		g.gate.Lock()
		start := time.Now()
		for _, a := range accounts {
			r.lockOut(a.username, a.dn)
		}
		t.Logf("12 accounts locked in %v", time.Since(start).Round(time.Millisecond))
		g.gate.Unlock()

		ctx, cancel := context.WithTimeout(t.Context(), e2ePoll+10*time.Second)
		defer cancel()
		msgs, err := r.smtp.Wait(ctx, 1)
		if err != nil {
			t.Fatalf("storm mail: %v", err)
		}
		time.Sleep(2*e2ePoll + 500*time.Millisecond) // room for wrong texts or mails
		if n := len(r.smtp.Messages()); n != 1 {
			t.Errorf("%d admin mails, want one", n)
		}
		m := msgs[0]
		if m.Err != nil {
			t.Fatalf("the storm mail does not parse: %v", m.Err)
		}
		if !slices.ContainsFunc(m.To, func(to string) bool { return strings.EqualFold(to, r.admin.Mail) }) {
			t.Errorf("storm mail went to %q, want the helpdesk admin %s", m.To, r.admin.Mail)
		}
		if !strings.Contains(m.Subject, "12 accounts") {
			t.Errorf("subject = %q", m.Subject)
		}
		for _, a := range accounts {
			if !strings.Contains(m.Text, a.username+" (E2E "+a.username+")") || !strings.Contains(m.HTML, "<li>"+a.username) {
				t.Errorf("the storm mail does not list %s", a.username)
			}
			if got := r.texts(a.username); len(got) != 0 {
				t.Errorf("%s was texted during the storm: %q", a.username, got)
			}
			evs, err := r.store.Audit(t.Context(), enroll.AuditFilter{Username: a.username})
			if err != nil || len(evs) != 1 || evs[0].Action != "lockout_storm_suppressed" {
				t.Errorf("audit of %s = %+v, %v; want one lockout_storm_suppressed", a.username, evs, err)
			}
		}
		for _, action := range []string{"lockout_storm", "lockout_storm_mail"} {
			evs, err := r.store.Audit(t.Context(), enroll.AuditFilter{Action: action})
			if err != nil || len(evs) != 1 {
				t.Errorf("%s audit = %+v, %v; want one", action, evs, err)
			}
		}
	})
}
