package demodir

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
	"sync"
	"time"
	"weak"
)

// certificates makes a throw-away CA and a server certificate it signs,
// valid for 127.0.0.1, ::1, localhost and the demo DC's host name.
func certificates(host string) (caPEM []byte, cert tls.Certificate, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("demodir: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ReplyReset demo directory CA", Organization: []string{"ReplyReset demo"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("demodir: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("demodir: CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("demodir: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host, Organization: []string{"ReplyReset demo"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", host},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("demodir: server certificate: %w", err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// connTracker remembers the TCP connections of TLS clients (seen at the
// handshake), so that Close can end them: gldap's Stop waits for every
// connection to finish, and pooled clients keep theirs open. Weak pointers
// let finished connections be collected.
type connTracker struct {
	mu    sync.Mutex
	conns map[weak.Pointer[net.TCPConn]]struct{}
	other []net.Conn
	adds  int
}

func (t *connTracker) track(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[weak.Pointer[net.TCPConn]]struct{}{}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		t.conns[weak.Make(tc)] = struct{}{}
	} else {
		t.other = append(t.other, c)
	}
	t.adds++
	if t.adds%256 == 0 {
		for p := range t.conns {
			if p.Value() == nil {
				delete(t.conns, p)
			}
		}
	}
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.conns {
		if c := p.Value(); c != nil {
			_ = c.Close()
		}
	}
	for _, c := range t.other {
		_ = c.Close()
	}
	t.conns, t.other = nil, nil
}

// tlsConfig is the server side of LDAPS and StartTLS.
func tlsConfig(cert tls.Certificate, tracker *connTracker) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		tracker.track(hello.Conn)
		return nil, nil // use cfg itself
	}
	return cfg
}
