package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StoreConfig is the `store:` section: where the data lives (one bbolt
// file, or an etcd cluster shared by several nodes) and the sealing key.
type StoreConfig struct {
	Backend string `yaml:"backend"` // bolt | etcd
	// KeyFile is the sealing key (default data_dir/replyreset.key): the
	// same file on every node of a cluster.
	KeyFile string     `yaml:"key_file"`
	Etcd    EtcdConfig `yaml:"etcd"`
}

// EtcdConfig is `store.etcd`: how a node reaches the etcd cluster.
type EtcdConfig struct {
	Endpoints    []string      `yaml:"endpoints"`
	Prefix       string        `yaml:"prefix"`
	CAFile       string        `yaml:"ca_file"`
	CertFile     string        `yaml:"cert_file"` // client certificate (mutual TLS)
	KeyFile      string        `yaml:"key_file"`
	Username     string        `yaml:"username"`
	Password     string        `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
}

// The store backends.
const (
	backendBolt = "bolt"
	backendEtcd = "etcd"
)

// DefaultStoreConfig returns the documented defaults of `store:`.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{Backend: backendBolt,
		Etcd: EtcdConfig{Endpoints: []string{}, Prefix: "/replyreset/", DialTimeout: 5 * time.Second}}
}

// keyFile is the sealing key's path for cfg.
func (c *Config) keyFile() string {
	if c.Store.KeyFile != "" {
		return c.Store.KeyFile
	}
	return filepath.Join(c.DataDir, "replyreset.key")
}

// problems validates `store:`. readFile reads the files it names, so
// that one that cannot be read is said now rather than at the first
// connection. Paths are full key paths.
func (c StoreConfig) problems(readFile func(string) ([]byte, error)) []*ConfigError {
	var errs []*ConfigError
	bad := func(path, format string, a ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	switch c.Backend {
	case backendBolt, backendEtcd:
	default:
		bad("store.backend", "must be bolt (one data file in data_dir) or etcd (a cluster shared by several nodes), not %q", c.Backend)
	}
	if c.KeyFile != "" {
		if st, err := os.Stat(c.KeyFile); err == nil && !st.Mode().IsRegular() {
			bad("store.key_file", "%s is not a regular file", c.KeyFile)
		} else if os.IsNotExist(err) {
			if st, derr := os.Stat(filepath.Dir(c.KeyFile)); derr != nil || !st.IsDir() {
				bad("store.key_file", "%s does not exist and its directory %s does not either (serve creates the key file, not its directory)",
					c.KeyFile, filepath.Dir(c.KeyFile))
			}
		}
	}
	if c.Backend != backendEtcd {
		return errs
	}
	e := c.Etcd
	if len(e.Endpoints) == 0 {
		bad("store.etcd.endpoints", "required with store.backend etcd: the client URLs of the cluster's members, e.g. [\"https://etcd1.example.com:2379\"]")
	}
	plain := false
	for i, ep := range e.Endpoints {
		p, scheme := endpointProblem(ep)
		if p != "" {
			bad(fmt.Sprintf("store.etcd.endpoints[%d]", i), "%s", p)
		}
		plain = plain || scheme == "http"
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		bad("store.etcd.prefix", "must start and end with /, e.g. /replyreset/, not %q", e.Prefix)
	}
	if e.DialTimeout <= 0 {
		bad("store.etcd.dial_timeout", "must be positive, e.g. 5s, not %s", e.DialTimeout)
	}
	switch {
	case (e.CertFile == "") != (e.KeyFile == ""):
		bad("store.etcd.cert_file", "cert_file and key_file go together (a client certificate and its private key)")
	case e.CertFile != "" && plain:
		bad("store.etcd.cert_file", "a client certificate needs https:// endpoints")
	case e.CertFile != "":
		cert, cerr := readFile(e.CertFile)
		key, kerr := readFile(e.KeyFile)
		switch {
		case cerr != nil:
			bad("store.etcd.cert_file", "%v", cerr)
		case kerr != nil:
			bad("store.etcd.key_file", "%v", kerr)
		default:
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				bad("store.etcd.cert_file", "%s and %s are not a certificate and its key: %v", e.CertFile, e.KeyFile, err)
			}
		}
	}
	if e.CAFile != "" {
		if pem, err := readFile(e.CAFile); err != nil {
			bad("store.etcd.ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			bad("store.etcd.ca_file", "%s holds no PEM certificate", e.CAFile)
		}
		if plain {
			bad("store.etcd.ca_file", "a CA is for https:// endpoints; the endpoints are http://")
		}
	}
	switch {
	case e.Username != "" && e.Password == "":
		bad("store.etcd.password", "required with store.etcd.username (or password_file)")
	case e.Username == "" && e.Password != "":
		bad("store.etcd.password", "needs store.etcd.username (etcd authenticates a user by its password)")
	}
	return errs
}

// endpointProblem checks one etcd client URL: http(s)://host:port and
// nothing more. It returns the problem ("" when none) and the scheme.
func endpointProblem(raw string) (problem, scheme string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("not a URL: %v", err), ""
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("must be an https:// (or http://) host:port URL, e.g. https://etcd1.example.com:2379, not %q", raw), ""
	case u.User != nil:
		return "must not hold a user name or password (use store.etcd.username and password)", u.Scheme
	case u.Hostname() == "" || u.Port() == "":
		return fmt.Sprintf("%q needs a host and a port, e.g. https://etcd1.example.com:2379", raw), u.Scheme
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must be scheme://host:port only, without a path or query", raw), u.Scheme
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port must be a number between 1 and 65535, not %q", u.Port()), u.Scheme
	}
	return "", u.Scheme
}

// TLSConfig is the client TLS of store.etcd: nil for http:// endpoints;
// the system roots (or ca_file) and the client certificate when set.
func (e EtcdConfig) TLSConfig() (*tls.Config, error) {
	if len(e.Endpoints) == 0 || !strings.HasPrefix(e.Endpoints[0], "https://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store.etcd.ca_file: %s holds no PEM certificate", e.CAFile)
		}
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// describeStore says in one line what the store settings are, for
// check-config; no secret is in it.
func (c *Config) describeStore() string {
	s := c.Store
	if s.Backend != backendEtcd {
		return fmt.Sprintf("store: backend bolt (data file %s), key file %s", dataFile(c), c.keyFile())
	}
	e := s.Etcd
	var b strings.Builder
	fmt.Fprintf(&b, "store: backend etcd, endpoints %s, prefix %s, dial timeout %s", strings.Join(e.Endpoints, " "), e.Prefix, e.DialTimeout)
	if e.CAFile != "" {
		fmt.Fprintf(&b, ", CA %s", e.CAFile)
	}
	if e.CertFile != "" {
		fmt.Fprintf(&b, ", client certificate %s", e.CertFile)
	}
	if e.Username != "" {
		fmt.Fprintf(&b, ", user %s (password set)", e.Username)
	}
	fmt.Fprintf(&b, ", key file %s", c.keyFile())
	return b.String()
}
