package etcdlab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// serverName names the lab's server in skip reports and errors.
const serverName = "etcd cluster"

// startTimeout bounds a cluster's start and a member's restart (about 1-3 s
// on an idle machine; the test machines are shared and noisy).
const startTimeout = 60 * time.Second

// errNotRequested is why the lab skips outside REPLYRESET_INTEGRATION=1 and
// CI, as directory/ldaplab does.
var errNotRequested = errors.New("real etcd clusters start only with REPLYRESET_INTEGRATION=1 or CI set")

// Options shape a private cluster (New).
type Options struct {
	// Members is the number of members; 3 when zero.
	Members int
	// TLS serves clients over https with client-certificate authentication,
	// from a throwaway CA (Cluster.CAFile, ClientCertFile, ClientKeyFile).
	TLS bool
	// Auth enables etcd authentication with a root user (Cluster.Username,
	// Cluster.Password).
	Auth bool
}

// Cluster is a running etcd cluster on 127.0.0.1.
type Cluster struct {
	// CAFile, ClientCertFile and ClientKeyFile are PEM files of a TLS
	// cluster (Options.TLS): the CA that signed the members' and the
	// client's certificates, and the client's certificate and key.
	CAFile, ClientCertFile, ClientKeyFile string
	// Username and Password are the root user of a cluster with
	// Options.Auth.
	Username, Password string

	opts    Options
	dir     string
	members []*Member
	tls     *tls.Config // the client's, nil without TLS

	httpOnce sync.Once
	httpc    *http.Client // for /health
}

// Shared returns the process's shared three-member cluster, starting it on
// first use. Tests share it through Prefix; fault tests use New.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	need(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		t0 := time.Now()
		shared.c, shared.err = start(Options{})
		if shared.err == nil {
			t.Logf("etcdlab: shared etcd cluster ready in %v", time.Since(t0).Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err) // a failed start is remembered: later tests fail fast
	}
	return shared.c
}

var shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
}

// New starts a private cluster for t, stopped when t ends: for tests that
// kill, pause or restart members, or need TLS or authentication.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	need(t)
	t0 := time.Now()
	c, err := start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	t.Logf("etcdlab: etcd cluster of %d members ready in %v", len(c.members), time.Since(t0).Round(time.Millisecond))
	return c
}

// need skips t outside REPLYRESET_INTEGRATION=1 and CI.
func need(t testing.TB) {
	t.Helper()
	if os.Getenv("REPLYRESET_INTEGRATION") != "1" && os.Getenv("CI") == "" {
		ldaplab.Skip(t, serverName, fmt.Errorf("etcdlab: %s not started: %w", serverName, errNotRequested))
	}
}

// StopAll stops the shared cluster and removes its files. Main calls it.
func StopAll() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.stop()
	}
	shared.c, shared.err = nil, nil
}

// Main is the TestMain of a package whose tests use the lab: it runs the
// tests, stops the etcd and directory servers and reports the tests skipped
// for want of a server (ldaplab.ReportSkipped).
//
//	func TestMain(m *testing.M) { etcdlab.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	ldaplab.StopAll()
	ldaplab.ReportSkipped(code)
	os.Exit(code)
}

// Endpoints returns the members' client URLs.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.ClientURL
	}
	return eps
}

// Config returns a client configuration for every member, with the
// cluster's TLS and credentials, for tests that build their own client.
func (c *Cluster) Config() clientv3.Config {
	return clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 5 * time.Second,
		TLS:         c.TLSConfig(),
		Username:    c.Username,
		Password:    c.Password,
		Logger:      zap.NewNop(),
	}
}

// Client returns a client of every member (Config), closed when t ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(c.Config())
	if err != nil {
		t.Fatalf("etcdlab: client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

var prefixes atomic.Int64

// Prefix returns a key prefix unique to t in this process ("/t/TestX-1/"),
// so that tests share one cluster without colliding.
func (c *Cluster) Prefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r < 0x20 {
			return '_'
		}
		return r
	}, t.Name())
	return "/t/" + name + "-" + strconv.FormatInt(prefixes.Add(1), 10) + "/"
}

// TLSConfig returns the client TLS configuration of a TLS cluster (the CA
// and the client certificate), nil otherwise.
func (c *Cluster) TLSConfig() *tls.Config {
	if c.tls == nil {
		return nil
	}
	return c.tls.Clone()
}

// start starts a cluster, retrying with fresh ports when one was taken
// between choosing it and the member binding it.
func start(opts Options) (*Cluster, error) {
	if opts.Members == 0 {
		opts.Members = 3
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		c, err := startOnce(bin, opts)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("etcdlab: a member's port was taken")

func startOnce(bin string, opts Options) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "replyreset-etcd-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("etcdlab: %w", err)
	}
	c := &Cluster{opts: opts, dir: dir}
	if opts.TLS {
		if err := c.writeCerts(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	ports, err := freePorts(2 * opts.Members)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	var initial []string
	for i := range opts.Members {
		m := &Member{
			Name:      "m" + strconv.Itoa(i),
			ClientURL: scheme + "://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			PeerURL:   "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			c:         c,
		}
		m.logPath = filepath.Join(dir, m.Name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	token := filepath.Base(dir)
	for _, m := range c.members {
		m.args = []string{bin,
			"--name", m.Name, "--data-dir", filepath.Join(dir, m.Name),
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", token,
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--log-level", "warn",
		}
		if opts.TLS {
			m.args = append(m.args, "--cert-file", filepath.Join(dir, "server.pem"),
				"--key-file", filepath.Join(dir, "server-key.pem"),
				"--trusted-ca-file", c.CAFile, "--client-cert-auth")
		}
		if err := m.spawn(); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitMajority(); err != nil {
		c.stop()
		return nil, err
	}
	if opts.Auth {
		if err := c.enableAuth(); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, held open
// together while choosing so that they differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdlab: free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitMajority waits until a majority of the members answer healthy.
func (c *Cluster) waitMajority() error {
	deadline := time.Now().Add(startTimeout)
	for {
		healthy := 0
		var lastErr error
		for _, m := range c.members {
			if err := m.exitErr(); err != nil {
				return err
			}
			if err := m.health(); err != nil {
				lastErr = err
			} else {
				healthy++
			}
		}
		if healthy > len(c.members)/2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdlab: %s not ready after %v: %d of %d members healthy (last probe: %v); %s",
				serverName, startTimeout, healthy, len(c.members), lastErr, c.tails())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tails returns the end of every member's log, for error messages.
func (c *Cluster) tails() string {
	var b strings.Builder
	for _, m := range c.members {
		fmt.Fprintf(&b, "\n--- %s (%s) log ends with:\n%s", m.Name, m.logPath, fileTail(m.logPath, 2000))
	}
	return b.String()
}

// stop kills every member and removes the cluster's files.
func (c *Cluster) stop() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(m.stop)
	}
	wg.Wait()
	_ = os.RemoveAll(c.dir)
}
