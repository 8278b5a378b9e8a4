package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// The HA benchmarks (issue 17) run real `replyreset serve` processes, built
// from ../cmd/replyreset, on a real three-member etcd cluster
// (enroll/store/etcdlab) or on bbolt, against the real directories, and
// send their SMS through twilio-go to the fake Twilio REST server. A RESET
// is timed from the signed webhook posted to the password SMS received by
// the fake Twilio: the reply and the outbox's send, as a user sees it.

const (
	benchAccountSID = "AC0123456789abcdef0123456789abcdef"
	benchFrom       = "+12015550000"
	benchToken      = "benchtoken0123456789abcdef012345" // serve wants the letters and digits of a Twilio token
)

// smsWatch is the fake Twilio behind a proxy that tells, per recipient,
// when a message was accepted: the proxy is the nodes' api_base_url.
type smsWatch struct {
	fake *twiliotest.Fake
	srv  *httptest.Server
	mu   sync.Mutex
	sent map[string]chan struct{} // To → one token per message accepted
	n    atomic.Int64
}

func newSMSWatch(b *testing.B) *smsWatch {
	w := &smsWatch{fake: twiliotest.NewFake(benchAccountSID, benchToken), sent: map[string]chan struct{}{}}
	w.fake.SetOwnedNumbers(benchFrom)
	b.Cleanup(w.fake.Close)
	target, err := url.Parse(w.fake.URL)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: rw}
		proxy.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Messages.json") && rec.status == http.StatusCreated {
			form, _ := url.ParseQuery(string(body))
			w.n.Add(1)
			w.ch(form.Get("To")) <- struct{}{}
		}
	}))
	b.Cleanup(w.srv.Close)
	return w
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

func (w *smsWatch) ch(to string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.sent[to]
	if !ok {
		c = make(chan struct{}, 1024)
		w.sent[to] = c
	}
	return c
}

// wait waits for the next message to to.
func (w *smsWatch) wait(to string) error {
	select {
	case <-w.ch(to):
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no SMS to %s within 30 s", to)
	}
}

// serveBinary builds the replyreset binary into dir.
func serveBinary(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "replyreset")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/replyreset").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// node is one running `replyreset serve`.
type node struct {
	name, addr, logPath string
	cmd                 *exec.Cmd
	stopped             bool
}

// nodeSpec is what differs between nodes: the store section and data_dir.
type nodeSpec struct {
	name    string
	dataDir string
	store   string // the YAML store: section
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNode starts serve with spec against lab, sending through sms, and
// waits until /healthz answers 200.
func startNode(b *testing.B, bin string, lab *ldaplab.Server, sms *smsWatch, spec nodeSpec) *node {
	dir := b.TempDir()
	n := &node{name: spec.name, addr: freeAddr(b), logPath: filepath.Join(dir, "serve.log")}
	pwFile := filepath.Join(dir, "bind.pw")
	if err := os.WriteFile(pwFile, []byte(lab.ServicePassword+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen: %q
public_url: %q
data_dir: %q
log: {level: warn, format: text}
directory:
  dialect: %s
  urls: [%q]
  ca_file: %q
  bind_dn: %q
  bind_password_file: %q
  base_dn: %q
sms:
  provider: twilio
  twilio: {account_sid: %q, auth_token: %q, from: %q, api_base_url: %q}
  budgets: {per_number_day: 0, per_day: 0}
reset: {max_per_hour: 1000000}
lockout: {enabled: false}
reminders: {days: []}
%s`, n.addr, publicURL, spec.dataDir, lab.Dialect, lab.LDAPSURL, lab.CAFile, lab.ServiceDN, pwFile, lab.BaseDN,
		benchAccountSID, benchToken, benchFrom, sms.srv.URL, spec.store)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(n.logPath)
	if err != nil {
		b.Fatal(err)
	}
	n.cmd = exec.Command(bin, "serve", "-config", cfgPath)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	logf.Close()
	b.Cleanup(func() { n.stop(b) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := n.health(); code == http.StatusOK {
			return n
		}
		if n.cmd.ProcessState != nil || time.Now().After(deadline) {
			b.Fatalf("serve %s did not become healthy; log:\n%s", n.name, n.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) log() string {
	data, _ := os.ReadFile(n.logPath)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// health returns /healthz's status and whether the node leads.
func (n *node) health() (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.addr+"/healthz", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var h struct {
		Leader *bool `json:"leader"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h.Leader != nil && *h.Leader
}

// stop interrupts serve and waits for it (SIGKILL after 30 s).
func (n *node) stop(b *testing.B) {
	if n.stopped {
		return
	}
	n.stopped = true
	_ = n.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Errorf("serve %s: %v; log:\n%s", n.name, err, n.log())
		}
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
		b.Errorf("serve %s still running 30 s after SIGINT", n.name)
	}
}

// haFixture is a directory with enrolled users, one bbolt node and one or
// more etcd nodes on one prefix, all sending through one fake Twilio.
type haFixture struct {
	lab      *ldaplab.Server
	cluster  *etcdlab.Cluster
	prefix   string
	sms      *smsWatch
	boltNode *node
	boltFile string
	etcdNode []*node
	users    []string
	phones   []string
	client   *http.Client
	sid      atomic.Int64
}

func newHAFixture(b *testing.B, lab *ldaplab.Server, nUsers, etcdNodes int) *haFixture {
	f := &haFixture{lab: lab, cluster: etcdlab.Shared(b), sms: newSMSWatch(b),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}}
	f.prefix = f.cluster.Prefix(b)
	for i := 0; i < nUsers; i++ {
		name := lab.UniqueName("ha")
		lab.AddUser(b, ldaplab.UserSpec{Username: name, Password: "Bench#Pass1x", DisplayName: "Bench User"})
		f.users, f.phones = append(f.users, name), append(f.phones, fmt.Sprintf("+1201555%04d", 3000+i))
	}
	// The same enrollments in both stores, written before the nodes start
	// (serve holds the bbolt file).
	boltDir := b.TempDir()
	f.boltFile = filepath.Join(boltDir, "replyreset.db")
	bs, err := bolt.Open(f.boltFile)
	if err != nil {
		b.Fatal(err)
	}
	f.enroll(b, bs)
	if err := bs.Close(); err != nil {
		b.Fatal(err)
	}
	es := f.etcdStore(b)
	f.enroll(b, es)
	if err := es.Close(); err != nil {
		b.Fatal(err)
	}

	bin := serveBinary(b)
	f.boltNode = startNode(b, bin, lab, f.sms, nodeSpec{name: "bolt", dataDir: boltDir, store: "store: {backend: bolt}\n"})
	eps := make([]string, 0, 3)
	for _, ep := range f.cluster.Endpoints() {
		eps = append(eps, strconv.Quote(ep))
	}
	keyFile := filepath.Join(b.TempDir(), "replyreset.key") // created by the first node, read by the others
	for i := 0; i < etcdNodes; i++ {
		f.etcdNode = append(f.etcdNode, startNode(b, bin, lab, f.sms, nodeSpec{name: fmt.Sprintf("etcd-%d", i+1), dataDir: b.TempDir(),
			store: fmt.Sprintf("store:\n  backend: etcd\n  key_file: %q\n  etcd: {endpoints: [%s], prefix: %q}\n",
				keyFile, strings.Join(eps, ", "), f.prefix)}))
	}
	return f
}

func (f *haFixture) etcdStore(b *testing.B) *etcd.Store {
	s, err := etcd.New(context.Background(), f.cluster.Client(b), etcd.Options{Prefix: f.prefix})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func (f *haFixture) enroll(b *testing.B, s enroll.Store) {
	now := time.Now()
	for i, name := range f.users {
		if err := s.PutEnrollment(context.Background(), enroll.Enrollment{Username: name, Phone: f.phones[i], Language: "en",
			State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
}

// post sends one signed inbound SMS to n and wants a TwiML reply of
// replies messages (RESET: none, the password goes out by the outbox).
func (f *haFixture) post(n *node, from, body string, replies int) error {
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", 0xa000000+f.sid.Add(1))}, "From": {from},
		"To": {benchFrom}, "Body": {body}}
	status, msgs, raw, err := twiliotest.PostSMS(context.Background(), f.client, "http://"+n.addr+"/sms/twilio",
		publicURL+"/sms/twilio", benchToken, form)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", body, n.name, err)
	}
	if status != http.StatusOK || len(msgs) != replies {
		return fmt.Errorf("%s on %s: status %d, %d messages, want %d: %s", body, n.name, status, len(msgs), replies, raw)
	}
	return nil
}

// reset is one RESET round trip on n: the webhook answered and the
// password SMS accepted by the fake Twilio.
func (f *haFixture) reset(n *node, phone string) error {
	if err := f.post(n, phone, "RESET", 0); err != nil {
		return err
	}
	if err := f.sms.wait(phone); err != nil {
		return fmt.Errorf("RESET on %s: %w", n.name, err)
	}
	return nil
}

// okEvents counts the audit events of action with outcome ok in s.
func okEvents(b *testing.B, s enroll.Store, action string) int {
	evs, err := s.Audit(context.Background(), enroll.AuditFilter{Action: action})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Outcome == "ok" {
			n++
		}
	}
	return n
}

// checkAudit stops the nodes and wants wantBolt and wantEtcd successful
// action events in the two stores: a benchmark whose operations failed
// measures nothing.
func (f *haFixture) checkAudit(b *testing.B, action string, wantBolt, wantEtcd int) {
	f.boltNode.stop(b)
	for _, n := range f.etcdNode {
		n.stop(b)
	}
	bs, err := bolt.Open(f.boltFile)
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	es := f.etcdStore(b)
	defer es.Close()
	if got := okEvents(b, bs, action); got != wantBolt {
		b.Errorf("bbolt: %d %s events ok, want %d", got, action, wantBolt)
	}
	if got := okEvents(b, es, action); got != wantEtcd {
		b.Errorf("etcd: %d %s events ok, want %d", got, action, wantEtcd)
	}
}

// BenchmarkResetEtcdVsBolt: the RESET round trip (signed webhook in,
// password set, reply out, password SMS accepted by Twilio) of a serve on
// the etcd store against one on bbolt, alternated in halves in the same
// run, at concurrency 1 and 8, on Samba AD and OpenLDAP. It then counts
// the etcd requests and fsyncs one RESET costs (etcd's own metrics).
func BenchmarkResetEtcdVsBolt(b *testing.B) {
	for _, lab := range []*ldaplab.Server{ldaplab.Samba(b), ldaplab.OpenLDAP(b)} {
		f := newHAFixture(b, lab, size(64, 8), 1)
		var boltN, etcdN int
		for _, conc := range []int{1, 8} {
			total := size(150, 4) * conc
			var gw [2]result // bolt, etcd
			for half := 0; half < 2; half++ {
				for k, n := range []*node{f.boltNode, f.etcdNode[0]} {
					r := run(b, conc, total/2, func(w, i int) error { return f.reset(n, f.phones[(i*conc+w)%len(f.phones)]) })
					gw[k].lat = append(gw[k].lat, r.lat...)
				}
			}
			boltN, etcdN = boltN+2*(total/2), etcdN+2*(total/2)
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}} {
				e, o := gw[1].pct(p.q), gw[0].pct(p.q)
				record(figure{sec: secHAReset, what: fmt.Sprintf("RESET round trip %s, concurrency %d (%d ops each)", p.name, conc, len(gw[1].lat)),
					dir: labName(lab), gateway: ms(e) + " ms", raw: ms(o) + " ms", ratio: ratio(float64(e), float64(o))})
			}
			b.ReportMetric(float64(gw[1].pct(0.5))/float64(gw[0].pct(0.5)), fmt.Sprintf("%s-etcd/bolt-p50-c%d", lab.Dialect, conc))
		}
		etcdN += f.resetCost(b, size(50, 4))
		f.checkAudit(b, "reset", boltN, etcdN)
	}
}

// resetCost counts what n sequential RESETs cost the etcd cluster, from the
// members' /metrics: gRPC requests by method, Raft proposals, WAL fsyncs
// and backend commits, less what the idle node costs (its session
// keep-alive, the store probe, the outbox poll) over the same time. Some
// reads come after the RESETs' replies and SMS (a node reads on for a few
// seconds after a burst): they are counted apart, until the read rate is
// back to idle. It returns the RESETs it made (on the etcd node).
func (f *haFixture) resetCost(b *testing.B, n int) int {
	idle := time.Duration(size(5, 1)) * time.Second
	f.settle(b) // the tail of the run before
	cli := f.cluster.Client(b)
	rev0 := f.mark(b, cli)
	m0 := f.etcdMetrics(b)
	time.Sleep(idle)
	m1 := f.etcdMetrics(b)
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := f.reset(f.etcdNode[0], f.phones[i%len(f.phones)]); err != nil {
			b.Fatal(err)
		}
	}
	busy := time.Since(start)
	m2 := f.etcdMetrics(b)
	t2 := time.Now()
	m3 := f.settle(b)
	tail := time.Since(t2)
	f.writeShapes(b, cli, rev0, f.mark(b, cli), n)
	bgRate := func(name string) float64 { return (m1[name] - m0[name]) / idle.Seconds() }
	during := func(name string) float64 { return (m2[name] - m1[name] - bgRate(name)*busy.Seconds()) / float64(n) }
	after := func(name string) float64 { return (m3[name] - m2[name] - bgRate(name)*tail.Seconds()) / float64(n) }
	var methods []string
	for k := range m3 {
		if strings.HasPrefix(k, "grpc:") && m3[k] != m1[k] {
			methods = append(methods, k)
		}
	}
	slices.Sort(methods)
	detailf("\netcd cost of one RESET on %s (%d sequential RESETs in %v, then %v until the reads settled; idle background subtracted):\n",
		labName(f.lab), n, busy.Round(time.Millisecond), tail.Round(time.Millisecond))
	detailf("  %-34s %8s %8s %10s\n", "", "during", "after", "idle")
	for _, k := range append(methods, "proposals", "wal_fsync", "backend_commit") {
		detailf("  %-34s %8.2f %8.2f %8.2f/s\n", strings.TrimPrefix(k, "grpc:"), during(k), after(k), bgRate(k))
	}
	detailf("  (proposals, wal_fsync, backend_commit: summed over the 3 members)\n")
	fsyncMean := (m2["wal_fsync_seconds"] - m1["wal_fsync_seconds"]) / max(1, m2["wal_fsync"]-m1["wal_fsync"])
	detailf("  WAL fsync: %.2f ms on average; %.1f ms of fsync per RESET on each member, one after another\n",
		fsyncMean*1000, fsyncMean*1000*during("wal_fsync")/3)
	other := 0.0
	for _, k := range methods {
		if k != txnKey && k != rangeKey {
			other += during(k)
		}
	}
	record(figure{sec: secHACost, what: fmt.Sprintf("etcd requests per RESET: Txn / Range (+ Range after the reply) / other; "+
		"Raft proposals; WAL fsyncs per member, mean fsync (%d RESETs)", n), dir: labName(f.lab),
		gateway: fmt.Sprintf("%.1f / %.1f (+%.1f) / %.1f; %.1f; %.1f, %.2f ms", during(txnKey), during(rangeKey), after(rangeKey), other,
			during("proposals")/3, during("wal_fsync")/3, fsyncMean*1000)})
	return n
}

// settle waits until the cluster serves fewer than 5 reads a second (at
// most a minute) and returns the metrics then.
func (f *haFixture) settle(b *testing.B) map[string]float64 {
	prev := f.etcdMetrics(b)
	for range 60 {
		time.Sleep(time.Second)
		m := f.etcdMetrics(b)
		if m[rangeKey]-prev[rangeKey] < 5 {
			return m
		}
		prev = m
	}
	return prev
}

// mark writes a marker key under the prefix and returns its revision: the
// write transactions of the RESETs lie between two marks.
func (f *haFixture) mark(b *testing.B, cli *clientv3.Client) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, f.prefix+markerKey, time.Now().String())
	if err != nil {
		b.Fatal(err)
	}
	return resp.Header.Revision
}

const markerKey = "bench-marker"

// writeShapes prints the write transactions between the marks from and to
// (each revision is one transaction that wrote), by the key classes they
// touched (the first element of the key below the prefix, keys.go of the
// etcd store), per RESET.
func (f *haFixture) writeShapes(b *testing.B, cli *clientv3.Client, from, to int64, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	byRev := map[int64]map[string]int{}
	wch := cli.Watch(ctx, f.prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1))
	for last := from; last < to; {
		resp, ok := <-wch
		if !ok || resp.Err() != nil {
			b.Fatalf("watch %s from revision %d: %v", f.prefix, from+1, resp.Err())
		}
		for _, ev := range resp.Events {
			last = ev.Kv.ModRevision
			class, _, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), f.prefix), "/")
			if last >= to || class == markerKey {
				continue
			}
			if class == "meta" {
				class = "meta/seq"
			}
			if ev.Type == clientv3.EventTypeDelete {
				class = "-" + class
			}
			if byRev[last] == nil {
				byRev[last] = map[string]int{}
			}
			byRev[last][class]++
		}
	}
	shapes := map[string]int{}
	for _, classes := range byRev {
		var parts []string
		for c, k := range classes {
			parts = append(parts, fmt.Sprintf("%s×%d", c, k))
		}
		slices.Sort(parts)
		shapes[strings.Join(parts, " + ")]++
	}
	detailf("  write transactions per RESET (%d revisions; key classes written, - deleted):\n", len(byRev))
	for _, k := range slices.Sorted(maps.Keys(shapes)) {
		detailf("    %5.2f  %s\n", float64(shapes[k])/float64(n), k)
	}
}

// The etcdMetrics keys of etcd's transactions and reads.
const txnKey, rangeKey = "grpc:etcdserverpb.KV/Txn", "grpc:etcdserverpb.KV/Range"

// etcdMetrics sums the counters resetCost reads over the cluster's
// members: "grpc:SERVICE/METHOD" (unary requests handled), "proposals"
// (committed), "wal_fsync", "backend_commit".
func (f *haFixture) etcdMetrics(b *testing.B) map[string]float64 {
	out := map[string]float64{}
	for _, ep := range f.cluster.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/metrics", nil)
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			b.Fatalf("etcd metrics of %s: %v", ep, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			name, rest, _ := strings.Cut(line, " ")
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil || strings.HasPrefix(line, "#") {
				continue
			}
			switch {
			case strings.HasPrefix(name, "grpc_server_handled_total{") && strings.Contains(name, `grpc_type="unary"`):
				out["grpc:"+label(name, "grpc_service")+"/"+label(name, "grpc_method")] += v
			case name == "etcd_server_proposals_committed_total":
				out["proposals"] += v
			case name == "etcd_disk_wal_fsync_duration_seconds_count":
				out["wal_fsync"] += v
			case name == "etcd_disk_wal_fsync_duration_seconds_sum":
				out["wal_fsync_seconds"] += v
			case name == "etcd_disk_backend_commit_duration_seconds_count":
				out["backend_commit"] += v
			}
		}
		resp.Body.Close()
		cancel()
		if err := sc.Err(); err != nil {
			b.Fatalf("etcd metrics of %s: %v", ep, err)
		}
	}
	return out
}

// label is the value of label key in a Prometheus series name.
func label(series, key string) string {
	_, rest, ok := strings.Cut(series, key+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// BenchmarkTwoNodes: webhook replies per second (HELP, no directory work;
// STATUS, one directory search) at concurrency 8 from two serve nodes on
// one etcd prefix, the requests spread over both as a load balancer
// without stickiness does, against one node on etcd and one on bbolt.
func BenchmarkTwoNodes(b *testing.B) {
	for _, lab := range []*ldaplab.Server{ldaplab.Samba(b), ldaplab.OpenLDAP(b)} {
		f := newHAFixture(b, lab, size(16, 4), 2)
		leaders := 0
		for _, n := range f.etcdNode {
			if _, lead := n.health(); lead {
				leaders++
			}
		}
		if leaders != 1 {
			b.Fatalf("%d of the two etcd nodes lead, want 1", leaders)
		}
		setups := []struct {
			name  string
			nodes []*node
		}{{"bbolt, one node", []*node{f.boltNode}}, {"etcd, one node", f.etcdNode[:1]}, {"etcd, two nodes", f.etcdNode}}
		var statusBolt, statusEtcd int
		for _, cmd := range []string{"HELP", "STATUS"} {
			total := size(2000, 40)
			res := make([]result, len(setups))
			var txn, rng float64 // etcd requests of the etcd setups' runs
			for half := 0; half < 2; half++ {
				for k, s := range setups {
					var m0 map[string]float64
					if k > 0 {
						m0 = f.etcdMetrics(b)
					}
					r := run(b, 8, total/2, func(w, i int) error {
						return f.post(s.nodes[i%len(s.nodes)], f.phones[i%len(f.phones)], cmd, 1)
					})
					if k > 0 {
						m1 := f.etcdMetrics(b)
						txn += m1[txnKey] - m0[txnKey]
						rng += m1[rangeKey] - m0[rangeKey]
					}
					res[k].lat, res[k].elapsed = append(res[k].lat, r.lat...), res[k].elapsed+r.elapsed
				}
			}
			perReply := fmt.Sprintf("%.1f Txn + %.1f Range", txn/float64(2*total), rng/float64(2*total))
			detailf("%s on %s, etcd: %s per reply (%d replies)\n", cmd, labName(lab), perReply, 2*total)
			if cmd == "STATUS" {
				statusBolt, statusEtcd = len(res[0].lat), len(res[1].lat)+len(res[2].lat)
			}
			for k, s := range setups[1:] {
				record(figure{sec: secHANodes, what: fmt.Sprintf("%s replies/s, concurrency 8, %s vs bbolt, one node (%d ops each, p99 %s vs %s ms; etcd: %s per reply)",
					cmd, s.name, len(res[k+1].lat), ms(res[k+1].pct(0.99)), ms(res[0].pct(0.99)), perReply),
					dir: labName(lab), gateway: fmt.Sprintf("%.0f/s", res[k+1].rate()), raw: fmt.Sprintf("%.0f/s", res[0].rate()),
					ratio: ratio(res[k+1].rate(), res[0].rate())})
			}
			b.ReportMetric(res[2].rate(), fmt.Sprintf("%s-%s-2nodes-req/s", lab.Dialect, strings.ToLower(cmd)))
		}
		f.checkAudit(b, "status", statusBolt, statusEtcd)
	}
}
