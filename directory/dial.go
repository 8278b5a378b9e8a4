package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Dial steps, named in errors and in check-config diagnostics.
const (
	StepURL  = "url"
	StepDNS  = "dns"
	StepTCP  = "tcp"
	StepTLS  = "tls"
	StepBind = "bind"
	StepBase = "base_dn"
)

// StepError says which step of reaching the directory failed.
type StepError struct {
	URL  string
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %s: %v", e.URL, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// buildTLSConfig returns the TLS settings for one server host name.
func buildTLSConfig(c Config, host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// dialer opens connections to one of the configured URLs.
type dialer struct {
	cfg Config
}

// dial connects to raw (DNS, TCP, TLS or StartTLS) without binding. Each
// step honours ctx and the configured timeout; failures are *StepError
// wrapping a classified error.
func (d dialer) dial(ctx context.Context, raw string) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	fail := func(step string, kind, err error) error {
		return &StepError{URL: raw, Step: step, Err: fmt.Errorf("%w: %w", kind, err)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fail(StepURL, ErrUnavailable, err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		addrs, err = net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, fail(StepDNS, ErrUnavailable, err)
		}
	}
	var nd net.Dialer
	var raw0 net.Conn
	for _, a := range addrs {
		raw0, err = nd.DialContext(ctx, "tcp", net.JoinHostPort(a, port))
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fail(StepTCP, ErrUnavailable, err)
	}
	tc, err := buildTLSConfig(d.cfg, host)
	if err != nil {
		raw0.Close()
		return nil, fail(StepTLS, ErrTLS, err)
	}
	if u.Scheme == "ldaps" {
		tlsConn := tls.Client(raw0, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			raw0.Close()
			if ctx.Err() != nil || !isTLSError(err) {
				// A timeout or a dropped connection is not a certificate problem.
				return nil, fail(StepTLS, ErrUnavailable, err)
			}
			return nil, fail(StepTLS, ErrTLS, err)
		}
		conn := ldap.NewConn(tlsConn, true)
		conn.Start()
		conn.SetTimeout(d.cfg.Timeout)
		return conn, nil
	}
	conn := ldap.NewConn(raw0, false)
	conn.Start()
	conn.SetTimeout(d.cfg.Timeout)
	if d.cfg.StartTLS {
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		err := conn.StartTLS(tc)
		stop()
		if err != nil {
			conn.Close()
			if ctx.Err() != nil {
				return nil, fail(StepTLS, ErrUnavailable, ctx.Err())
			}
			return nil, fail(StepTLS, ErrTLS, err)
		}
	}
	return conn, nil
}

// dialBound dials raw and binds with the service account.
func (d dialer) dialBound(ctx context.Context, raw string) (*ldap.Conn, error) {
	conn, err := d.dial(ctx, raw)
	if err != nil {
		return nil, err
	}
	err = withCtx(ctx, conn, d.cfg.Timeout, func() error { return conn.Bind(d.cfg.BindDN, d.cfg.BindPassword) })
	if err != nil {
		conn.Close()
		if kind := kindOf(err); errors.Is(kind, ErrTLS) || errors.Is(kind, ErrUnavailable) {
			return nil, &StepError{URL: raw, Step: StepBind, Err: fmt.Errorf("%w: %w", kind, err)}
		}
		// A refused service bind is a configuration problem, never the
		// user's: it must not read as the user's invalid credentials.
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, &StepError{URL: raw, Step: StepBind, Err: fmt.Errorf("%w: %w %q", ErrUnavailable, ErrServiceCredentials, d.cfg.BindDN)}
		}
		return nil, &StepError{URL: raw, Step: StepBind, Err: fmt.Errorf("%w: service account %q refused: %v", ErrUnavailable, d.cfg.BindDN, err)}
	}
	return conn, nil
}

// withCtx runs one blocking go-ldap call so that it ends by ctx's deadline
// or cancellation: the per-request timeout is set from the deadline, and a
// cancelled ctx closes the connection, which makes the call return.
func withCtx(ctx context.Context, conn *ldap.Conn, max time.Duration, call func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	timeout := max
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		return fmt.Errorf("%w: %w", ErrUnavailable, context.DeadlineExceeded)
	}
	conn.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err := call()
	if !stop() && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	if err != nil && kindOf(err) == nil && conn.IsClosing() {
		// Whatever go-ldap said, the connection is gone: a network failure.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
