package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// The held-message recovery on the real parts: a real directory (Samba AD
// and OpenLDAP), the real bbolt store (etcd for the race of two nodes),
// the outbox sending through twilio-go to the fake Twilio. A RESET that
// died between holding its message and releasing it is played by writing
// the message held as the webhook does (and, for a reset that got that
// far, setting its password), then not releasing it.

// testGrace is the recovery's grace in these tests; the recovery's clock
// runs that far ahead, so a message held now is the recovery's at once.
const testGrace = 90 * time.Second

type heldEnv struct {
	t       *testing.T
	lab     *ldaplab.Server
	dir     *directory.Client
	rig     *testkit.OutboxRig
	queue   *outbox.Queue
	catalog *templates.Catalog
	logs    *testkit.LockedBuffer
}

func newHeldEnv(t *testing.T, lab *ldaplab.Server) *heldEnv {
	t.Helper()
	cfg := lab.DirectoryConfig()
	cfg.Timeout = 3 * time.Second
	dir, err := directory.New(cfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	rig := testkit.NewOutboxRig(t)
	return &heldEnv{t: t, lab: lab, dir: dir, rig: rig, queue: outbox.NewQueue(rig.Store, rig.Sealer, nil), catalog: catalog,
		logs: &testkit.LockedBuffer{}}
}

// recovery is one node's recovery on store, its clock testGrace ahead.
func (e *heldEnv) recovery(store gateway.HeldStore, queue gateway.HeldQueue, dir gateway.HeldDirectory) *gateway.HeldRecovery {
	e.t.Helper()
	return e.recoveryOpt(store, queue, dir, gateway.HeldRecoveryOptions{})
}

// recoveryOpt is recovery with opt (its zero Grace and Now: the tests').
func (e *heldEnv) recoveryOpt(store gateway.HeldStore, queue gateway.HeldQueue, dir gateway.HeldDirectory, opt gateway.HeldRecoveryOptions) *gateway.HeldRecovery {
	e.t.Helper()
	if opt.Grace == 0 {
		opt.Grace = testGrace
	}
	if opt.Now == nil {
		opt.Now = func() time.Time { return time.Now().Add(testGrace + time.Second) }
	}
	r, err := gateway.NewHeldRecovery(gateway.HeldRecoveryDeps{Store: store, Queue: queue, Directory: dir, Catalog: e.catalog,
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// user is a directory user whose password was reset once before (so that
// the directory has a set time), and that reset's time is past by more
// than the skew: a message held from now on is newer.
func (e *heldEnv) user() (directory.User, string) {
	e.t.Helper()
	name := e.lab.UniqueName("held")
	dn := e.lab.AddUser(e.t, ldaplab.UserSpec{Username: name, Password: "Start#Pass1x", DisplayName: "Held " + name})
	u, err := e.dir.FindUser(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.dir.SetPassword(e.t.Context(), u, "Earlier#Reset4q", directory.SetPasswordOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.pastSkew(u)
	return u, dn
}

// pastSkew waits until the last setting of u's password lies more than
// the skew behind: a message held from then on is newer than it.
func (e *heldEnv) pastSkew(u directory.User) {
	e.t.Helper()
	at, err := e.dir.PasswordSetAt(e.t.Context(), u.Username)
	if err != nil {
		e.t.Fatal(err)
	}
	time.Sleep(time.Until(at.Add(gateway.HeldClockSkew + time.Second)))
}

// hold writes the RESET message of u, carrying password, held, as the
// webhook does.
func (e *heldEnv) hold(q *outbox.Queue, u directory.User, phone, lang, password string) uint64 {
	e.t.Helper()
	return e.holdAt(q, u, phone, lang, password, time.Now())
}

// holdAt is hold, the message written at at.
func (e *heldEnv) holdAt(q *outbox.Queue, u directory.User, phone, lang, password string, at time.Time) uint64 {
	e.t.Helper()
	body := e.catalog.Text(lang, "sms.reset.ok_must_change", map[string]string{"username": u.Username, "password": password})
	id, err := q.Enqueue(e.t.Context(), enroll.OutboundMessage{Kind: enroll.KindSMS, To: phone, Language: lang,
		Purpose: gateway.PasswordPurpose, Username: u.Username, Priority: enroll.PriorityHigh, Status: enroll.StatusHeld,
		Prepaid: true, CreatedAt: at}, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// setPassword is the directory write of the RESET that then died.
func (e *heldEnv) setPassword(u directory.User, password string) {
	e.t.Helper()
	if err := e.dir.SetPassword(e.t.Context(), u, password, directory.SetPasswordOptions{MustChange: true}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *heldEnv) pass(r *gateway.HeldRecovery) {
	e.t.Helper()
	if err := r.Pass(e.t.Context()); err != nil {
		e.t.Fatalf("Pass: %v", err)
	}
}

// body opens message id of store.
func (e *heldEnv) body(m enroll.OutboundMessage) string {
	e.t.Helper()
	b, err := e.rig.Sealer.Open(m.Sealed, outbox.SealPurpose)
	if err != nil {
		e.t.Fatalf("open message %d: %v", m.ID, err)
	}
	return string(b)
}

// sent runs the outbox until message id is sent and returns what the fake
// Twilio received for phone.
func (e *heldEnv) sent(id uint64, phone string) []string {
	e.t.Helper()
	_, stop := e.rig.Start(outbox.Options{})
	e.rig.WaitStatus(id, enroll.StatusSent)
	stop()
	var out []string
	for _, res := range e.rig.Fake.Resources() {
		if res.To == phone {
			out = append(out, res.Body)
		}
	}
	return out
}

// heldAudit returns the recovery's audit events of username, and fails
// the test for one that holds secret.
func heldAudit(t *testing.T, store enroll.AuditStore, username, secret string) []enroll.Event {
	t.Helper()
	evs, err := store.Audit(t.Context(), enroll.AuditFilter{Username: username})
	if err != nil {
		t.Fatal(err)
	}
	var out []enroll.Event
	for _, ev := range evs {
		if secret != "" && strings.Contains(fmt.Sprintf("%+v", ev), secret) {
			t.Errorf("audit event %+v holds the password", ev)
		}
		if strings.HasPrefix(ev.Action, "reset_held_") {
			out = append(out, ev)
		}
	}
	return out
}

func wantActions(t *testing.T, evs []enroll.Event, want ...string) {
	t.Helper()
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Action)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("recovery audit = %v (%+v), want %v", got, evs, want)
	}
}

// TestHeldRecoverySendsASetPassword: the password was set, the node died
// before the release: the next pass sends the message, once, and records
// the password's expiry check as the RESET would have.
func TestHeldRecoverySendsASetPassword(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		e := newHeldEnv(t, lab)
		u, dn := e.user()
		const phone, password = "+15550103001", "Held#Set9pwq"
		id := e.hold(e.queue, u, phone, "en", password)
		e.setPassword(u, password)
		const ttl = 3 * time.Hour
		r := e.recoveryOpt(e.rig.Store, e.queue, e.dir, gateway.HeldRecoveryOptions{SMSPasswordTTL: ttl})
		sentAt := time.Now().Add(testGrace) // the recovery's clock
		e.pass(r)
		e.pass(r) // a second pass finds nothing to do
		check, err := e.rig.Store.SMSPasswordCheck(t.Context(), u.Username)
		if err != nil || !strings.EqualFold(check.DN, u.DN) || check.Due.Before(sentAt.Add(ttl)) || check.Due.After(sentAt.Add(ttl+time.Minute)) {
			t.Errorf("SMS password check = %+v, %v; want one for %s due %s after the pass", check, err, u.DN, ttl)
		}
		got := e.sent(id, phone)
		if len(got) != 1 || !strings.Contains(got[0], password) {
			t.Fatalf("the fake Twilio received %q for %s, want one SMS with the password", got, phone)
		}
		if want := e.catalog.Text("en", "sms.reset.ok_must_change", map[string]string{"username": u.Username, "password": password}); got[0] != want {
			t.Errorf("sent %q, want the message as held: %q", got[0], want)
		}
		wantActions(t, heldAudit(t, e.rig.Store, u.Username, password), enroll.ActionHeldSent)
		var be *ldaplab.BindError
		if err := lab.BindErr(dn, password); !errors.As(err, &be) || be.Outcome() != "must-change" {
			t.Errorf("bind with the sent password: %v, want the must-change refusal (the password is in force)", err)
		}
	})
}

// TestHeldRecoveryTellsTheUserWhenNothingWasSet: the node died before the
// password was set: the user receives sms.reset.incomplete in the
// message's language, and the password never leaves.
func TestHeldRecoveryTellsTheUserWhenNothingWasSet(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		e := newHeldEnv(t, lab)
		u, dn := e.user()
		const phone, password = "+15550103002", "Never#Set9pwq"
		id := e.hold(e.queue, u, phone, "fr", password)
		e.pass(e.recovery(e.rig.Store, e.queue, e.dir))
		if m := e.rig.Message(id); m.Status != enroll.StatusQueued || strings.Contains(e.body(m), password) {
			t.Fatalf("after the pass the message is %+v with body %q, want queued without the password", m, e.body(m))
		}
		got := e.sent(id, phone)
		want := e.catalog.Text("fr", "sms.reset.incomplete", map[string]string{"username": u.Username})
		if len(got) != 1 || got[0] != want {
			t.Fatalf("the fake Twilio received %q, want only %q", got, want)
		}
		for _, req := range e.rig.Fake.Requests() {
			if strings.Contains(req.Form.Encode(), password) || strings.Contains(fmt.Sprint(req.Form), password) {
				t.Errorf("a request to Twilio holds the password: %v", req.Form)
			}
		}
		wantActions(t, heldAudit(t, e.rig.Store, u.Username, password), enroll.ActionHeldIncomplete)
		if err := lab.BindErr(dn, "Earlier#Reset4q"); err != nil {
			t.Errorf("bind with the password in force before: %v, want ok (nothing was changed)", err)
		}
	})
}

// TestHeldRecoveryCancelsASupersededMessage: the user texted RESET again
// after the node died: the older held message is canceled, its body
// wiped; the newer one is left to the outbox.
func TestHeldRecoveryCancelsASupersededMessage(t *testing.T) {
	e := newHeldEnv(t, ldaplab.OpenLDAP(t))
	u, _ := e.user()
	const phone = "+15550103003"
	old := e.hold(e.queue, u, phone, "en", "Old#Held9pwq")
	e.setPassword(u, "Old#Held9pwq")
	newer := e.hold(e.queue, u, phone, "en", "New#Reset9pwq")
	e.setPassword(u, "New#Reset9pwq")
	if err := e.queue.Release(t.Context(), newer); err != nil {
		t.Fatal(err)
	}
	e.pass(e.recovery(e.rig.Store, e.queue, e.dir))
	m := e.rig.Message(old)
	if m.Status != enroll.StatusCanceled || e.body(m) != "" {
		t.Fatalf("the superseded message is %+v with body %q, want canceled and wiped", m, e.body(m))
	}
	if n := e.rig.Message(newer); n.Status != enroll.StatusQueued || !strings.Contains(e.body(n), "New#Reset9pwq") {
		t.Errorf("the newer message is %+v, want it queued as it was", n)
	}
	got := e.sent(newer, phone)
	if len(got) != 1 || !strings.Contains(got[0], "New#Reset9pwq") {
		t.Errorf("the fake Twilio received %q, want only the newer password", got)
	}
	wantActions(t, heldAudit(t, e.rig.Store, u.Username, "Held9pwq"), enroll.ActionHeldSuperseded)
}

// TestHeldRecoveryIsNotSupersededByAResetAtWork: a newer RESET still at
// work (its message held, younger than the grace) may yet set nothing, so
// it supersedes nothing: the older message, whose password was set, is
// sent, and the newer one is left to its RESET.
func TestHeldRecoveryIsNotSupersededByAResetAtWork(t *testing.T) {
	e := newHeldEnv(t, ldaplab.OpenLDAP(t))
	u, _ := e.user()
	const phone = "+15550103006"
	old := e.holdAt(e.queue, u, phone, "en", "Old#Held8pwq", time.Now().Add(-testGrace-time.Minute))
	e.setPassword(u, "Old#Held8pwq")
	atWork := e.hold(e.queue, u, phone, "en", "Work#Held8pwq")
	e.pass(e.recoveryOpt(e.rig.Store, e.queue, e.dir, gateway.HeldRecoveryOptions{Now: time.Now}))
	if m := e.rig.Message(old); m.Status != enroll.StatusQueued || !strings.Contains(e.body(m), "Old#Held8pwq") {
		t.Errorf("the older message is %+v, want it released as written", m)
	}
	if m := e.rig.Message(atWork); m.Status != enroll.StatusHeld || !strings.Contains(e.body(m), "Work#Held8pwq") {
		t.Errorf("the message of the RESET at work is %+v, want it held as written", m)
	}
	wantActions(t, heldAudit(t, e.rig.Store, u.Username, "Held8pwq"), enroll.ActionHeldSent)
}

// TestHeldRecoveryLeavesTheMessageWhileTheDirectoryIsDown: a directory
// that does not answer says nothing; the message stays held, the pass says
// so once, and the next pass with the directory back finishes it.
func TestHeldRecoveryLeavesTheMessageWhileTheDirectoryIsDown(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	e := newHeldEnv(t, lab)
	u, _ := e.user()
	u2, _ := e.user()
	a := e.hold(e.queue, u, "+15550103004", "en", "Down#Held9pwq")
	b := e.hold(e.queue, u2, "+15550103005", "en", "Down#Held8pwq")
	cfg := lab.DirectoryConfig()
	cfg.URLs, cfg.Timeout = []string{"ldaps://127.0.0.1:1"}, time.Second // nothing listens there
	down, err := directory.New(cfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close() })
	e.pass(e.recovery(e.rig.Store, e.queue, down))
	for _, id := range []uint64{a, b} {
		if m := e.rig.Message(id); m.Status != enroll.StatusHeld || !strings.Contains(e.body(m), "Down#Held") {
			t.Errorf("message %d after a pass with the directory down: %+v, want it held as it was", id, m)
		}
	}
	if n := strings.Count(e.logs.String(), "left for the next pass"); n != 1 {
		t.Errorf("the pass logged %d times that it left messages, want once:\n%s", n, e.logs.String())
	}
	wantActions(t, heldAudit(t, e.rig.Store, u.Username, "Held9pwq"))
	e.pass(e.recovery(e.rig.Store, e.queue, e.dir))
	if m := e.rig.Message(a); m.Status != enroll.StatusQueued {
		t.Errorf("with the directory back the message is %+v, want it released", m)
	}
	wantActions(t, heldAudit(t, e.rig.Store, u.Username, "Held9pwq"), enroll.ActionHeldIncomplete)
}

// TestHeldRecoveryRacesActOnce: two nodes' recoveries (two etcd clients of
// one cluster, each with its own queue) run passes at once over held
// messages of every kind: each message is acted on once, and audited once.
func TestHeldRecoveryRacesActOnce(t *testing.T) {
	e := newHeldEnv(t, ldaplab.OpenLDAP(t))
	cluster := etcdlab.New(t, etcdlab.Options{Members: 1})
	prefix := cluster.Prefix(t)
	s1, s2 := etcdNode(t, cluster, prefix), etcdNode(t, cluster, prefix)
	q1, q2 := outbox.NewQueue(s1, e.rig.Sealer, nil), outbox.NewQueue(s2, e.rig.Sealer, nil)
	want := map[uint64]string{} // message → the one action it must get
	var users []string
	for i := range 3 {
		u, _ := e.user()
		users = append(users, u.Username)
		phone := fmt.Sprintf("+155501031%02d", i)
		set := e.hold(q1, u, phone, "en", "Race#Set9pwq")
		e.setPassword(u, "Race#Set9pwq")
		want[set] = enroll.ActionHeldSuperseded
		e.pastSkew(u)
		newest := e.hold(q1, u, phone, "en", "Race#Unset9pwq")
		want[newest] = enroll.ActionHeldIncomplete
		if i == 0 {
			// One user's newest reset did set its password.
			e.setPassword(u, "Race#Unset9pwq")
			want[newest] = enroll.ActionHeldSent
		}
	}
	r1, r2 := e.recovery(s1, q1, e.dir), e.recovery(s2, q2, e.dir)
	var wg sync.WaitGroup
	for range 3 {
		for _, r := range []*gateway.HeldRecovery{r1, r2} {
			wg.Go(func() {
				if err := r.Pass(context.WithoutCancel(t.Context())); err != nil {
					t.Errorf("Pass: %v", err)
				}
			})
		}
	}
	wg.Wait()
	got := map[uint64][]string{}
	for _, name := range users {
		for _, ev := range heldAudit(t, s1, name, "Race#") {
			var id uint64
			if _, err := fmt.Sscanf(ev.Detail, "message %d", &id); err != nil {
				t.Fatalf("audit detail %q names no message", ev.Detail)
			}
			got[id] = append(got[id], ev.Action)
		}
	}
	msgs, err := s1.Messages(t.Context(), enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if len(got[m.ID]) != 1 || got[m.ID][0] != want[m.ID] {
			t.Errorf("message %d (%s) was audited %v, want once %s", m.ID, m.Status, got[m.ID], want[m.ID])
		}
		wantStatus := map[string]string{enroll.ActionHeldSent: enroll.StatusQueued, enroll.ActionHeldIncomplete: enroll.StatusQueued,
			enroll.ActionHeldSuperseded: enroll.StatusCanceled}[want[m.ID]]
		if m.Status != wantStatus {
			t.Errorf("message %d is %s, want %s", m.ID, m.Status, wantStatus)
		}
	}
}

// TestHeldRecoveryReadsBackToItsWatermark: after its first pass the
// recovery reads the outbox from the newest message down to what it has
// seen; a held message still young at one pass, then buried under newer
// messages, is found when it is old enough, and so is one held after a
// pass under more than a page of newer messages.
func TestHeldRecoveryReadsBackToItsWatermark(t *testing.T) {
	e := newHeldEnv(t, ldaplab.OpenLDAP(t))
	clock := time.Now()
	r := e.recoveryOpt(e.rig.Store, e.queue, e.dir, gateway.HeldRecoveryOptions{Now: func() time.Time { return clock }})
	others := func(n int) {
		for range n {
			testkit.Enqueue(t, e.rig.Store, e.rig.Sealer, enroll.KindSMS, "+15550103999", "a code", enroll.PriorityHigh)
		}
	}
	u1, _ := e.user()
	young := e.hold(e.queue, u1, "+15550103201", "en", "Young#Held9pq")
	e.setPassword(u1, "Young#Held9pq")
	others(100)
	e.pass(r) // the first pass reads all; the held message is too young
	if m := e.rig.Message(young); m.Status != enroll.StatusHeld {
		t.Fatalf("a message younger than the grace was acted on: %+v", m)
	}
	others(100)
	clock = time.Now().Add(testGrace + time.Second)
	e.pass(r)
	if m := e.rig.Message(young); m.Status != enroll.StatusQueued {
		t.Errorf("the held message, old enough now under 100 newer ones, is %+v, want it released", m)
	}
	u2, _ := e.user()
	late := e.hold(e.queue, u2, "+15550103202", "en", "Late#Held9pq")
	others(150)
	clock = time.Now().Add(testGrace + time.Second)
	e.pass(r)
	if m := e.rig.Message(late); m.Status != enroll.StatusQueued || strings.Contains(e.body(m), "Late#Held9pq") {
		t.Errorf("the message held after the last pass, under 150 newer ones, is %+v, want it replaced and released", m)
	}
	wantActions(t, heldAudit(t, e.rig.Store, u1.Username, "Held9pq"), enroll.ActionHeldSent)
	wantActions(t, heldAudit(t, e.rig.Store, u2.Username, "Held9pq"), enroll.ActionHeldIncomplete)
}

// etcdNode is one node's store on cluster under prefix.
func etcdNode(t *testing.T, cluster *etcdlab.Cluster, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: cluster.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestHeldRecoveryOfADeposedLeaderChangesNothing: a pass under a term's
// fence that no longer holds (another node leads) is refused by etcd and
// says so (enroll.ErrFenced, which stops the term's jobs); the message
// stays held, unaudited, for the leader's pass, which sends it.
func TestHeldRecoveryOfADeposedLeaderChangesNothing(t *testing.T) {
	e := newHeldEnv(t, ldaplab.OpenLDAP(t))
	cluster := etcdlab.New(t, etcdlab.Options{Members: 1})
	prefix := cluster.Prefix(t)
	s := etcdNode(t, cluster, prefix)
	q := outbox.NewQueue(s, e.rig.Sealer, nil)
	u, _ := e.user()
	id := e.hold(q, u, "+15550103301", "en", "Fenced#Held9pq")
	e.setPassword(u, "Fenced#Held9pq")

	// The leader key of a term that ended: no longer there.
	deposed := enroll.WithFence(t.Context(), enroll.Fence{Key: prefix + "leader/ended", Revision: 1})
	r := e.recovery(s, q, e.dir)
	if err := r.Pass(deposed); !errors.Is(err, enroll.ErrFenced) {
		t.Fatalf("a deposed leader's pass: %v, want ErrFenced", err)
	}
	msgs, err := s.Messages(t.Context(), enroll.OutboxFilter{Username: u.Username})
	if err != nil || len(msgs) != 1 || msgs[0].Status != enroll.StatusHeld {
		t.Fatalf("after the deposed pass the messages are %+v, %v; want the one held", msgs, err)
	}
	wantActions(t, heldAudit(t, s, u.Username, "Held9pq"))

	put, err := cluster.Client(t).Put(t.Context(), prefix+"leader/now", "node-b")
	if err != nil {
		t.Fatal(err)
	}
	leading := enroll.WithFence(t.Context(), enroll.Fence{Key: prefix + "leader/now", Revision: put.Header.Revision})
	if err := e.recovery(s, q, e.dir).Pass(leading); err != nil {
		t.Fatalf("the leader's pass: %v", err)
	}
	msgs, err = s.Messages(t.Context(), enroll.OutboxFilter{Username: u.Username})
	if err != nil || len(msgs) != 1 || msgs[0].ID != id || msgs[0].Status != enroll.StatusQueued {
		t.Errorf("after the leader's pass the messages are %+v, %v; want message %d released", msgs, err, id)
	}
	wantActions(t, heldAudit(t, s, u.Username, "Held9pq"), enroll.ActionHeldSent)
}
