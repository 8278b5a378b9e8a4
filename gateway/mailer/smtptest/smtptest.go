// Package smtptest runs an in-process SMTP server on 127.0.0.1 for tests:
// optional STARTTLS or implicit TLS with a certificate made in memory,
// optional AUTH with one fixed account, every accepted message recorded and
// parsed (subject, text part, HTML part), and failure injection (reject or
// stall the next messages). It is built on github.com/emersion/go-smtp.
package smtptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options choose what the server offers. The zero value is plain SMTP
// without AUTH.
type Options struct {
	STARTTLS    bool // offer STARTTLS
	ImplicitTLS bool // TLS from the first byte, as on port 465

	// Username and Password, when set, make AUTH mandatory before MAIL.
	// AUTH is offered only over TLS unless AllowInsecureAuth.
	Username          string
	Password          string
	AuthMechanisms    []string // "PLAIN" (default) and/or "LOGIN"
	AllowInsecureAuth bool

	Debug io.Writer // the SMTP conversation, when set
}

// Message is one accepted message.
type Message struct {
	From string   // envelope sender
	To   []string // envelope recipients
	Raw  []byte   // as received, CRLF line ends

	// Parsed from Raw. Text and HTML are the decoded bodies of the first
	// text/plain and text/html parts, with LF line ends.
	Header  mail.Header
	Subject string // RFC 2047 decoded
	Text    string
	HTML    string
	Err     error // why parsing failed; the message was still accepted
}

// Server is a running test server. Its methods are safe for concurrent use.
type Server struct {
	Addr string // 127.0.0.1:port
	Host string // "127.0.0.1"
	Port int

	opts  Options
	pool  *x509.CertPool
	srv   *smtp.Server
	ln    net.Listener
	done  chan struct{} // closed by Close: releases stalled sessions
	serve chan error

	mu       sync.Mutex
	msgs     []Message
	changed  chan struct{} // closed and replaced on every new message
	rejectN  int
	rejectAs int
	stallN   int
	closed   bool
}

// New starts a server and closes it when t ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Start starts a server on 127.0.0.1 and a free port.
func Start(opts Options) (*Server, error) {
	if opts.STARTTLS && opts.ImplicitTLS {
		return nil, errors.New("STARTTLS and ImplicitTLS exclude each other")
	}
	if len(opts.AuthMechanisms) == 0 {
		opts.AuthMechanisms = []string{sasl.Plain}
	}
	s := &Server{opts: opts, done: make(chan struct{}), serve: make(chan error, 1), changed: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "smtptest.localhost"
	s.srv.AllowInsecureAuth = opts.AllowInsecureAuth
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.Debug != nil {
		s.srv.Debug = opts.Debug
	}

	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.STARTTLS || opts.ImplicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		s.pool = pool
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if opts.ImplicitTLS {
			l = tls.NewListener(l, s.srv.TLSConfig)
		}
	}
	addr := l.Addr().(*net.TCPAddr)
	s.Addr, s.Host, s.Port = addr.String(), addr.IP.String(), addr.Port
	s.ln = l
	go func() { s.serve <- s.srv.Serve(l) }()
	return s, nil
}

// CertPool holds the server's self-signed certificate (valid for
// 127.0.0.1, ::1 and localhost); nil without TLS.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the accepted messages once there are at least n, or ctx's
// error.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return msgs, nil
		}
		changed, got := s.changed, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("smtptest: %d of %d messages: %w", got, n, ctx.Err())
		}
	}
}

// RejectNext makes the server refuse the next n messages at the end of DATA
// with reply code (e.g. 450 or 554). They are not recorded.
func (s *Server) RejectNext(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectN, s.rejectAs = n, code
}

// StallNext makes the server read the next n messages and then never answer
// until Close, like an overloaded relay.
func (s *Server) StallNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stallN = n
}

// Close stops the server, drops its connections and releases stalled
// sessions.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	err := s.srv.Close()
	// Serve may not have registered the listener yet; close it here too so
	// that its Accept returns either way.
	_ = s.ln.Close()
	if serr := <-s.serve; serr != nil && err == nil {
		err = serr
	}
	return err
}

func (s *Server) newSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: s}, nil
}

// session is one SMTP connection's state.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return ss.s.opts.AuthMechanisms
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	for _, m := range ss.AuthMechanisms() {
		if !strings.EqualFold(m, mech) {
			continue
		}
		switch strings.ToUpper(mech) {
		case sasl.Plain:
			return sasl.NewPlainServer(func(_, username, password string) error {
				return check(username, password)
			}), nil
		case sasl.Login:
			return &loginServer{check: check}, nil
		}
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	switch {
	case s.rejectN > 0:
		s.rejectN--
		code := s.rejectAs
		s.mu.Unlock()
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "rejected by smtptest"}
	case s.stallN > 0:
		s.stallN--
		s.mu.Unlock()
		<-s.done
		return errors.New("smtptest: server closed")
	}
	msg := parse(raw)
	msg.From, msg.To = ss.from, append([]string(nil), ss.to...)
	s.msgs = append(s.msgs, msg)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check    func(username, password string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough // the username came as the initial response
	case 1:
		l.step, l.username = 2, string(response)
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.username, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// parse fills the parsed fields of a message; failures go to Err.
func parse(raw []byte) Message {
	msg := Message{Raw: raw}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		msg.Err = err
		return msg
	}
	msg.Header = m.Header
	if msg.Subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		msg.Err = fmt.Errorf("subject: %w", err)
		return msg
	}
	msg.Err = walk(&msg, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
	return msg
}

// walk visits a MIME entity and its children, keeping the first text/plain
// and text/html bodies.
func walk(msg *Message, contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: decoding is done here, for base64 as for
			// quoted-printable, rather than half by the library.
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			if err := walk(msg, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	var dst *string
	switch mediaType {
	case "text/plain":
		dst = &msg.Text
	case "text/html":
		dst = &msg.HTML
	default:
		return nil
	}
	if *dst != "" {
		return nil
	}
	switch cs := strings.ToLower(params["charset"]); cs {
	case "", "utf-8", "us-ascii":
	default:
		return fmt.Errorf("%s: charset %q is not UTF-8", mediaType, cs)
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	case "", "7bit", "8bit":
	default:
		return fmt.Errorf("%s: unknown transfer encoding %q", mediaType, encoding)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s: %w", mediaType, err)
	}
	*dst = strings.ReplaceAll(string(data), "\r\n", "\n")
	return nil
}

// newlineStripper drops CR and LF, which split base64 into lines.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, b := range p[:k] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// selfSigned makes an ECDSA certificate for the loopback addresses and a
// pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// Silent listens on 127.0.0.1 and accepts connections but never says a
// word: a hung mail server (TCP up, SMTP silent). It returns host:port;
// the connections are closed when the test ends.
func Silent(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
