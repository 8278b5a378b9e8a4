package etcdlab_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// A TLS cluster serves https with client-certificate authentication: a
// client that trusts the CA but has no certificate is refused, one with the
// lab's client certificate is served.
func TestTLSClusterRequiresClientCert(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{TLS: true})
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://127.0.0.1:") {
			t.Fatalf("endpoint %s, want https://127.0.0.1:port", ep)
		}
	}
	for _, f := range []string{c.CAFile, c.ClientCertFile, c.ClientKeyFile} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CAFile holds no certificate")
	}
	noCert, err := clientv3.New(clientv3.Config{
		Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	})
	if err == nil {
		defer noCert.Close()
		_, err = noCert.Put(ctxT(t, 3*time.Second), "/no-cert", "v")
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	t.Logf("without a client certificate: %v", err)
	mustPut(t, c, "/with-cert")
	if _, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile); err != nil {
		t.Fatalf("client key pair files: %v", err)
	}
}

// An Auth cluster refuses a client without credentials and serves root.
func TestAuthClusterNeedsPassword(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Auth: true})
	if c.Username != "root" || c.Password == "" {
		t.Fatalf("credentials %q/%q, want root and a password", c.Username, c.Password)
	}
	cfg := c.Config()
	cfg.Username, cfg.Password = "", ""
	anon, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Put(ctxT(t, 10*time.Second), "/anonymous", "v"); err == nil {
		t.Fatal("a client without credentials could write")
	}
	mustPut(t, c, "/as-root")
}
