package main

// The lab of the HA fault tests (ha_test.go): a real Samba AD DC, a real
// three-member etcd cluster, the fake Twilio and an SMTP server, and two
// `replyreset serve` processes on one store prefix with one key file, each
// on its own HTTP port and data_dir. The test opens the store itself, with
// a third configuration (its own data_dir, the same key file), to read the
// outbox and the audit trail; users are enrolled with the real `enroll`
// command.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// haWait bounds every wait of the HA tests for something that must happen
// (a failover, a text, a recovery): only "never" fails, the durations are
// logged.
const haWait = 2 * time.Minute

// haQuiet is how long a test keeps watching after the last expected text,
// so that a duplicate (a second node, a deposed leader woken up) would
// land: more than the lockout poll (1 s) and the outbox's first backoff.
const haQuiet = 8 * time.Second

// haStorePrefix is the nodes' store.etcd.prefix.
const haStorePrefix = "/replyreset/"

// haClient asks a node's /healthz: short, as a paused node never answers.
var haClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// haNode is one serve process of the lab.
type haNode struct {
	name string
	addr string
	cfg  configFile

	mu     sync.Mutex
	proc   *serveProc // nil once killed
	paused bool       // SIGSTOPped
}

// haLab is the whole lab, shared by TestHA's subtests.
type haLab struct {
	ad      *ldaplab.Server
	cluster *etcdlab.Cluster
	cli     *clientv3.Client
	twilio  *twiliotest.Fake
	smtp    *smtptest.Server
	reader  configFile   // the test's own configuration
	store   enroll.Store // opened on reader
	nodes   [2]*haNode
	proxies [2]*ldapProxy // each node's way to the directory
	kinds   []smsKind
	catalog *templates.Catalog

	sids   atomic.Int64
	phones atomic.Int64
}

// smsKind recognises the texts of one catalog key.
type smsKind struct {
	name string
	re   *regexp.Regexp
}

func newHALab(t *testing.T) *haLab {
	t.Helper()
	t0 := time.Now()
	l := &haLab{ad: ldaplab.Samba(t), cluster: etcdlab.New(t, etcdlab.Options{Members: 3}),
		twilio: newTwilio(t, testAuthToken, testFromNumber), smtp: smtptest.New(t, smtptest.Options{})}
	l.cli = l.cluster.Client(t)
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	l.catalog = catalog
	for _, k := range []struct{ name, key string }{
		{"lockout", "sms.lockout.alert"}, {"password", "sms.reset.ok"}, {"password", "sms.reset.ok_must_change"},
		{"enrolled", "sms.enrolled"}, {"store_down", "sms.store_down"}, {"incomplete", "sms.reset.incomplete"},
	} {
		text := catalog.Text("en", k.key, map[string]string{"username": "\x00", "time": "\x00", "password": "\x00"})
		pattern := strings.ReplaceAll(regexp.QuoteMeta(text), "\x00", "(?s:.+)")
		l.kinds = append(l.kinds, smsKind{k.name, regexp.MustCompile("^" + pattern + "$")})
	}
	keyFile := filepath.Join(t.TempDir(), "replyreset.key")
	write := func(dirURL string) configFile {
		c := labConfig(l.ad)
		c.URLs = []string{dirURL}
		c.Listen = freePort(t)
		f := writeMoreConfig(t, c, moreConfig{twilio: l.twilio, smtp: l.smtp, tls: "none", noAuth: true})
		appendEtcdStore(t, f, l.cluster, haStorePrefix, keyFile)
		liftLimits(t, f.Path)
		// Lockouts are polled every second; the users locked in the
		// shared Samba by other tests make no storm.
		appendFile(t, f.Path, "lockout: {poll_interval: 1s, storm_threshold: 100000}\n")
		return f
	}
	// The test's store first: it makes the key file and records its
	// fingerprint, which both nodes then find.
	l.reader = write(l.ad.LDAPSURL)
	st, release := openTestStore(t, l.reader)
	t.Cleanup(release)
	l.store = st
	for i, name := range []string{"a", "b"} {
		l.proxies[i] = newLDAPProxy(t, strings.TrimPrefix(l.ad.LDAPSURL, "ldaps://"))
		f := write(l.proxies[i].url())
		addr := listenOf(t, f)
		n := &haNode{name: name, addr: addr, cfg: f}
		l.nodes[i] = n
		t.Cleanup(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if n.proc != nil {
				n.proc.kill()
			}
		})
		l.start(t, i)
	}
	lead, d := l.waitLeader(t, -1)
	t.Logf("HA lab: Samba AD, 3 etcd members, 2 serve nodes ready in %v; node %s leads (%v after the second start)",
		time.Since(t0).Round(time.Millisecond), l.nodes[lead].name, d)
	return l
}

// listenOf is the listen address written in f.
func listenOf(t *testing.T, f configFile) string {
	t.Helper()
	cfg, err := LoadConfig(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Listen
}

// start runs node i's serve process and waits for its /healthz 200.
func (l *haLab) start(t *testing.T, i int) {
	t.Helper()
	n := l.nodes[i]
	p, up := execServe(t, n.cfg.Path, n.addr)
	n.mu.Lock()
	n.proc, n.paused = p, false
	n.mu.Unlock()
	t.Logf("node %s (%s) up in %v", n.name, n.addr, up.Round(time.Millisecond))
}

// kill ends node i with SIGKILL (a crash).
func (l *haLab) kill(i int) {
	n := l.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		n.proc.kill()
		n.proc, n.paused = nil, false
	}
}

// pause stops node i with SIGSTOP; resume continues it (SIGCONT).
func (l *haLab) pause(i int) { l.signal(i, syscall.SIGSTOP, true) }

func (l *haLab) resume(i int) { l.signal(i, syscall.SIGCONT, false) }

func (l *haLab) signal(i int, sig syscall.Signal, paused bool) {
	n := l.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		_ = n.proc.cmd.Process.Signal(sig)
		n.paused = paused
	}
}

// log is node i's output so far (the current or last process).
func (l *haLab) log(i int) string {
	n := l.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return "(killed)"
	}
	return n.proc.log.String()
}

// running reports whether node i runs and is not paused.
func (l *haLab) running(i int) bool {
	n := l.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !n.paused
}

// isLeader asks node i's /healthz whether it leads; ok false when it does
// not answer.
func (l *haLab) isLeader(i int) (leader, ok bool) {
	resp, err := haClient.Get("http://" + l.nodes[i].addr + "/healthz")
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var h struct {
		Leader bool `json:"leader"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return false, false
	}
	return h.Leader, true
}

// waitLeader waits until exactly one running node says it leads (want,
// unless -1) and returns it with the time waited.
func (l *haLab) waitLeader(t *testing.T, want int) (int, time.Duration) {
	t.Helper()
	t0 := time.Now()
	for {
		lead, n := -1, 0
		for i := range l.nodes {
			if !l.running(i) {
				continue
			}
			if yes, _ := l.isLeader(i); yes {
				lead = i
				n++
			}
		}
		if n == 1 && (want < 0 || lead == want) {
			return lead, time.Since(t0).Round(time.Millisecond)
		}
		if time.Since(t0) > haWait {
			t.Fatalf("no single leader (want %d) after %v: %d nodes say they lead\nnode a log:\n%s\nnode b log:\n%s",
				want, haWait, n, tail(l.log(0), 3000), tail(l.log(1), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFollower waits until node i answers that it does not lead.
func (l *haLab) waitFollower(t *testing.T, i int) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		if yes, ok := l.isLeader(i); ok && !yes {
			return time.Since(t0).Round(time.Millisecond)
		}
		if time.Since(t0) > haWait {
			t.Fatalf("node %s still leads (or does not answer) %v after it was deposed\nlog:\n%s", l.nodes[i].name, haWait, tail(l.log(i), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restore brings the lab back to the whole cluster and both nodes up, one
// of them leading: every subtest starts from there.
func (l *haLab) restore(t *testing.T) {
	t.Helper()
	l.twilio.OnMessage(nil)
	for _, p := range l.proxies {
		p.SetDelay(0, 0)
	}
	for _, m := range l.cluster.Members() {
		if !l.memberHealthy(m) {
			m.Restart(t)
		}
	}
	l.cluster.WaitHealthy(t)
	for i, n := range l.nodes {
		n.mu.Lock()
		dead, paused := n.proc == nil, n.paused
		n.mu.Unlock()
		switch {
		case dead:
			l.start(t, i)
		case paused:
			l.resume(i)
		}
	}
	for i := range l.nodes {
		waitStatus(t, l.nodes[i].addr, "/healthz", http.StatusOK)
	}
	l.waitLeader(t, -1)
}

// memberHealthy reports whether m answers a status request.
func (l *haLab) memberHealthy(m *etcdlab.Member) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := l.cli.Status(ctx, m.ClientURL)
	return err == nil
}

// raftLeader is the index of the etcd member that leads the raft group.
func (l *haLab) raftLeader(t *testing.T) int {
	t.Helper()
	for i, m := range l.cluster.Members() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		st, err := l.cli.Status(ctx, m.ClientURL)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no etcd member says it leads the raft group")
	return -1
}

// haUser is a Samba AD account enrolled with its own phone.
type haUser struct{ name, dn, phone string }

// newUser adds an AD account, enrolls it with `replyreset enroll` on the
// leading node (through its control socket: the leader's outbox is woken
// at once) and waits for its confirmation SMS.
func (l *haLab) newUser(t *testing.T, prefix string) haUser {
	t.Helper()
	name := l.ad.UniqueName(prefix)
	u := haUser{name: name, phone: fmt.Sprintf("+1201556%04d", l.phones.Add(1))}
	u.dn = l.ad.AddUser(t, ldaplab.UserSpec{Username: name, DisplayName: "HA " + name, Mail: name + "@example.test"})
	lead, _ := l.waitLeader(t, -1)
	mustRun(t, "enroll", "-config", l.nodes[lead].cfg.Path, "-by", "hatest", name, u.phone)
	t.Logf("%s enrolled on node %s; its confirmation texted %v later", name, l.nodes[lead].name, l.waitTexts(t, u.phone, "enrolled", 1))
	return u
}

// kind names what a text is (smsKind), "other" when no key matches.
func (l *haLab) kind(body string) string {
	for _, k := range l.kinds {
		if k.re.MatchString(body) {
			return k.name
		}
	}
	return "other"
}

// texts counts the SMS the fake Twilio accepted for phone, by kind.
func (l *haLab) texts(phone string) map[string]int {
	n := map[string]int{}
	for _, r := range l.twilio.Resources() {
		if r.Kind == "sms" && r.To == phone {
			n[l.kind(r.Body)]++
		}
	}
	return n
}

// waitTexts waits until the fake Twilio accepted n texts of kind for phone.
func (l *haLab) waitTexts(t *testing.T, phone, kind string, n int) time.Duration {
	t.Helper()
	t0 := time.Now()
	for l.texts(phone)[kind] < n {
		if time.Since(t0) > haWait {
			t.Fatalf("%s: %d %s texts after %v, want %d (all: %v)\nnode a log:\n%s\nnode b log:\n%s",
				phone, l.texts(phone)[kind], kind, haWait, n, l.texts(phone), tail(l.log(0), 3000), tail(l.log(1), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(t0).Round(time.Millisecond)
}

// messages is the outbox's messages to phone.
func (l *haLab) messages(t *testing.T, phone string) []enroll.OutboundMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ms, err := l.store.Messages(ctx, enroll.OutboxFilter{To: phone})
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	return ms
}

// waitSettled waits until no message to the phones is pending or held,
// then haQuiet more, so that a duplicate would have landed.
func (l *haLab) waitSettled(t *testing.T, phones ...string) {
	t.Helper()
	t0 := time.Now()
	for _, phone := range phones {
		for {
			var open []string
			for _, m := range l.messages(t, phone) {
				if m.Pending() || m.Status == enroll.StatusHeld {
					open = append(open, fmt.Sprintf("%d %s %s (%d attempts)", m.ID, m.Purpose, m.Status, m.Attempts))
				}
			}
			if len(open) == 0 {
				break
			}
			if time.Since(t0) > haWait {
				t.Errorf("%s: messages still open after %v: %v", phone, haWait, open)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(haQuiet)
}

// audit is the audit trail of username (every action when action is "").
func (l *haLab) audit(t *testing.T, username, action string, afterSeq uint64) []enroll.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []enroll.Event
	err := l.store.WalkAudit(ctx, enroll.AuditFilter{Username: username, Action: action, AfterSeq: afterSeq}, func(ev enroll.Event) bool {
		out = append(out, ev)
		return true
	})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return out
}

// lastSeq is the sequence number of the newest audit event.
func (l *haLab) lastSeq(t *testing.T) uint64 {
	t.Helper()
	var last uint64
	for _, ev := range l.audit(t, "", "", 0) {
		last = max(last, ev.Seq)
	}
	return last
}

// wantOneLockout wants exactly one lockout text for u at the fake Twilio
// and exactly one lockout_alert/ok event for it in the audit trail.
func (l *haLab) wantOneLockout(t *testing.T, u haUser) {
	t.Helper()
	texts := l.texts(u.phone)
	alerts := 0
	for _, ev := range l.audit(t, u.name, "lockout_alert", 0) {
		if ev.Outcome == "ok" {
			alerts++
		}
	}
	if texts["lockout"] != 1 || alerts != 1 {
		t.Errorf("%s locked once: %d lockout texts at Twilio (all texts %v), %d lockout_alert/ok audit events; want 1 and 1",
			u.name, texts["lockout"], texts, alerts)
	} else {
		t.Logf("%s: 1 lockout text, 1 lockout_alert/ok event (texts %v)", u.name, texts)
	}
}

// wantNoDuplicateAudit fails when two audit events after seq are the same
// act: one action, account and outcome on one lockout (the detail up to
// its first ";": a second term's copy names another message).
func (l *haLab) wantNoDuplicateAudit(t *testing.T, seq uint64) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range l.audit(t, "", "", seq) {
		what, _, _ := strings.Cut(ev.Detail, ";")
		seen[ev.Action+"|"+ev.Username+"|"+ev.Outcome+"|"+what]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("audit: %d events %q (a stale write from the old term?)", n, k)
		}
	}
}

// sms posts a signed inbound SMS with sid (a new one when "") to node i.
func (l *haLab) sms(ctx context.Context, i int, sid, from, body string) (int, []string, error) {
	if sid == "" {
		sid = l.newSID()
	}
	form := url.Values{"MessageSid": {sid}, "AccountSid": {testAccountSID}, "From": {from},
		"To": {testFromNumber}, "Body": {body}}
	status, texts, _, err := twiliotest.PostSMS(ctx, httpClient, "http://"+l.nodes[i].addr+"/sms/twilio",
		testPublicURL+"/sms/twilio", testAuthToken, form)
	return status, texts, err
}

func (l *haLab) newSID() string { return fmt.Sprintf("SM%032x", 0xa000+l.sids.Add(1)) }

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ldapProxy is a TCP relay between a node and the directory that can hold
// bytes back (SetDelay) and drop what it holds (Drop): a test can then
// stop the node before its request reaches the directory, or after the
// directory acted on it but before the node has the answer.
type ldapProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	up     time.Duration // node → directory
	down   time.Duration // directory → node
	conns  []net.Conn
	epoch  int // Drop's count: chunks read before the current epoch are discarded
	closed bool
}

func newLDAPProxy(t *testing.T, target string) *ldapProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ldapProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.accept()
	return p
}

// url is the proxy's ldaps:// URL.
func (p *ldapProxy) url() string { return "ldaps://" + p.ln.Addr().String() }

// SetDelay holds every chunk back before forwarding it: up from the node
// to the directory, down from the directory to the node.
func (p *ldapProxy) SetDelay(up, down time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up, p.down = up, down
}

// Drop discards every chunk not forwarded yet and closes every connection.
func (p *ldapProxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch++
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *ldapProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Drop()
}

func (p *ldapProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.forward(c, s, true)
		go p.forward(s, c, false)
	}
}

// chunk is what the node sent in one read, when, in which epoch.
type chunk struct {
	b     []byte
	at    time.Time
	epoch int
}

// forward relays from to to, each chunk held back the delay of its
// direction (up: node to directory); a chunk of an epoch Drop ended is
// discarded.
func (p *ldapProxy) forward(from, to net.Conn, up bool) {
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 32<<10)
			n, err := from.Read(b)
			if n > 0 {
				p.mu.Lock()
				d := p.down
				if up {
					d = p.up
				}
				k := chunk{b[:n], time.Now().Add(d), p.epoch}
				p.mu.Unlock()
				ch <- k
			}
			if err != nil {
				return
			}
		}
	}()
	defer to.Close()
	for k := range ch {
		time.Sleep(time.Until(k.at))
		p.mu.Lock()
		dropped := k.epoch != p.epoch
		p.mu.Unlock()
		if dropped {
			return
		}
		if _, err := to.Write(k.b); err != nil {
			return
		}
	}
}
