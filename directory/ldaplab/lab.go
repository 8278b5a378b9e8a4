package ldaplab

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Dialect names, as in the product's directory.dialect setting.
const (
	DialectAD       = "ad"
	DialectOpenLDAP = "openldap"
)

// ErrUnavailable wraps the reasons a server cannot run on this machine at all
// (a missing binary, not root). Under REPLYRESET_INTEGRATION=1 or CI, where
// Samba and OpenLDAP start their servers, it fails the test like any other
// start error.
var ErrUnavailable = errors.New("ldaplab: directory server unavailable on this machine")

// errNotRequested is why Samba and OpenLDAP skip outside
// REPLYRESET_INTEGRATION=1 and CI: a plain `go test ./...` starts no real
// server, so it passes as any user, and packages tested in parallel cannot
// collide on Samba's fixed ports (only `make test` gives each test binary a
// network namespace of its own).
var errNotRequested = errors.New("real directory servers start only with REPLYRESET_INTEGRATION=1 or CI set")

// Server is one running directory server and the accounts set up in it.
type Server struct {
	Dialect     string // DialectAD or DialectOpenLDAP
	LDAPSURL    string // ldaps://127.0.0.1:636 (Samba) or ldaps://127.0.0.1:3636 (slapd)
	StartTLSURL string // the ldap:// URL, for use with StartTLS
	CAFile      string // PEM of the server's self-signed certificate (SAN IP:127.0.0.1)

	BaseDN  string // naming context
	UsersDN string // container where AddUser creates users

	// AdminDN is the domain Administrator (Samba) or the rootdn (slapd): for
	// fixtures only, since the rootdn bypasses ppolicy.
	AdminDN       string
	AdminPassword string

	// ServiceDN is the account the product binds with: a delegated account
	// that may reset passwords and unlock users in UsersDN and to which the
	// password policy applies.
	ServiceDN       string
	ServicePassword string

	// AdminGroupDN is the group "Helpdesk"; its member is the group "Tier2",
	// whose member is the user HelpdeskDN (so membership is nested).
	AdminGroupDN     string
	HelpdeskDN       string
	HelpdeskUsername string
	HelpdeskPassword string

	dir   string // this process's copy of the server's files
	proc  *process
	roots *x509.CertPool
}

// TLSConfig returns a client TLS configuration that verifies the server
// certificate against CAFile.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// instance is one kind of server, started at most once per process.
type instance struct {
	name  string
	start func() (*Server, error)

	mu   sync.Mutex
	srv  *Server
	err  error         // a failed start is remembered so that later tests fail fast
	took time.Duration // how long the start took, until reported
}

var (
	sambaLab    = &instance{name: "Samba AD DC", start: startSamba}
	openldapLab = &instance{name: "OpenLDAP slapd", start: startOpenLDAP}
)

func (in *instance) get() (*Server, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.srv == nil && in.err == nil {
		t0 := time.Now()
		in.srv, in.err = in.start()
		in.took = time.Since(t0)
	}
	return in.srv, in.err
}

// startTime returns, once, how long the start took, for the test log.
func (in *instance) startTime() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	d := in.took
	in.took = 0
	return d
}

func (in *instance) stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.srv != nil {
		in.srv.proc.kill()
		_ = os.RemoveAll(in.srv.dir)
	}
	in.srv, in.err = nil, nil
}

// StartSamba starts (once per process) the Samba AD DC and returns it. Tests
// use Samba instead; this is for programs such as the bench that have no
// testing.TB.
func StartSamba() (*Server, error) { return sambaLab.get() }

// StartOpenLDAP starts (once per process) slapd with ppolicy and returns it.
func StartOpenLDAP() (*Server, error) { return openldapLab.get() }

// Samba returns the process's Samba AD DC, starting it on first use.
func Samba(t testing.TB) *Server {
	t.Helper()
	return sambaLab.need(t)
}

// OpenLDAP returns the process's OpenLDAP slapd, starting it on first use.
func OpenLDAP(t testing.TB) *Server {
	t.Helper()
	return openldapLab.need(t)
}

func (in *instance) need(t testing.TB) *Server {
	t.Helper()
	if !strict() {
		Skip(t, in.name, fmt.Errorf("ldaplab: %s not started: %w", in.name, errNotRequested))
	}
	s, err := in.get()
	if err == nil {
		if took := in.startTime(); took > 0 {
			t.Logf("ldaplab: %s ready in %v", in.name, took.Round(time.Millisecond))
		}
		return s
	}
	t.Fatal(err)
	return nil
}

// strict reports whether a server that cannot run must fail the test.
func strict() bool {
	return os.Getenv("REPLYRESET_INTEGRATION") == "1" || os.Getenv("CI") != ""
}

// StopAll stops every server this process started and removes their files.
// Call it from TestMain after m.Run. A later Samba or OpenLDAP call starts a
// fresh server.
func StopAll() {
	var wg sync.WaitGroup
	for _, in := range []*instance{sambaLab, openldapLab} {
		wg.Go(in.stop)
	}
	wg.Wait()
}

// requireTools returns an ErrUnavailable error naming what is missing. The
// lab needs root: Samba binds port 389 and runs only as root, and `make test`
// gives each test binary its own network namespace, which needs root too.
func requireTools(server string, tools ...string) error {
	var missing []string
	for _, tool := range tools {
		if _, err := lookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s needs %s, not found in PATH or /usr/sbin (install with scripts/install-test-deps.sh)",
			ErrUnavailable, server, strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: %s: the lab must run as root (Samba binds port 389 and runs only as root; `make test` "+
			"gives each test binary its own network namespace, which needs root too)", ErrUnavailable, server)
	}
	return nil
}

// lookTool finds a program in PATH, or in /usr/sbin, which is not in every
// user's PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}

// newRunDir makes this process's directory for one server. The name carries
// the PID so that a later process can remove directories that a killed test
// process left behind.
func newRunDir(kind string) (string, error) {
	removeStaleRunDirs()
	return os.MkdirTemp("", runDirPrefix+strconv.Itoa(os.Getpid())+"-"+kind+"-")
}

const runDirPrefix = "replyreset-lab-"

var staleOnce sync.Once

func removeStaleRunDirs() {
	staleOnce.Do(func() {
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*-*-*"))
		for _, d := range dirs {
			pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), runDirPrefix), "-")
			pid, err := strconv.Atoi(pidText)
			if err != nil || pid == os.Getpid() || processAlive(pid) {
				continue
			}
			_ = os.RemoveAll(d)
		}
	})
}
