package demodir

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/replyreset/replyreset/directory"
)

// DefaultBaseDN is the demo domain's naming context.
const DefaultBaseDN = "DC=demo,DC=example"

// DefaultLockoutThreshold is the number of failed binds that lock an account.
const DefaultLockoutThreshold = 5

// DemoLockoutDuration is the lockout duration `replyreset demo` should
// use (Options.LockoutDuration 0 means until unlocked, as the product's
// lockout tests expect by default).
const DemoLockoutDuration = 30 * time.Minute

// Options configure a demo directory. The zero value listens for LDAPS on
// a free port of 127.0.0.1, without sample users.
type Options struct {
	// Addr is the LDAPS address, a loopback IP and a port (0: any free
	// port). Default 127.0.0.1:0.
	Addr string
	// StartTLSAddr, when set, adds a plain ldap:// listener on which
	// clients must use StartTLS before binding.
	StartTLSAddr string
	// BaseDN is the domain's naming context (default DefaultBaseDN).
	BaseDN string
	// Seed adds the sample organisation (see seed.go) for the demo.
	Seed bool
	// Now is the server's clock (default time.Now); see also SetNow and
	// Advance.
	Now func() time.Time
	// LockoutThreshold is the number of failed binds that lock an account:
	// 0 means DefaultLockoutThreshold, a negative number never locks.
	LockoutThreshold int
	// LockoutDuration is how long a lockout lasts; 0 means until an
	// administrator (or the product) unlocks the account.
	LockoutDuration time.Duration
	// MinPasswordLength is the domain's minimum (default 7); complexity is
	// always required, as on a default AD domain.
	MinPasswordLength int
	// MaxPasswordAge makes passwords expire (data 532); 0: never.
	MaxPasswordAge time.Duration
	// CAFile is where Start writes the CA certificate (PEM). Empty: a
	// temporary file, removed by Close.
	CAFile string
	// Logger receives operations at debug level (never passwords) and
	// lockouts at info level. Default: discard.
	Logger *slog.Logger
}

// Account is a fixed account of the demo domain.
type Account struct {
	Username string // sAMAccountName
	DN       string
	Password string
}

// Server is a running demo directory.
type Server struct {
	store   *store
	clock   *clock
	log     *slog.Logger
	host    string // the DC's DNS name
	caPEM   []byte
	caFile  string
	tmpDir  string
	tracker *connTracker
	ldaps   *listener
	plain   *listener // nil without StartTLSAddr

	admin, service, helpdesk Account
	adminGroupDN             string
	usersDN                  string

	// hinted records the DNs whose last modify carried the policy hints
	// control (PolicyHinted).
	hinted sync.Map

	closeOnce sync.Once
}

// Start creates the directory and starts listening; ctx bounds the start
// only. Call Close to stop it.
func Start(ctx context.Context, opt Options) (*Server, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.BaseDN == "" {
		opt.BaseDN = DefaultBaseDN
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.LockoutThreshold == 0 {
		opt.LockoutThreshold = DefaultLockoutThreshold
	}
	if opt.LockoutThreshold < 0 {
		opt.LockoutThreshold = 0
	}
	if opt.MinPasswordLength <= 0 {
		opt.MinPasswordLength = 7
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	realm, netbios, err := realmOf(opt.BaseDN)
	if err != nil {
		return nil, err
	}
	s := &Server{clock: &clock{now: opt.Now}, log: opt.Logger, host: "dc1." + realm, tracker: &connTracker{}}
	s.store = &store{clock: s.clock, log: opt.Logger, realm: realm, netbios: netbios,
		entries: map[string]*entry{}, normCache: map[string]string{}}
	if err := s.build(opt); err != nil {
		return nil, err
	}
	caPEM, cert, err := certificates(s.host)
	if err != nil {
		return nil, err
	}
	s.caPEM = caPEM
	if err := s.writeCA(opt.CAFile); err != nil {
		return nil, err
	}
	tc := tlsConfig(cert, s.tracker)
	if s.ldaps, err = s.listen(ctx, opt.Addr, tc, true); err != nil {
		s.Close()
		return nil, err
	}
	if opt.StartTLSAddr != "" {
		if s.plain, err = s.listen(ctx, opt.StartTLSAddr, tc, false); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.log.Info("demo directory started", "url", s.URL(), "base_dn", opt.BaseDN, "users", len(s.Users()))
	return s, nil
}

// realmOf derives the DNS and NetBIOS domain names from the base DN.
func realmOf(base string) (realm, netbios string, err error) {
	p, err := ldap.ParseDN(base)
	if err != nil || len(p.RDNs) == 0 {
		return "", "", fmt.Errorf("demodir: base DN %q is not a distinguished name", base)
	}
	var labels []string
	for _, r := range p.RDNs {
		a := r.Attributes[0]
		if !strings.EqualFold(a.Type, "dc") {
			return "", "", fmt.Errorf("demodir: base DN %q: want DC= components only, as an AD domain", base)
		}
		labels = append(labels, strings.ToLower(a.Value))
	}
	return strings.Join(labels, "."), strings.ToUpper(labels[0]), nil
}

func (s *Server) writeCA(path string) error {
	if path == "" {
		dir, err := os.MkdirTemp("", "replyreset-demodir-")
		if err != nil {
			return fmt.Errorf("demodir: CA file: %w", err)
		}
		s.tmpDir = dir
		path = filepath.Join(dir, "demodir-ca.pem")
	}
	if err := os.WriteFile(path, s.caPEM, 0o644); err != nil {
		if s.tmpDir != "" {
			_ = os.RemoveAll(s.tmpDir)
		}
		return fmt.Errorf("demodir: CA file: %w", err)
	}
	s.caFile = path
	return nil
}

// hclogWriter passes gldap's own log lines (connection errors, mostly
// clients going away) to the debug log.
type hclogWriter struct{ log *slog.Logger }

func (w hclogWriter) Write(p []byte) (int, error) {
	w.log.Debug("demo directory: gldap", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

// listen starts one gldap server on addr (a loopback IP; port 0 picks a
// free one).
func (s *Server) listen(ctx context.Context, addr string, tc *tls.Config, ldaps bool) (*listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("demodir: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("demodir: address %q: the demo directory listens on a loopback IP address only", addr)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("demodir: start: %w", err)
		}
		a := addr
		if port == "0" {
			if a, err = freePort(host); err != nil {
				return nil, err
			}
		}
		l := &listener{ldaps: ldaps, addr: a, done: make(chan error, 1)}
		srv, err := gldap.NewServer(gldap.WithOnClose(l.closed), gldap.WithLogger(hclog.New(&hclog.LoggerOptions{
			Name: "gldap", Level: hclog.Error, Output: hclogWriter{s.log}})))
		if err != nil {
			return nil, fmt.Errorf("demodir: %w", err)
		}
		mux, err := s.routes(l, tc)
		if err != nil {
			return nil, err
		}
		if err := srv.Router(mux); err != nil {
			return nil, fmt.Errorf("demodir: %w", err)
		}
		l.srv = srv
		var runOpts []gldap.Option
		if ldaps {
			runOpts = append(runOpts, gldap.WithTLSConfig(tc))
		}
		go func() { l.done <- srv.Run(a, runOpts...) }()
		if err := waitListening(ctx, l); err != nil {
			lastErr = err
			if port == "0" {
				continue // someone took the port meanwhile
			}
			return nil, err
		}
		return l, nil
	}
	return nil, lastErr
}

// freePort returns host:port with a port free right now.
func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("demodir: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitListening waits for gldap to listen. gldap reports ready before it
// knows whether the listen worked, and returns right after a failure.
func waitListening(ctx context.Context, l *listener) error {
	deadline := time.Now().Add(5 * time.Second)
	for !l.srv.Ready() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = l.srv.Stop()
			return fmt.Errorf("demodir: %s: listener not ready", l.addr)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-l.done:
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("demodir: listen on %s: %w", l.addr, err)
	case <-time.After(20 * time.Millisecond):
		return nil
	}
}

// Close stops the server, ending open client connections.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, l := range []*listener{s.ldaps, s.plain} {
				if l != nil && l.srv != nil {
					_ = l.srv.Stop()
				}
			}
		}()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		timeout := time.After(3 * time.Second)
	wait:
		for {
			s.tracker.closeAll()
			select {
			case <-done:
				break wait
			case <-timeout:
				// A plain ldap:// client that never started TLS keeps its
				// connection; gldap ends it when the client goes.
				s.log.Warn("demo directory: some client connections are still open after close")
				break wait
			case <-tick.C:
			}
		}
		if s.tmpDir != "" {
			_ = os.RemoveAll(s.tmpDir)
		}
	})
	return nil
}

// URL is the LDAPS URL (ldaps://127.0.0.1:port).
func (s *Server) URL() string { return "ldaps://" + s.ldaps.addr }

// StartTLSURL is the ldap:// URL for StartTLS, or "" without StartTLSAddr.
func (s *Server) StartTLSURL() string {
	if s.plain == nil {
		return ""
	}
	return "ldap://" + s.plain.addr
}

// CAPEM is the PEM certificate of the CA that signed the server's
// certificate (valid for 127.0.0.1, ::1 and localhost).
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// CAFile is the path of the CA certificate file (directory.ca_file).
func (s *Server) CAFile() string { return s.caFile }

// WriteCAFile writes the CA certificate into dir and returns the path.
func (s *Server) WriteCAFile(dir string) (string, error) {
	path := filepath.Join(dir, "demodir-ca.pem")
	if err := os.WriteFile(path, s.caPEM, 0o644); err != nil {
		return "", fmt.Errorf("demodir: write CA file: %w", err)
	}
	return path, nil
}

// BaseDN is the naming context.
func (s *Server) BaseDN() string { return s.store.base }

// Realm is the DNS domain (demo.example), the suffix of userPrincipalName.
func (s *Server) Realm() string { return s.store.realm }

// Administrator is the built-in domain administrator (may write
// anything; never locked out).
func (s *Server) Administrator() Account { return s.admin }

// ServiceAccount is the account the product binds with: it may reset
// passwords, set pwdLastSet and unlock the users of UsersDN and the sample
// OUs, and nothing else.
func (s *Server) ServiceAccount() Account { return s.service }

// HelpdeskAdmin is a member of the admin group through the nested group
// Tier2, with a mail address: the demo's console login.
func (s *Server) HelpdeskAdmin() Account { return s.helpdesk }

// AdminGroupDN is the admin group (CN=Helpdesk,OU=Groups,...).
func (s *Server) AdminGroupDN() string { return s.adminGroupDN }

// UsersDN is where AddUser puts users by default (OU=Staff,...).
func (s *Server) UsersDN() string { return s.usersDN }

// DirectoryConfig is the product's directory configuration for this
// server: dialect ad, LDAPS verified against CAFile, bound as the service
// account, with the admin group.
func (s *Server) DirectoryConfig() directory.Config {
	c := directory.DefaultConfig()
	c.Dialect = directory.DialectAD
	c.URLs = []string{s.URL()}
	c.CAFile = s.caFile
	c.BindDN, c.BindPassword = s.service.DN, s.service.Password
	c.BaseDN = s.store.base
	c.AdminGroup = s.adminGroupDN
	c.Timeout = 5 * time.Second
	return c
}

// randomPassword returns a password that meets the complexity policy.
func randomPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	_, _ = io.ReadFull(rand.Reader, b)
	out := []byte("Aa1#")
	for _, c := range b {
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}
