package etcdlab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// writeCerts makes the throwaway CA of a TLS cluster, a server certificate
// for 127.0.0.1 that the members share and a client certificate, writes them
// as PEM files in the cluster's directory and sets the client TLS
// configuration.
func (c *Cluster) writeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("etcdlab: CA key: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "etcdlab test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("etcdlab: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("etcdlab: CA certificate: %w", err)
	}
	c.CAFile = filepath.Join(c.dir, "ca.pem")
	if err := writePEM(c.CAFile, "CERTIFICATE", caDER); err != nil {
		return err
	}
	// The members also present the server certificate as clients of
	// themselves (etcd's gRPC gateway), hence both key usages.
	server := leaf(2, "etcdlab member", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if _, err := issue(server, caCert, caKey, filepath.Join(c.dir, "server.pem"), filepath.Join(c.dir, "server-key.pem")); err != nil {
		return err
	}
	c.ClientCertFile, c.ClientKeyFile = filepath.Join(c.dir, "client.pem"), filepath.Join(c.dir, "client-key.pem")
	clientPair, err := issue(leaf(3, "etcdlab client", x509.ExtKeyUsageClientAuth), caCert, caKey, c.ClientCertFile, c.ClientKeyFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	c.tls = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair}, MinVersion: tls.VersionTLS12}
	return nil
}

// leaf is the template of a certificate for 127.0.0.1.
func leaf(serial int64, name string, usage ...x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
}

// issue signs tmpl with the CA, writes the certificate and its key and
// returns them as a pair.
func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("etcdlab: key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("etcdlab: certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("etcdlab: key: %w", err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", keyDER); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func writePEM(path, kind string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("etcdlab: %w", err)
	}
	return nil
}
