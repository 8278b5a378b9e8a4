package election_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd these tests run against: REPLYRESET_TEST_ETCD (client URLs,
// comma-separated) when set, else one member this test binary starts from
// the cached server binary (REPLYRESET_ETCD_CACHE, default
// os.UserCacheDir()/replyreset/etcd-v3.6.16, which `make etcd` builds).
// When the shared harness enroll/store/etcdlab lands, it replaces this.
var testEtcd struct {
	endpoints []string
	err       error
	cmd       *exec.Cmd
	dir       string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if c := testEtcd.cmd; c != nil {
		_ = c.Process.Signal(syscall.SIGTERM)
		_ = c.Wait()
		os.RemoveAll(testEtcd.dir)
	}
	os.Exit(code)
}

func endpoints(t testing.TB) []string {
	t.Helper()
	if testEtcd.endpoints == nil && testEtcd.err == nil {
		if ep := os.Getenv("REPLYRESET_TEST_ETCD"); ep != "" {
			testEtcd.endpoints = strings.Split(ep, ",")
		} else {
			testEtcd.endpoints, testEtcd.err = startEtcd()
		}
	}
	if testEtcd.err != nil {
		t.Fatalf("these tests need a real etcd: %v", testEtcd.err)
	}
	return testEtcd.endpoints
}

func etcdBinary() string {
	if p := os.Getenv("REPLYRESET_ETCD_CACHE"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "replyreset", "etcd-v3.6.16")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startEtcd starts one member on loopback and waits until it is healthy.
func startEtcd() ([]string, error) {
	bin := etcdBinary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no etcd server binary (make etcd): %w", err)
	}
	client, err := freePort()
	if err != nil {
		return nil, err
	}
	peer, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "election-etcd-")
	if err != nil {
		return nil, err
	}
	cu, pu := fmt.Sprintf("http://127.0.0.1:%d", client), fmt.Sprintf("http://127.0.0.1:%d", peer)
	cmd := exec.Command(bin, "--name", "m0", "--data-dir", filepath.Join(dir, "m0"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "m0="+pu, "--log-level", "warn")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	testEtcd.cmd, testEtcd.dir = cmd, dir
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := hc.Get(cu + "/health")
		if err == nil {
			ok := resp.StatusCode == http.StatusOK
			resp.Body.Close()
			if ok {
				return []string{cu}, nil
			}
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
	return nil, fmt.Errorf("etcd on %s not healthy after 30s:\n%s", cu, log)
}

// newClient is a client of its own (a node), closed when the test ends.
func newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(t), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// prefix is a key prefix no other test uses.
func prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "/test-election/" + hex.EncodeToString(b) + "/"
}
