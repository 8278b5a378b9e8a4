package ldaplab

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Instance is one more slapd process serving the lab OpenLDAP server's own
// database (the same slapd.d and LMDB files: LMDB is safe for several
// processes), on another LDAPS port: a second directory server with the
// same data, for failover tests. Stop and Start kill and restart it;
// the lab server itself is never touched. It stops when the test ends.
type Instance struct {
	LDAPSURL string // ldaps://127.0.0.1:<port>, verified with the lab's CAFile

	s    *Server
	port int

	mu   sync.Mutex
	proc *process
}

// StartInstance starts another slapd on s's database, listening for LDAPS
// on 127.0.0.1:port. Only OpenLDAP lab servers have instances.
func (s *Server) StartInstance(t testing.TB, port int) *Instance {
	t.Helper()
	if s.Dialect != DialectOpenLDAP {
		t.Fatalf("ldaplab: StartInstance: %s lab servers have no second instance", s.Dialect)
	}
	in := &Instance{LDAPSURL: "ldaps://127.0.0.1:" + strconv.Itoa(port), s: s, port: port}
	t.Cleanup(in.Stop)
	if err := in.start(); err != nil {
		t.Fatal(err)
	}
	return in
}

// Stop kills the instance (SIGKILL, as a crash or a power cut would). It
// does nothing if it is already stopped.
func (in *Instance) Stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc != nil {
		in.proc.kill()
		in.proc = nil
	}
}

// Start brings a stopped instance back on the same port.
func (in *Instance) Start(t testing.TB) {
	t.Helper()
	if err := in.start(); err != nil {
		t.Fatal(err)
	}
}

func (in *Instance) start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc != nil {
		return nil
	}
	if err := checkPortsFree("OpenLDAP slapd instance", in.port); err != nil {
		return err
	}
	out := filepath.Join(in.s.dir, fmt.Sprintf("slapd-%d.out", in.port))
	p, err := startProcess("slapd instance", out,
		"slapd", "-d", "0", "-F", filepath.Join(in.s.dir, "slapd.d"), "-h", in.LDAPSURL+"/")
	if err != nil {
		return err
	}
	if err := p.waitReady(20*time.Second, in.probe); err != nil {
		return err
	}
	in.proc = p
	return nil
}

// probe binds as the lab's admin over verified LDAPS.
func (in *Instance) probe() error {
	c, err := ldap.DialURL(in.LDAPSURL, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}),
		ldap.DialWithTLSConfig(in.s.TLSConfig()))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetTimeout(opTimeout)
	return c.Bind(in.s.AdminDN, in.s.AdminPassword)
}
