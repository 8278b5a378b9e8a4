package expiry_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/expiry"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// Password-expiry reminders end to end: real expiry dates from Samba AD
// (msDS-UserPasswordExpiryTimeComputed, from the domain's maxPwdAge of 42
// days) and OpenLDAP (pwdChangedTime + pwdMaxAge of a policy added for the
// test), the real bbolt store across a restart, texts read from the outbox.

// TestMain stops the lab servers after the tests and reports the tests
// that did not run for want of one (ldaplab.Main).
func TestMain(m *testing.M) { ldaplab.Main(m) }

// reminderRig is a real directory, its client, the bbolt data file and a
// clock.
type reminderRig struct {
	t       *testing.T
	lab     *ldaplab.Server
	dir     *directory.Client
	store   *bolt.Store
	dbPath  string
	sealer  *enroll.Sealer
	catalog *templates.Catalog
	clock   *enrolltest.Clock
	policy  string // OpenLDAP: the policy with pwdMaxAge the expiring users follow
}

// olMaxAge is pwdMaxAge of the OpenLDAP test policy.
const olMaxAge = 30 * 24 * time.Hour

func newReminderRig(t *testing.T, lab *ldaplab.Server) *reminderRig {
	t.Helper()
	dir, err := directory.New(lab.DirectoryConfig(), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	store, sealer := enrolltest.DataDir(t)
	r := &reminderRig{t: t, lab: lab, dir: dir, store: store, dbPath: store.Path(), sealer: sealer, catalog: catalog,
		clock: enrolltest.NewClock(time.Now())}
	if lab.Dialect == ldaplab.DialectOpenLDAP {
		r.policy = "cn=" + lab.UniqueName("expiry") + ",ou=policies," + lab.BaseDN
		add := ldap.NewAddRequest(r.policy, nil)
		add.Attribute("objectClass", []string{"device", "pwdPolicy"})
		add.Attribute("cn", []string{strings.TrimPrefix(strings.SplitN(r.policy, ",", 2)[0], "cn=")})
		add.Attribute("pwdAttribute", []string{"userPassword"})
		add.Attribute("pwdMaxAge", []string{strconv.Itoa(int(olMaxAge / time.Second))})
		admin := lab.AdminConn(t)
		if err := admin.Add(add); err != nil {
			t.Fatalf("add policy: %v", err)
		}
		t.Cleanup(func() {
			if err := lab.AdminConn(t).Del(ldap.NewDelRequest(r.policy, nil)); err != nil {
				t.Errorf("delete policy: %v", err)
			}
		})
	}
	return r
}

// reopenStore closes and opens the data file, as a restart does.
func (r *reminderRig) reopenStore() {
	r.t.Helper()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
	s, err := bolt.Open(r.dbPath)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	r.store = s
}

// user creates a directory user and an active enrollment for phone.
func (r *reminderRig) user(phone, lang string) (username, dn string) {
	r.t.Helper()
	username = r.lab.UniqueName("e2e")
	dn = r.lab.AddUser(r.t, ldaplab.UserSpec{Username: username, Password: "Start#Pass1x", DisplayName: "E2E " + username,
		Mail: username + "@example.test"})
	now := time.Now()
	err := r.store.PutEnrollment(r.t.Context(), enroll.Enrollment{Username: username, Phone: phone, Language: lang,
		State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now})
	if err != nil {
		r.t.Fatal(err)
	}
	return username, dn
}

func (r *reminderRig) audit(username string) []enroll.Event {
	r.t.Helper()
	evs, err := r.store.Audit(r.t.Context(), enroll.AuditFilter{Username: username})
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

// enrolled creates a user enrolled with phone in state, whose password
// expires (expiring) or never does, and returns the username.
func (r *reminderRig) enrolled(phone, lang string, state enroll.State, expiring bool) string {
	r.t.Helper()
	username, dn := r.user(phone, lang)
	if state != enroll.StateActive {
		err := r.store.UpdateEnrollment(context.Background(), username, func(e *enroll.Enrollment) error {
			e.State = state
			return nil
		})
		if err != nil {
			r.t.Fatal(err)
		}
	}
	admin := r.lab.AdminConn(r.t)
	m := ldap.NewModifyRequest(dn, nil)
	switch {
	case r.lab.Dialect == ldaplab.DialectAD && !expiring:
		m.Replace("userAccountControl", []string{"66048"}) // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
	case r.lab.Dialect == ldaplab.DialectOpenLDAP && expiring:
		m.Replace("pwdPolicySubentry", []string{r.policy})
	case r.lab.Dialect == ldaplab.DialectOpenLDAP:
		m.Replace("pwdPolicySubentry", []string{"cn=default,ou=policies," + r.lab.BaseDN}) // no pwdMaxAge
	}
	if len(m.Changes) > 0 {
		if err := admin.Modify(m); err != nil {
			r.t.Fatalf("set up %s: %v", username, err)
		}
	}
	if r.lab.Dialect == ldaplab.DialectOpenLDAP {
		r.setPassword(username, "Fresh#Pass4ab") // ppolicy stamps pwdChangedTime
	}
	return username
}

// setPassword gives username a new password that needs no change.
func (r *reminderRig) setPassword(username, password string) {
	r.t.Helper()
	u, err := r.dir.FindUser(r.t.Context(), username)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.dir.SetPassword(r.t.Context(), u, password, directory.SetPasswordOptions{}); err != nil {
		r.t.Fatalf("set the password of %s: %v", username, err)
	}
}

// expiry reads username's password expiry.
func (r *reminderRig) expiry(username string) directory.PasswordExpiry {
	r.t.Helper()
	got, err := r.dir.PasswordExpiries(r.t.Context(), []string{strings.ToUpper(username)})
	if err != nil {
		r.t.Fatal(err)
	}
	if len(got) != 1 || !strings.EqualFold(got[0].Username, username) {
		r.t.Fatalf("PasswordExpiries(%s) = %v, want one answer", username, got)
	}
	return got[0]
}

func (r *reminderRig) reminders() *expiry.Reminders {
	return expiry.NewReminders(expiry.DefaultRemindersConfig(), r.deps(),
		expiry.ReminderOptions{Now: r.clock.Now, Location: time.UTC, SendFrom: 0, SendUntil: 24 * time.Hour, Every: 20 * time.Millisecond})
}

func (r *reminderRig) deps() expiry.ReminderDeps {
	return expiry.ReminderDeps{Directory: r.dir, Store: r.store, Outbox: outbox.NewQueue(r.store, r.sealer, nil),
		Catalog: r.catalog}
}

func (r *reminderRig) scan() {
	r.t.Helper()
	if err := r.reminders().Scan(r.t.Context()); err != nil {
		r.t.Fatalf("Scan: %v", err)
	}
}

// texts returns username's reminder texts, oldest first, checking that each
// is a low-priority SMS.
func (r *reminderRig) texts(username string) []string {
	r.t.Helper()
	var out []string
	for _, m := range enrolltest.Messages(r.t, r.store) {
		if m.Purpose != "reminder" || !strings.EqualFold(m.Username, username) {
			continue
		}
		if m.Kind != enroll.KindSMS || m.Priority != enroll.PriorityLow || m.Status != enroll.StatusQueued {
			r.t.Errorf("reminder %+v: want a queued low-priority SMS", m)
		}
		out = append(out, enrolltest.Body(r.t, r.sealer, m))
	}
	return out
}

func (r *reminderRig) wantTexts(username string, want ...string) {
	r.t.Helper()
	if got := r.texts(username); !slices.Equal(got, want) {
		r.t.Fatalf("reminders to %s = %q\nwant %q", username, got, want)
	}
}

func (r *reminderRig) reminderOutcomes(username string) []string {
	r.t.Helper()
	var out []string
	for _, ev := range r.audit(username) {
		if ev.Action == "reminder" {
			out = append(out, ev.Outcome)
		}
	}
	return out
}

// forEachDirectory runs fn on Samba AD and on OpenLDAP.
func forEachDirectory(t *testing.T, fn func(t *testing.T, lab *ldaplab.Server)) {
	t.Run("SambaAD", func(t *testing.T) { fn(t, ldaplab.Samba(t)) })
	t.Run("OpenLDAP", func(t *testing.T) { fn(t, ldaplab.OpenLDAP(t)) })
}

// TestExpiryRemindersE2E: one SMS per stage (the smallest due), once across
// restarts, in the user's language; none for opted-out phones, non-active
// enrollments or passwords that never expire; a new password restarts the
// stages.
func TestExpiryRemindersE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newReminderRig(t, lab)
		user := r.enrolled("+12015550141", "en", enroll.StateActive, true)
		french := r.enrolled("+33612345641", "fr", enroll.StateActive, true)
		stopped := r.enrolled("+12015550142", "en", enroll.StateActive, true)
		frozen := r.enrolled("+12015550143", "en", enroll.StateFrozen, true)
		never := r.enrolled("+12015550144", "en", enroll.StateActive, false)
		if err := r.store.SetOptOut(t.Context(), "+12015550142", true, time.Now()); err != nil {
			t.Fatal(err)
		}
		exp := r.expiry(user)
		if exp.Expires.IsZero() || exp.MustChange {
			t.Fatalf("expiring user: %v", exp)
		}
		maxAge := 42 * 24 * time.Hour // Samba's default domain maxPwdAge
		if lab.Dialect == ldaplab.DialectOpenLDAP {
			maxAge = olMaxAge
		}
		if d := time.Until(exp.Expires); d < maxAge-time.Minute || d > maxAge+time.Second {
			t.Fatalf("%v: %s from now, want about %s", exp, d, maxAge)
		}
		if e := r.expiry(never); !e.Expires.IsZero() || e.MustChange {
			t.Fatalf("never-expiring user: %v", e)
		}
		day := 24 * time.Hour
		at := func(left time.Duration) { r.clock.Set(exp.Expires.Add(-left)) }
		everyone := []string{user, french, stopped, frozen, never}
		for _, u := range everyone {
			r.wantTexts(u)
		}

		at(20 * day) // no stage yet
		r.scan()
		for _, u := range everyone {
			r.wantTexts(u)
		}

		// Outside the sending hours Run texts nothing.
		at(13*day - time.Hour)
		night := expiry.NewReminders(expiry.DefaultRemindersConfig(), r.deps(),
			expiry.ReminderOptions{Now: r.clock.Now, Location: time.UTC, Every: 10 * time.Millisecond,
				SendFrom: r.clock.Now().UTC().Sub(r.clock.Now().UTC().Truncate(day)) + time.Hour, SendUntil: 24 * time.Hour})
		ctx, stop := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if err := night.Run(ctx); err != nil {
			t.Fatalf("Run = %v", err)
		}
		stop()
		r.wantTexts(user)

		r.scan() // the 14-day stage
		want := "ReplyReset: your password for " + exp.Username + " expires in 13 days. Change it before then, or text RESET to get a new one."
		r.wantTexts(user, want)
		if got := r.texts(french); len(got) != 1 || !strings.Contains(got[0], "expire dans 13 jours") {
			t.Errorf("French reminder = %q", got)
		}
		r.scan() // again: nothing new
		r.wantTexts(user, want)

		// Restart, then the 7-day stage through Run, as the process runs it.
		r.reopenStore()
		at(6*day - time.Hour)
		ctx, stop = context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.reminders().Run(ctx) }()
		start := time.Now()
		for len(r.texts(user)) < 2 || len(r.texts(french)) < 2 || len(r.reminderOutcomes(stopped)) < 2 { // the whole scan
			if time.Since(start) > 20*time.Second {
				t.Fatalf("no 7-day reminder after 20s: %q", r.texts(user))
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		week := "ReplyReset: your password for " + exp.Username + " expires in 6 days. Change it before then, or text RESET to get a new one."
		r.wantTexts(user, want, week)

		// Two days left: the 3-day stage. Then one day: only the last one,
		// once, across another restart.
		at(2*day - time.Hour)
		r.scan()
		r.reopenStore()
		at(day - time.Hour)
		r.scan()
		r.scan()
		last := "ReplyReset: your password for " + exp.Username + " expires within a day. Change it now, or text RESET to get a new one."
		threeDays := "ReplyReset: your password for " + exp.Username + " expires in 2 days. Change it before then, or text RESET to get a new one."
		r.wantTexts(user, want, week, threeDays, last)

		// Expired: nothing more.
		at(-time.Hour)
		r.scan()
		r.wantTexts(user, want, week, threeDays, last)

		for _, u := range []string{stopped, frozen, never} {
			r.wantTexts(u)
		}
		if got := r.reminderOutcomes(stopped); !slices.Equal(got, []string{"opted_out", "opted_out", "opted_out", "opted_out"}) {
			t.Errorf("audit of the opted-out user = %v, want one opted_out per stage", got)
		}
		if got := r.reminderOutcomes(user); !slices.Equal(got, []string{"ok", "ok", "ok", "ok"}) {
			t.Errorf("audit of %s = %v, want one ok per stage", user, got)
		}
		for _, u := range []string{frozen, never} {
			if got := r.reminderOutcomes(u); len(got) != 0 {
				t.Errorf("audit of %s = %v, want nothing", u, got)
			}
		}

		// A new password: a new expiry date, and the stages start again.
		time.Sleep(1100 * time.Millisecond) // pwdChangedTime has whole seconds
		r.setPassword(user, "Renewed#Pass8cd")
		renewed := r.expiry(user)
		if !renewed.Expires.After(exp.Expires) {
			t.Fatalf("expiry after a new password = %v, want after %v", renewed, exp)
		}
		r.clock.Set(renewed.Expires.Add(-13*day + time.Hour))
		r.scan()
		if got := r.texts(user); len(got) != 5 || got[4] != want {
			t.Errorf("after a new password: %q, want the 14-day stage again", got)
		}
	})
}
