package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCertPEM is a throwaway self-signed certificate and its key, PEM.
func testCertPEM(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "replyreset"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestStoreDefaults(t *testing.T) {
	cfg := mustParseConfig(t, minimalConfig, nil, nil)
	s := cfg.Store
	if s.Backend != "bolt" || s.KeyFile != "" || s.Etcd.Prefix != "/replyreset/" || s.Etcd.DialTimeout != 5*time.Second || len(s.Etcd.Endpoints) != 0 {
		t.Errorf("store defaults: %+v", s)
	}
	if got := cfg.keyFile(); got != "/var/lib/replyreset/replyreset.key" {
		t.Errorf("default key file %s, want data_dir/replyreset.key", got)
	}
	dir := t.TempDir()
	cfg = mustParseConfig(t, minimalConfig+"store: {key_file: "+filepath.Join(dir, "k")+"}\n", nil, nil)
	if got := cfg.keyFile(); got != filepath.Join(dir, "k") {
		t.Errorf("store.key_file %s, want %s", got, filepath.Join(dir, "k"))
	}
}

func TestStoreEtcdKeys(t *testing.T) {
	cert, key := testCertPEM(t)
	files := map[string]string{"/tls/ca.pem": cert, "/tls/client.pem": cert, "/tls/client.key": key,
		"/run/secrets/etcd": "etcd-$ecret\n", "/tls/junk.pem": "not pem"}
	full := minimalConfig + `store:
  backend: etcd
  etcd:
    endpoints: ["https://etcd1.example.com:2379", "https://127.0.0.1:2379/"]
    prefix: /acme/replyreset/
    ca_file: /tls/ca.pem
    cert_file: /tls/client.pem
    key_file: /tls/client.key
    username: replyreset
    password_file: /run/secrets/etcd
    dial_timeout: 2s
`
	cfg := mustParseConfig(t, full, nil, files)
	e := cfg.Store.Etcd
	if cfg.Store.Backend != "etcd" || len(e.Endpoints) != 2 || e.Prefix != "/acme/replyreset/" || e.Username != "replyreset" ||
		e.Password != "etcd-$ecret" || e.DialTimeout != 2*time.Second {
		t.Errorf("store.etcd: %+v", e)
	}
	if s := cfg.String(); strings.Contains(s, "etcd-$ecret") {
		t.Errorf("the etcd password is printed:\n%s", s)
	}
	if d := cfg.describeStore(); strings.Contains(d, "etcd-$ecret") ||
		!strings.Contains(d, "backend etcd, endpoints https://etcd1.example.com:2379 https://127.0.0.1:2379/, prefix /acme/replyreset/") {
		t.Errorf("describeStore: %s", d)
	}
	inline := mustParseConfig(t, minimalConfig+"store: {backend: etcd, etcd: {endpoints: [\"http://127.0.0.1:2379\"], username: u, password: \"${P}\"}}\n",
		map[string]string{"P": "env-secret"}, nil)
	if s := inline.String(); strings.Contains(s, "env-secret") || !strings.Contains(s, redacted) {
		t.Errorf("the etcd password is not redacted:\n%s", s)
	}
	// bolt ignores the etcd section (the example carries one).
	mustParseConfig(t, minimalConfig+"store: {backend: bolt, etcd: {endpoints: [\"ftp://x\"], prefix: x}}\n", nil, nil)

	n := strings.Count(minimalConfig, "\n") + 1 // the line of "store:"
	etcd := func(body string) string {
		return minimalConfig + "store:\n  backend: etcd\n  etcd:\n" + body
	}
	ep := "    endpoints: [\"https://etcd1.example.com:2379\"]\n"
	for name, tc := range map[string]struct {
		in   string
		want []string
	}{
		"unknown backend": {minimalConfig + "store: {backend: consul}\n",
			[]string{fmt.Sprintf(`line %d: store.backend: must be bolt (one data file in data_dir) or etcd (a cluster shared by several nodes), not "consul"`, n)}},
		"no endpoints": {minimalConfig + "store: {backend: etcd}\n",
			[]string{`store.etcd.endpoints: required with store.backend etcd: the client URLs of the cluster's members, e.g. ["https://etcd1.example.com:2379"]`}},
		"bad endpoints": {etcd("    endpoints: [\"etcd1:2379\", \"https://etcd1\", \"https://u:p@etcd1:2379\", \"https://etcd1:2379/v3\", \"https://etcd1:99999\"]\n"),
			[]string{
				fmt.Sprintf(`line %d: store.etcd.endpoints[0]: must be an https:// (or http://) host:port URL, e.g. https://etcd1.example.com:2379, not "etcd1:2379"`, n+3),
				fmt.Sprintf(`line %d: store.etcd.endpoints[1]: "https://etcd1" needs a host and a port, e.g. https://etcd1.example.com:2379`, n+3),
				fmt.Sprintf(`line %d: store.etcd.endpoints[2]: must not hold a user name or password (use store.etcd.username and password)`, n+3),
				fmt.Sprintf(`line %d: store.etcd.endpoints[3]: "https://etcd1:2379/v3" must be scheme://host:port only, without a path or query`, n+3),
				fmt.Sprintf(`line %d: store.etcd.endpoints[4]: port must be a number between 1 and 65535, not "99999"`, n+3),
			}},
		"prefix": {etcd(ep + "    prefix: replyreset\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.prefix: must start and end with /, e.g. /replyreset/, not "replyreset"`, n+4)}},
		"prefix without trailing slash": {etcd(ep + "    prefix: /replyreset\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.prefix: must start and end with /, e.g. /replyreset/, not "/replyreset"`, n+4)}},
		"dial timeout": {etcd(ep + "    dial_timeout: 0s\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.dial_timeout: must be positive, e.g. 5s, not 0s`, n+4)}},
		"cert without key": {etcd(ep + "    cert_file: /tls/client.pem\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.cert_file: cert_file and key_file go together (a client certificate and its private key)`, n+4)}},
		"key without cert": {etcd(ep + "    key_file: /tls/client.key\n"),
			[]string{`store.etcd.cert_file: cert_file and key_file go together (a client certificate and its private key)`}},
		"cert unreadable": {etcd(ep + "    cert_file: /tls/missing.pem\n    key_file: /tls/client.key\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.cert_file: open /tls/missing.pem: file does not exist`, n+4)}},
		"cert not matching": {etcd(ep + "    cert_file: /tls/junk.pem\n    key_file: /tls/client.key\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.cert_file: /tls/junk.pem and /tls/client.key are not a certificate and its key: tls: failed to find any PEM data in certificate input`, n+4)}},
		"cert on http": {etcd("    endpoints: [\"http://127.0.0.1:2379\"]\n    cert_file: /tls/client.pem\n    key_file: /tls/client.key\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.cert_file: a client certificate needs https:// endpoints`, n+4)}},
		"ca unreadable": {etcd(ep + "    ca_file: /tls/nope.pem\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.ca_file: open /tls/nope.pem: file does not exist`, n+4)}},
		"ca not pem": {etcd(ep + "    ca_file: /tls/junk.pem\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.ca_file: /tls/junk.pem holds no PEM certificate`, n+4)}},
		"username without password": {etcd(ep + "    username: replyreset\n"),
			[]string{`store.etcd.password: required with store.etcd.username (or password_file)`}},
		"password without username": {etcd(ep + "    password: pw\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.password: needs store.etcd.username (etcd authenticates a user by its password)`, n+4)}},
		"password and password_file": {etcd(ep + "    username: u\n    password: pw\n    password_file: /run/secrets/etcd\n"),
			[]string{fmt.Sprintf(`line %d: store.etcd.password_file: set either password or password_file, not both`, n+6)}},
		"key_file in a missing directory": {minimalConfig + "store: {key_file: /nonexistent-dir/replyreset.key}\n",
			[]string{fmt.Sprintf(`line %d: store.key_file: /nonexistent-dir/replyreset.key does not exist and its directory /nonexistent-dir does not either (serve creates the key file, not its directory)`, n)}},
	} {
		t.Run(name, func(t *testing.T) {
			assertProblems(t, configProblems(t, tc.in, nil, files), tc.want)
		})
	}
}

func TestEtcdClientConfig(t *testing.T) {
	cert, key := testCertPEM(t)
	dir := t.TempDir()
	for name, body := range map[string]string{"ca.pem": cert, "client.pem": cert, "client.key": key} {
		writeFile(t, filepath.Join(dir, name), body)
	}
	in := minimalConfig + fmt.Sprintf(`store:
  backend: etcd
  etcd:
    endpoints: ["https://127.0.0.1:2379"]
    ca_file: %q
    cert_file: %q
    key_file: %q
    username: replyreset
    password: pw
    dial_timeout: 3s
`, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
	cfg, err := ParseConfig([]byte(in), testEnv(nil), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := etcdConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cc.TLS == nil || cc.TLS.RootCAs == nil || len(cc.TLS.Certificates) != 1 || cc.Username != "replyreset" || cc.Password != "pw" ||
		cc.DialTimeout != 3*time.Second || len(cc.Endpoints) != 1 {
		t.Errorf("client config %+v", cc)
	}
	plain := mustParseConfig(t, minimalConfig+"store: {backend: etcd, etcd: {endpoints: [\"http://127.0.0.1:2379\"]}}\n", nil, nil)
	if cc, err := etcdConfig(plain); err != nil || cc.TLS != nil {
		t.Errorf("http:// endpoints: TLS %v, %v; want none", cc.TLS, err)
	}
}
