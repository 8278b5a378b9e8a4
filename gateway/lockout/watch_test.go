package lockout_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/templates"
)

// Unit tests of the lockout watch: the real bbolt store, a scripted
// scanner and a fake clock, so that storm windows and restarts are exact.

// scriptScanner is a directory whose lockouts the test sets. Its cursor is
// a change counter: an incremental scan reports the lockouts made since,
// a full one every account locked now.
type scriptScanner struct {
	mu     sync.Mutex
	seq    int
	locked map[string]scriptLock
	fail   int  // the next fail scans fail
	again  bool // incremental scans report every lockout again (allowed by the contract)
	calls  []scanCall
}

type scriptLock struct {
	ev  directory.LockoutEvent
	seq int
}

type scanCall struct {
	cursor string
	full   bool
}

func newScriptScanner() *scriptScanner {
	return &scriptScanner{locked: map[string]scriptLock{}}
}

func (s *scriptScanner) lock(username string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	u := directory.User{DN: "uid=" + username + ",ou=people,dc=example,dc=test", Username: username,
		DisplayName: "User " + strings.ToUpper(username), Locked: true, LockoutTime: at}
	s.locked[username] = scriptLock{ev: directory.LockoutEvent{User: u, LockedAt: at}, seq: s.seq}
}

func (s *scriptScanner) unlock(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	delete(s.locked, username)
}

func (s *scriptScanner) failNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

func (s *scriptScanner) ScanLockouts(_ context.Context, cursor []byte, full bool) ([]directory.LockoutEvent, []byte, directory.ScanStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, scanCall{cursor: string(cursor), full: full})
	if s.fail > 0 {
		s.fail--
		return nil, cursor, directory.ScanStats{}, fmt.Errorf("scripted failure: %w", directory.ErrUnavailable)
	}
	since := 0
	if cursor == nil {
		full = true
	} else if n, err := strconv.Atoi(string(cursor)); err == nil {
		since = n
	}
	var evs []directory.LockoutEvent
	for _, l := range s.locked {
		if full || s.again || l.seq > since {
			evs = append(evs, l.ev)
		}
	}
	slices.SortFunc(evs, func(a, b directory.LockoutEvent) int { return strings.Compare(a.User.Username, b.User.Username) })
	return evs, []byte(strconv.Itoa(s.seq)), directory.ScanStats{Full: full, EntriesRead: len(evs)}, nil
}

func (s *scriptScanner) lastCall() scanCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[len(s.calls)-1]
}

type fakeAdmins struct {
	mu    sync.Mutex
	users []directory.User
	err   error
}

func (a *fakeAdmins) AdminContacts(context.Context) ([]directory.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.users), a.err
}

// fakeMailer records mails; fail, when set, refuses the addresses it
// returns true for.
type fakeMailer struct {
	mu    sync.Mutex
	sent  []enroll.Mail
	fail  func(to string) bool
	tries int
}

func (m *fakeMailer) Send(_ context.Context, mail enroll.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries++
	if m.fail != nil && m.fail(mail.To) {
		return errors.New("451 try again later")
	}
	m.sent = append(m.sent, mail)
	return nil
}

func (m *fakeMailer) mails() []enroll.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

// watchEnv is one data file, directory and mail setup; watch() starts a
// watch on it, as a restart of the process would.
type watchEnv struct {
	t        *testing.T
	path     string
	store    *enroll.BoltStore
	sealer   *enroll.Sealer
	catalog  *templates.Catalog
	mails    *templates.Mails
	clock    *enrolltest.Clock
	scan     *scriptScanner
	admins   *fakeAdmins
	mailer   *fakeMailer
	cfg      lockout.Config
	opt      lockout.Options
	noMail   bool
	notified atomic.Int32
	phones   int // numbers handed out by lockMany
}

// zone is the "server's" time zone in these tests: UTC+2, so that a
// wrong zone shows in the texted time.
var zone = time.FixedZone("UTC+2", 2*3600)

func newWatchEnv(t *testing.T) *watchEnv {
	t.Helper()
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sealer, err := enroll.LoadOrCreateKey(filepath.Join(dir, "replyreset.key"))
	if err != nil {
		t.Fatal(err)
	}
	e := &watchEnv{t: t, path: filepath.Join(dir, "replyreset.db"), sealer: sealer,
		catalog: catalog, mails: mails,
		clock: enrolltest.NewClock(time.Date(2026, 3, 12, 10, 42, 30, 0, time.UTC)),
		scan:  newScriptScanner(),
		admins: &fakeAdmins{users: []directory.User{
			{Username: "helpdeskadmin", Mail: "helpdesk@example.test"},
			{Username: "tier2", Mail: "Tier 2 <TIER2@example.test>"},
			{Username: "alias", Mail: "tier2@example.test"}, // the same mailbox: one mail
			{Username: "nomail"},
		}},
		mailer: &fakeMailer{},
		cfg:    lockout.Config{Enabled: true, PollInterval: 30 * time.Second, StormThreshold: 10, StormWindow: 5 * time.Minute},
	}
	e.opt = lockout.Options{Now: e.clock.Now, Location: zone}
	e.open()
	t.Cleanup(func() { e.store.Close() })
	return e
}

func (e *watchEnv) open() {
	e.t.Helper()
	s, err := enroll.OpenBolt(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
}

// reopen closes and opens the data file, as a restart does.
func (e *watchEnv) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *watchEnv) watch() *lockout.Watch {
	return e.watchOn(e.store, func() { e.notified.Add(1) })
}

// watchOn is watch, on store, with notify.
func (e *watchEnv) watchOn(store lockout.Store, notify func()) *lockout.Watch {
	var mailer enroll.Mailer = e.mailer
	if e.noMail {
		mailer = nil
	}
	alerts := gateway.NewAdminAlerts(e.admins, mailer, e.mails, gateway.AdminAlertOptions{Language: e.opt.Language,
		Location: e.opt.Location})
	return lockout.NewWatch(e.cfg, lockout.Deps{Scanner: e.scan, Store: store, Sealer: e.sealer, Catalog: e.catalog,
		Alerts: alerts, Notify: notify}, e.opt)
}

func (e *watchEnv) poll(w *lockout.Watch) {
	e.t.Helper()
	if err := w.Poll(e.t.Context()); err != nil {
		e.t.Fatalf("Poll: %v", err)
	}
}

// enroll gives username an enrollment in state with phone.
func (e *watchEnv) enroll(username, phone, lang string, state enroll.State) {
	e.t.Helper()
	now := e.clock.Now()
	err := e.store.PutEnrollment(e.t.Context(), enroll.Enrollment{Username: username, Phone: phone, Language: lang,
		State: state, Method: "sms", CreatedAt: now, UpdatedAt: now, VerifiedAt: now})
	if err != nil {
		e.t.Fatal(err)
	}
}

// texts returns the lockout texts queued for username, oldest first.
func (e *watchEnv) texts(username string) []string {
	e.t.Helper()
	return lockoutTexts(e.t, e.store, e.sealer, username)
}

func lockoutTexts(t *testing.T, store *enroll.BoltStore, sealer *enroll.Sealer, username string) []string {
	t.Helper()
	msgs, err := store.Messages(t.Context(), enroll.OutboxFilter{Username: username})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range slices.Backward(msgs) {
		if m.Purpose != "lockout" {
			continue
		}
		if m.Kind != enroll.KindSMS || m.Priority != enroll.PriorityHigh || m.Status != enroll.StatusQueued {
			t.Errorf("lockout message %+v: want a queued high-priority SMS", m)
		}
		body, err := sealer.Open(m.Sealed, "outbox")
		if err != nil {
			t.Fatalf("open message %d: %v", m.ID, err)
		}
		out = append(out, string(body))
	}
	return out
}

func (e *watchEnv) allTexts() int {
	e.t.Helper()
	msgs, err := e.store.Messages(e.t.Context(), enroll.OutboxFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(msgs)
}

// audit returns the events of action (all when "") for username (all when "").
func (e *watchEnv) audit(action, username string) []enroll.Event {
	e.t.Helper()
	evs, err := e.store.Audit(e.t.Context(), enroll.AuditFilter{Action: action, Username: username})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *watchEnv) wantAudit(action, username, outcome string, n int) {
	e.t.Helper()
	evs := e.audit(action, username)
	got := 0
	for _, ev := range evs {
		if ev.Outcome == outcome {
			got++
		}
	}
	if got != n || len(evs) != n {
		e.t.Errorf("audit %s for %q: %d events (%d with outcome %s), want %d with outcome %s: %+v",
			action, username, len(evs), got, outcome, n, outcome, evs)
	}
}

func (e *watchEnv) alertText(lang, username string, lockedAt time.Time) string {
	return e.catalog.Text(lang, "sms.lockout.alert", map[string]string{"username": username,
		"time": lockedAt.In(zone).Format("15:04")})
}

func TestLockoutAlertOncePerEvent(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	e.enroll("zlefevre", "+33612345678", "fr", enroll.StateActive)
	w := e.watch()
	e.poll(w) // first poll: a full sweep, nothing locked
	if c := e.scan.lastCall(); !c.full || c.cursor != "" {
		t.Errorf("first scan = %+v, want a full sweep without cursor", c)
	}

	lockedAt := e.clock.Advance(10 * time.Second).Add(-3 * time.Second)
	e.scan.lock("jdoe", lockedAt)
	e.scan.lock("zlefevre", lockedAt)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if c := e.scan.lastCall(); c.full || c.cursor != "0" {
		t.Errorf("second scan = %+v, want incremental from the stored cursor", c)
	}
	if got, want := e.texts("jdoe"), []string{e.alertText("en", "jdoe", lockedAt)}; !slices.Equal(got, want) {
		t.Fatalf("texts to jdoe = %q, want %q", got, want)
	}
	if !strings.Contains(e.texts("jdoe")[0], "at 12:42.") {
		t.Errorf("the time is not HH:MM in the server's zone: %q", e.texts("jdoe")[0])
	}
	if got, want := e.texts("zlefevre"), []string{e.alertText("fr", "zlefevre", lockedAt)}; !slices.Equal(got, want) {
		t.Fatalf("texts to zlefevre = %q, want %q (in French)", got, want)
	}
	if n := e.notified.Load(); n < 1 {
		t.Error("the outbox worker was not woken")
	}
	e.wantAudit("lockout_alert", "jdoe", "ok", 1)
	if ev := e.audit("lockout_alert", "jdoe")[0]; ev.Phone != "+12015550121" || ev.Actor != "system" {
		t.Errorf("audit = %+v", ev)
	}

	// Still locked: later polls, and a full sweep, do not text again.
	for range 3 {
		e.clock.Advance(30 * time.Second)
		e.poll(w)
	}
	e.clock.Advance(time.Hour)
	e.poll(w)
	if c := e.scan.lastCall(); !c.full {
		t.Errorf("scan after an hour = %+v, want a full sweep", c)
	}
	if n := len(e.texts("jdoe")); n != 1 {
		t.Fatalf("%d texts to jdoe after more polls, want 1", n)
	}
	if n := len(e.mailer.mails()); n != 0 {
		t.Errorf("%d admin mails for two lockouts, want none", n)
	}
}

// TestLockoutDefaultZoneIsLocal: without Location, {time} is the server's
// local time.
func TestLockoutDefaultZoneIsLocal(t *testing.T) {
	e := newWatchEnv(t)
	e.opt.Location = nil
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	lockedAt := e.clock.Now().Add(-time.Minute)
	e.scan.lock("jdoe", lockedAt)
	e.poll(e.watch())
	want := "locked at " + lockedAt.In(time.Local).Format("15:04") + "."
	if got := e.texts("jdoe"); len(got) != 1 || !strings.Contains(got[0], want) {
		t.Fatalf("texts = %q, want one with %q", got, want)
	}
}

// TestLockoutRestartNoDuplicate: a new watch on the reopened data file
// resumes from the stored cursor and does not text again, even when the
// scanner reports the lockout again or a full sweep runs.
func TestLockoutRestartNoDuplicate(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	e.poll(w)
	lockedAt := e.clock.Now()
	e.scan.lock("jdoe", lockedAt)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := len(e.texts("jdoe")); n != 1 {
		t.Fatalf("%d texts before the restart, want 1", n)
	}

	e.reopen()
	e.scan.again = true // a scanner may report an event again
	w = e.watch()
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if c := e.scan.lastCall(); c.full || c.cursor != "1" {
		t.Errorf("first scan after restart = %+v, want incremental from cursor 1", c)
	}
	e.reopen()
	if err := e.store.SetMonitorCursor(t.Context(), "lockout", nil); err != nil {
		t.Fatal(err)
	}
	w = e.watch()
	e.poll(w)
	if c := e.scan.lastCall(); !c.full {
		t.Errorf("scan without cursor = %+v, want a full sweep", c)
	}
	if n := len(e.texts("jdoe")); n != 1 {
		t.Fatalf("%d texts after restarts, want 1", n)
	}
	e.wantAudit("lockout_alert", "jdoe", "ok", 1)
}

// TestLockoutRelockIsNewEvent: the event is (account, lockout time): the
// same account locked again, after an unlock or an expired lockout, is
// texted again; an expired lockout itself is not reported by the scanner
// and so never texted.
func TestLockoutRelockIsNewEvent(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	first := e.clock.Now().Add(-time.Minute)
	e.scan.lock("jdoe", first)
	e.poll(w)
	e.scan.unlock("jdoe") // expired or unlocked: no longer reported
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	second := e.clock.Advance(20 * time.Minute)
	e.scan.lock("jdoe", second)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	want := []string{e.alertText("en", "jdoe", first), e.alertText("en", "jdoe", second)}
	if got := e.texts("jdoe"); !slices.Equal(got, want) {
		t.Fatalf("texts = %q, want %q", got, want)
	}
}

func TestLockoutWhoIsNotTexted(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("frozen", "+12015550122", "en", enroll.StateFrozen)
	e.enroll("pending", "", "en", enroll.StatePending)
	e.enroll("gone", "+12015550123", "en", enroll.StateDeactivated)
	e.enroll("stopped", "+12015550124", "en", enroll.StateActive)
	if err := e.store.SetOptOut(t.Context(), "+12015550124", true, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.enroll("old", "+12015550125", "en", enroll.StateActive)
	w := e.watch()
	now := e.clock.Now()
	for _, u := range []string{"stranger", "frozen", "pending", "gone", "stopped"} {
		e.scan.lock(u, now.Add(-time.Minute))
	}
	e.scan.lock("old", now.Add(-2*time.Hour)) // locked before the watch ran: not news
	e.poll(w)
	if n := e.allTexts(); n != 0 {
		t.Fatalf("%d messages queued, want none", n)
	}
	e.wantAudit("lockout", "stranger", "not_enrolled", 1)
	e.wantAudit("lockout", "frozen", "not_active", 1)
	e.wantAudit("lockout", "pending", "not_active", 1)
	e.wantAudit("lockout", "gone", "not_active", 1)
	e.wantAudit("lockout_alert", "stopped", "opted_out", 1)
	e.wantAudit("lockout", "old", "stale", 1)
	e.poll(w)
	if n := len(e.audit("", "")); n != 6 {
		t.Errorf("%d audit events after a second poll, want the same 6", n)
	}
}

// TestLockoutClockSkew: a lockout time ahead of the gateway's clock is
// news, and texted with the directory's time.
func TestLockoutClockSkew(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	ahead := e.clock.Now().Add(3 * time.Minute)
	e.scan.lock("jdoe", ahead)
	e.poll(e.watch())
	if got, want := e.texts("jdoe"), []string{e.alertText("en", "jdoe", ahead)}; !slices.Equal(got, want) {
		t.Fatalf("texts = %q, want %q", got, want)
	}
}

func lockMany(e *watchEnv, prefix string, n int, at time.Time) []string {
	var names []string
	for i := range n {
		u := fmt.Sprintf("%s%02d", prefix, i)
		e.phones++
		e.enroll(u, fmt.Sprintf("+1201555%04d", 1000+e.phones), "en", enroll.StateActive)
		e.scan.lock(u, at.Add(time.Duration(i)*time.Second))
		names = append(names, u)
	}
	return names
}

func (e *watchEnv) textCount(users []string) int {
	n := 0
	for _, u := range users {
		n += len(e.texts(u))
	}
	return n
}

// TestLockoutStorm: 12 accounts locked together with a threshold of 10
// give one mail to each admin listing them, no text; lockouts during the
// storm are held back too; once the window is quiet, texts resume.
func TestLockoutStorm(t *testing.T) {
	e := newWatchEnv(t)
	w := e.watch()
	e.poll(w)
	start := e.clock.Now()
	users := lockMany(e, "s", 12, start.Add(-20*time.Second))
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(users); n != 0 {
		t.Fatalf("%d texts during a storm, want none", n)
	}
	mails := e.mailer.mails()
	if len(mails) != 2 {
		t.Fatalf("%d admin mails, want 2 (one per distinct admin address): %+v", len(mails), mails)
	}
	to := []string{mails[0].To, mails[1].To}
	slices.Sort(to)
	if !slices.Equal(to, []string{"Tier 2 <TIER2@example.test>", "helpdesk@example.test"}) {
		t.Errorf("mails went to %q", to)
	}
	m := mails[0]
	if !strings.Contains(m.Subject, "12 accounts") || !strings.Contains(m.Subject, "5 minutes") {
		t.Errorf("subject = %q", m.Subject)
	}
	for _, u := range users {
		line := u + " (User " + strings.ToUpper(u) + "), "
		if !strings.Contains(m.Text, line) || !strings.Contains(m.HTML, "<li>"+line) {
			t.Errorf("the mail does not list %s", u)
		}
	}
	e.wantAudit("lockout_storm", "", "started", 1)
	e.wantAudit("lockout_storm_mail", "", "ok", 1)
	if n := len(e.audit("lockout_storm_suppressed", "")); n != 12 {
		t.Errorf("%d lockout_storm_suppressed events, want 12", n)
	}

	// Three minutes on, another lockout: held back, no second mail.
	late := e.clock.Advance(3 * time.Minute)
	lateUsers := lockMany(e, "late", 1, late.Add(-time.Second))
	e.poll(w)
	if n := e.textCount(lateUsers); n != 0 {
		t.Errorf("a lockout during the storm was texted")
	}
	if n := len(e.mailer.mails()); n != 2 {
		t.Errorf("%d admin mails after a later lockout, want still 2", n)
	}
	e.wantAudit("lockout_storm_suppressed", lateUsers[0], "suppressed", 1)

	// Quiet for the window since the last lockout: the storm is over.
	e.clock.Advance(4*time.Minute + 58*time.Second)
	e.poll(w)
	e.wantAudit("lockout_storm_ended", "", "ok", 0)
	e.clock.Advance(2 * time.Second)
	e.poll(w)
	e.wantAudit("lockout_storm_ended", "", "ok", 1)
	after := lockMany(e, "after", 1, e.clock.Now())
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(after); n != 1 {
		t.Fatalf("%d texts after the storm, want 1", n)
	}
	if n := e.textCount(users); n != 0 {
		t.Errorf("held-back lockouts were texted after the storm")
	}
}

// TestLockoutStormAcrossPolls: the threshold counts lockouts within the
// window across scans; the one that crosses it starts the storm.
func TestLockoutStormAcrossPolls(t *testing.T) {
	e := newWatchEnv(t)
	w := e.watch()
	e.poll(w)
	t0 := e.clock.Now()
	first := lockMany(e, "a", 10, t0)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(first); n != 10 {
		t.Fatalf("%d texts for 10 lockouts (threshold 10), want 10", n)
	}
	e.wantAudit("lockout_storm", "", "started", 0)
	// Outside the window of the first: no storm.
	e.clock.Advance(5 * time.Minute)
	outside := lockMany(e, "b", 1, e.clock.Now().Add(-time.Second))
	e.poll(w)
	if n := e.textCount(outside); n != 1 {
		t.Fatalf("a lockout more than a window after the others: %d texts, want 1", n)
	}
	// Ten more within the window of that one: the tenth crosses the threshold.
	e.clock.Advance(time.Minute)
	second := lockMany(e, "c", 10, e.clock.Now().Add(-15*time.Second))
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(second); n != 0 {
		t.Errorf("%d texts for lockouts of the scan that started the storm, want 0", n)
	}
	e.wantAudit("lockout_storm", "", "started", 1)
	mails := e.mailer.mails()
	if len(mails) != 2 || !strings.Contains(mails[0].Subject, "11 accounts") || !strings.Contains(mails[0].Text, outside[0]) {
		t.Fatalf("mails = %+v, want 2 listing 11 accounts", mails)
	}
}

// TestLockoutStormSurvivesRestart: a restart during a storm neither texts
// the lockouts that follow nor mails the admins again.
func TestLockoutStormSurvivesRestart(t *testing.T) {
	e := newWatchEnv(t)
	w := e.watch()
	lockMany(e, "s", 11, e.clock.Now().Add(-time.Minute))
	e.poll(w)
	e.wantAudit("lockout_storm", "", "started", 1)
	e.reopen()
	w = e.watch()
	e.clock.Advance(time.Minute)
	more := lockMany(e, "m", 2, e.clock.Now().Add(-time.Second))
	e.poll(w)
	if n := e.textCount(more); n != 0 {
		t.Errorf("%d texts after a restart during a storm, want 0", n)
	}
	if n := len(e.mailer.mails()); n != 2 {
		t.Errorf("%d admin mails, want 2 (one storm)", n)
	}
	e.wantAudit("lockout_storm", "", "started", 1)
}

// TestLockoutStormMailRetries: an admin the relay refused is mailed at
// the next poll, the others are not mailed twice; with mail off the storm
// is audited as such.
func TestLockoutStormMailRetries(t *testing.T) {
	e := newWatchEnv(t)
	refuse := atomic.Bool{}
	refuse.Store(true)
	e.mailer.fail = func(to string) bool { return refuse.Load() && strings.Contains(to, "helpdesk") }
	w := e.watch()
	lockMany(e, "s", 11, e.clock.Now().Add(-time.Minute))
	e.poll(w)
	if n := len(e.mailer.mails()); n != 1 {
		t.Fatalf("%d mails sent, want 1 (the other refused)", n)
	}
	e.wantAudit("lockout_storm_mail", "", "ok", 0)
	refuse.Store(false)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	mails := e.mailer.mails()
	if len(mails) != 2 || mails[1].To != "helpdesk@example.test" {
		t.Fatalf("mails = %d (%+v), want the refused admin mailed once more", len(mails), mails)
	}
	e.wantAudit("lockout_storm_mail", "", "ok", 1)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := len(e.mailer.mails()); n != 2 {
		t.Errorf("%d mails after the mail went out, want 2", n)
	}

	off := newWatchEnv(t)
	off.noMail = true
	w = off.watch()
	users := lockMany(off, "s", 11, off.clock.Now().Add(-time.Minute))
	off.poll(w)
	off.wantAudit("lockout_storm_mail", "", "mail_off", 1)
	if n := off.textCount(users); n != 0 {
		t.Errorf("%d texts in a storm with mail off, want 0", n)
	}
}

// TestLockoutScanErrorRetried: a failed scan changes nothing and is tried
// again; Run keeps going (no crash, no busy loop) until its context ends.
func TestLockoutScanErrorRetried(t *testing.T) {
	e := newWatchEnv(t)
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	e.scan.lock("jdoe", e.clock.Now())
	e.scan.failNext(1)
	if err := w.Poll(t.Context()); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Poll with a failing scan = %v, want ErrUnavailable", err)
	}
	if n := e.allTexts(); n != 0 {
		t.Fatalf("%d texts after a failed scan", n)
	}
	cursor, err := e.store.MonitorCursor(t.Context(), "lockout")
	if err != nil || cursor != nil {
		t.Fatalf("cursor after a failed scan = %q, %v; want none", cursor, err)
	}

	e.cfg.PollInterval = 20 * time.Millisecond
	w = e.watch()
	e.scan.failNext(3)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	eventually(t, "the alert after three failed scans", func() bool {
		msgs, err := e.store.Messages(t.Context(), enroll.OutboxFilter{Username: "jdoe"})
		return err == nil && len(msgs) == 1
	})
	if err := w.Run(t.Context()); err == nil {
		t.Error("a second Run at the same time did not fail")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil when its context ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	e.scan.mu.Lock()
	calls := len(e.scan.calls)
	e.scan.mu.Unlock()
	if calls < 5 {
		t.Errorf("%d scans, want the failures retried", calls)
	}

	e.cfg.Enabled = false
	if err := e.watch().Run(t.Context()); err != nil {
		t.Errorf("Run with lockout.enabled off = %v, want nil at once", err)
	}
}

// failingRecords fails RecordLockout for one username, once.
type failingRecords struct {
	*enroll.BoltStore
	fail atomic.Pointer[string]
}

func (f *failingRecords) RecordLockout(ctx context.Context, username string, lockedAt, now time.Time) (bool, error) {
	if p := f.fail.Load(); p != nil && *p == username {
		f.fail.Store(nil)
		return false, errors.New("disk full")
	}
	return f.BoltStore.RecordLockout(ctx, username, lockedAt, now)
}

// TestLockoutStoreErrorKeepsCursor: when an event cannot be recorded, the
// cursor stays, the events recorded before it are still texted, and the
// next poll texts the rest, each once.
func TestLockoutStoreErrorKeepsCursor(t *testing.T) {
	e := newWatchEnv(t)
	store := &failingRecords{BoltStore: e.store}
	w := e.watchOn(store, nil)
	e.poll(w)
	for _, u := range []string{"a", "b", "c"} {
		e.enroll(u, "+1201555013"+string(u[0]-'a'+'1'), "en", enroll.StateActive)
		e.scan.lock(u, e.clock.Now())
	}
	bad := "b"
	store.fail.Store(&bad)
	if err := w.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Poll = %v, want the store error", err)
	}
	if got := []int{len(e.texts("a")), len(e.texts("b")), len(e.texts("c"))}; !slices.Equal(got, []int{1, 0, 0}) {
		t.Fatalf("texts after the failure = %v, want [1 0 0]", got)
	}
	if cursor, _ := e.store.MonitorCursor(t.Context(), "lockout"); string(cursor) != "0" {
		t.Errorf("cursor = %q, want the one before the failed poll", cursor)
	}
	e.poll(w)
	if got := []int{len(e.texts("a")), len(e.texts("b")), len(e.texts("c"))}; !slices.Equal(got, []int{1, 1, 1}) {
		t.Fatalf("texts after the retry = %v, want [1 1 1]", got)
	}
}

// TestLockoutPurgesOldEvents: the full sweep forgets events past the
// retention, which are never news again.
func TestLockoutPurgesOldEvents(t *testing.T) {
	e := newWatchEnv(t)
	e.opt.MaxAge = 365 * 24 * time.Hour
	e.enroll("jdoe", "+12015550121", "en", enroll.StateActive)
	w := e.watch()
	e.scan.lock("jdoe", e.clock.Now())
	e.poll(w)
	e.clock.Advance(enroll.LockoutRetention + time.Hour)
	e.poll(w) // a full sweep: the event is purged, and too old to be news
	if n, err := e.store.PurgeLockouts(t.Context(), e.clock.Now()); err != nil || n != 0 {
		t.Errorf("PurgeLockouts after the watch's sweep = %d, %v; want 0 left", n, err)
	}
	if n := len(e.texts("jdoe")); n != 1 {
		t.Errorf("%d texts, want 1", n)
	}
}

// eventually waits for cond, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
