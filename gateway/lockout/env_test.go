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
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
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
	sent  []notify.Mail
	fail  func(to string) bool
	tries int
}

func (m *fakeMailer) Send(_ context.Context, mail notify.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries++
	if m.fail != nil && m.fail(mail.To) {
		return errors.New("451 try again later")
	}
	m.sent = append(m.sent, mail)
	return nil
}

func (m *fakeMailer) mails() []notify.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

// watchEnv is one data file, directory and mail setup; watch() starts a
// watch on it, as a restart of the process would.
type watchEnv struct {
	t        *testing.T
	path     string
	store    *bolt.Store
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
	s, err := bolt.Open(e.path)
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

// watchOn is watch, on store, with wake.
func (e *watchEnv) watchOn(store lockout.Store, wake func()) *lockout.Watch {
	var mailer notify.Mailer = e.mailer
	if e.noMail {
		mailer = nil
	}
	alerts := notify.NewAdminAlerts(e.admins, mailer, e.mails, notify.AdminAlertOptions{Language: e.opt.Language,
		Location: e.opt.Location})
	return lockout.NewWatch(e.cfg, lockout.Deps{Scanner: e.scan, Store: store,
		Outbox: outbox.NewQueue(e.store, e.sealer, wake), Catalog: e.catalog, Alerts: alerts}, e.opt)
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
	return testkit.LockoutTexts(e.t, e.store, e.sealer, username)
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
