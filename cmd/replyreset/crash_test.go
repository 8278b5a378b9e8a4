package main

// Crash safety: `replyreset serve` runs as a real process on a real
// directory (OpenLDAP slapd) under a write load, and is killed with SIGKILL
// at random moments. After each kill the data file must open, pass bbolt's
// consistency check, hold every write the server acknowledged and have no
// phone index entry without its owner.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// crashKills is how many times the server is killed.
const crashKills = 20

// crashUser is what the server acknowledged for one directory user, and
// what it may have done without acknowledging it (the operation running
// when the process died).
type crashUser struct {
	name, dn, phone string

	mu        sync.Mutex
	state     string // "" (never enrolled), "active" or "deactivated": the last acknowledged
	maybe     string // the state an unacknowledged operation may have left, or ""
	busy      bool   // an operation is running
	resetsAck int    // RESETs acknowledged (empty answer: the password queued)
}

// crashLoad is the state of the whole test.
type crashLoad struct {
	t      *testing.T
	f      configFile
	addr   string
	users  []*crashUser
	next   atomic.Int64 // the next user to enroll
	sidSeq atomic.Int64

	acked    atomic.Int64 // acknowledged writes, all kinds
	enrolls  atomic.Int64
	resets   atomic.Int64
	deacts   atomic.Int64
	failures atomic.Int64 // operations cut by the kill
}

func TestCrashSafetyKill9(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	start := time.Now()
	l := &crashLoad{t: t, addr: freePort(t)}
	cfg := labConfig(lab)
	cfg.Listen = l.addr
	l.f = writeConfig(t, cfg)
	// This test resets the same phones again and again.
	liftLimits(t, l.f.Path)
	for i := range 300 {
		name := lab.UniqueName(fmt.Sprintf("crash%d", i))
		dn := lab.AddUser(t, ldaplab.UserSpec{Username: name, DisplayName: "Crash " + name, Mail: name + "@example.test"})
		l.users = append(l.users, &crashUser{name: name, dn: dn, phone: fmt.Sprintf("+1201555%04d", 1000+i)})
	}
	t.Logf("%d directory users: %v", len(l.users), time.Since(start).Round(time.Millisecond))

	var upTimes, loadTimes, checkTimes []time.Duration
	for cycle := range crashKills {
		proc, up := l.startServer()
		upTimes = append(upTimes, up)
		ctx, stopLoad := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.work(ctx, w)
			}()
		}
		// Kill at a random moment of the load.
		d := time.Duration(100+rand.IntN(1400)) * time.Millisecond
		time.Sleep(d)
		loadTimes = append(loadTimes, d)
		if err := proc.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		stopLoad()
		wg.Wait()
		checkStart := time.Now()
		l.check(cycle)
		checkTimes = append(checkTimes, time.Since(checkStart))
		if t.Failed() {
			t.Fatalf("after kill %d (at %v into the load)", cycle+1, d)
		}
	}
	// The last restart serves again on the same file.
	proc, _ := l.startServer()
	_ = proc.Process.Kill()
	_ = proc.Wait()
	t.Logf("%d kills: %d acknowledged writes checked (%d enrollments, %d resets, %d deactivations), %d operations cut by a kill",
		crashKills, l.acked.Load(), l.enrolls.Load(), l.resets.Load(), l.deacts.Load(), l.failures.Load())
	t.Logf("serve up (exec → /healthz): median %v, max %v; kill after %v..%v of load; check median %v; total %v",
		median(upTimes), maxDur(upTimes), minDur(loadTimes), maxDur(loadTimes), median(checkTimes), time.Since(start).Round(time.Millisecond))
	if l.enrolls.Load() < crashKills || l.resets.Load() < crashKills {
		t.Errorf("the load was too light to prove anything: %d enrollments, %d resets acknowledged", l.enrolls.Load(), l.resets.Load())
	}
}

// startServer runs `replyreset serve` as a process and waits for /healthz.
func (l *crashLoad) startServer() (*exec.Cmd, time.Duration) {
	l.t.Helper()
	p, up := execServe(l.t, l.f.Path, l.addr)
	l.t.Cleanup(p.kill)
	return p.cmd, up
}

// liftLimits lifts, in the configuration file at path, the limits on
// resets per phone and hour and on SMS per number and day, for tests that
// reset the same phones again and again.
func liftLimits(t *testing.T, path string) {
	t.Helper()
	appendFile(t, path, "reset: {max_per_hour: 100000}\n")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const provider = "  provider: twilio\n"
	if !strings.Contains(string(raw), provider) {
		t.Fatalf("the configuration has no %q line:\n%s", provider, raw)
	}
	writeFile(t, path, strings.Replace(string(raw), provider,
		provider+"  budgets: {per_number_day: 1000000, per_day: 1000000}\n", 1))
}

// serveProc is `replyreset serve` running as a process of its own (the
// test binary doubles as the binary), for tests that signal it.
type serveProc struct {
	cmd *exec.Cmd
	log *enrolltest.LogBuffer // its stdout and stderr
}

// execServe starts `replyreset serve -config path` as a process and waits
// until addr's /healthz answers 200 (20 s at most). The caller ends it
// (kill).
func execServe(t testing.TB, path, addr string) (*serveProc, time.Duration) {
	t.Helper()
	start := time.Now()
	p := &serveProc{cmd: exec.Command(os.Args[0], "serve", "-config", path), log: &enrolltest.LogBuffer{}}
	p.cmd.Env = append(os.Environ(), "REPLYRESET_TEST_RUN_MAIN=1")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := httpClient.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, time.Since(start)
			}
		}
		if time.Since(start) > 20*time.Second {
			p.kill()
			t.Fatalf("serve not healthy within 20 s: %v\n%s", err, p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL (also a stopped one) and reaps it.
func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// work runs operations until ctx ends: worker 0 deactivates, 1 and 2 text
// RESET, the others enroll.
func (l *crashLoad) work(ctx context.Context, w int) {
	for ctx.Err() == nil {
		switch w {
		case 0:
			l.deactivate(ctx)
			time.Sleep(50 * time.Millisecond)
		case 1, 2:
			if !l.reset(ctx) {
				time.Sleep(10 * time.Millisecond)
			}
		default:
			l.enroll(ctx)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// claim picks a user in state (or any state when all is true) that no
// operation is using, and marks it busy.
func (l *crashLoad) claim(state string) *crashUser {
	n := int(min(l.next.Load(), int64(len(l.users))))
	if n == 0 {
		return nil
	}
	for range 20 {
		u := l.users[rand.IntN(n)]
		u.mu.Lock()
		if !u.busy && u.maybe == "" && u.state == state {
			u.busy = true
			u.mu.Unlock()
			return u
		}
		u.mu.Unlock()
	}
	return nil
}

// done records the outcome of an operation on u that would leave it in
// state: acknowledged, or cut (it may or may not have happened).
func (l *crashLoad) done(u *crashUser, state string, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.busy = false
	if ok {
		u.state = state
		l.acked.Add(1)
		return
	}
	u.maybe = state
	l.failures.Add(1)
}

func (l *crashLoad) enroll(ctx context.Context) {
	// Half the time, and always once every user is taken, enroll a
	// deactivated user again (the phone goes back into the index).
	var u *crashUser
	if rand.IntN(2) == 0 || l.next.Load() >= int64(len(l.users)) {
		u = l.claim("deactivated")
	}
	if u == nil {
		i := l.next.Add(1) - 1
		if int(i) >= len(l.users) {
			time.Sleep(10 * time.Millisecond)
			return
		}
		u = l.users[i]
		u.mu.Lock()
		u.busy = true
		u.mu.Unlock()
	}
	r := runCLI(l.t, "enroll", "-config", l.f.Path, u.name, u.phone)
	ok := r.code == 0
	if ok {
		l.enrolls.Add(1)
	}
	l.done(u, "active", ok)
}

func (l *crashLoad) deactivate(ctx context.Context) {
	u := l.claim("active")
	if u == nil {
		return
	}
	r := runCLI(l.t, "deactivate", "-config", l.f.Path, "-by", "crashtest", u.name)
	ok := r.code == 0
	if ok {
		l.deacts.Add(1)
	}
	l.done(u, "deactivated", ok)
}

// reset texts RESET from an enrolled user's phone; an empty answer (the
// password queued in the outbox) acknowledges the reset (and its audit
// event).
func (l *crashLoad) reset(ctx context.Context) bool {
	u := l.claim("active")
	if u == nil {
		return false
	}
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%016x%016x", time.Now().UnixNano(), l.sidSeq.Add(1))},
		"AccountSid": {testAccountSID}, "From": {u.phone}, "To": {testFromNumber}, "Body": {"RESET"}}
	status, msgs, _, err := twiliotest.PostSMS(ctx, httpClient, "http://"+l.addr+"/sms/twilio", testPublicURL+"/sms/twilio", testAuthToken, form)
	// An empty answer is a reset done: the password went to the outbox.
	ok := err == nil && status == http.StatusOK && len(msgs) == 0
	u.mu.Lock()
	u.busy = false
	if ok {
		u.resetsAck++
		l.resets.Add(1)
		l.acked.Add(1)
	} else if err != nil || status != http.StatusOK {
		l.failures.Add(1)
	} else {
		l.t.Errorf("RESET from %s (%s), enrolled and acknowledged: reply %q", u.phone, u.name, msgs)
	}
	u.mu.Unlock()
	return true
}

// check opens the data file left by the kill and checks it against what
// was acknowledged. An operation cut by the kill may or may not have
// happened; the test then takes the state it finds.
func (l *crashLoad) check(cycle int) {
	t := l.t
	t.Helper()
	path := filepath.Join(l.f.DataDir, "replyreset.db")
	index := readPhoneIndex(t, path)
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("kill %d: the data file does not open: %v", cycle+1, err)
	}
	defer s.Close()
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("kill %d: bbolt consistency check: %v", cycle+1, err)
	}
	ctx := context.Background()
	for phone, owner := range index {
		e, err := s.EnrollmentByPhone(ctx, phone)
		if err != nil {
			t.Errorf("kill %d: the phone index names %s for %s, but EnrollmentByPhone fails: %v", cycle+1, owner, phone, err)
			continue
		}
		if e.Phone != phone || !strings.EqualFold(e.Username, owner) || (e.State != enroll.StateActive && e.State != enroll.StateFrozen) {
			t.Errorf("kill %d: the phone index entry %s → %s is dangling: the enrollment is %+v", cycle+1, phone, owner, e)
		}
	}
	resetsOK := map[string]int{}
	err = s.WalkAudit(ctx, enroll.AuditFilter{Action: "reset"}, func(ev enroll.Event) bool {
		if ev.Outcome == "ok" {
			resetsOK[strings.ToLower(ev.Username)]++
		}
		return true
	})
	if err != nil {
		t.Fatalf("kill %d: read the audit trail: %v", cycle+1, err)
	}
	// Every acknowledged reset released its password message (queued,
	// then sent or still waiting): none is only held.
	released := map[string]int{}
	msgs, err := s.Messages(ctx, enroll.OutboxFilter{})
	if err != nil {
		t.Fatalf("kill %d: read the outbox: %v", cycle+1, err)
	}
	for _, m := range msgs {
		if m.Purpose == "password" && m.Status != enroll.StatusHeld && m.Status != enroll.StatusCanceled {
			released[m.To]++
		}
	}
	for _, u := range l.users[:min(int(l.next.Load()), len(l.users))] {
		u.mu.Lock()
		e, err := s.Enrollment(ctx, u.name)
		got := ""
		switch {
		case err == nil:
			got = string(e.State)
		case !errors.Is(err, enroll.ErrNotFound):
			t.Errorf("kill %d: enrollment of %s: %v", cycle+1, u.name, err)
		}
		if got != u.state && got != u.maybe {
			t.Errorf("kill %d: %s is %q in the data file; acknowledged %q (an unacknowledged operation may have made it %q)",
				cycle+1, u.name, got, u.state, u.maybe)
		}
		if got == "active" {
			if _, indexed := index[u.phone]; !indexed || e.Phone != u.phone {
				t.Errorf("kill %d: %s is active with %s, but the phone index has it: %v", cycle+1, u.name, e.Phone, indexed)
			}
		}
		if u.maybe != "" { // settled: what the file says is what happened
			u.state, u.maybe = got, ""
		}
		if n := resetsOK[strings.ToLower(u.name)]; n < u.resetsAck {
			t.Errorf("kill %d: %s: %d resets acknowledged, %d in the audit trail", cycle+1, u.name, u.resetsAck, n)
		}
		if n := released[u.phone]; n < u.resetsAck {
			t.Errorf("kill %d: %s: %d resets acknowledged, %d password messages released in the outbox", cycle+1, u.name, u.resetsAck, n)
		}
		u.mu.Unlock()
	}
}

// readPhoneIndex reads the phones bucket (E.164 → owner) of the data file
// directly, read-only: the index as it is on disk, not as the store sees it.
func readPhoneIndex(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open the data file read-only: %v", err)
	}
	defer db.Close()
	index := map[string]string{}
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("phones"))
		if b == nil {
			return errors.New("no phones bucket")
		}
		return b.ForEach(func(k, v []byte) error {
			index[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return index
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func maxDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Millisecond)
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m.Round(time.Millisecond)
}
