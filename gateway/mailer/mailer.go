package mailer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/gateway/notify"
	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// DefaultTimeout bounds one whole SMTP session (dial to QUIT) when the
// caller's context allows longer or has no deadline.
const DefaultTimeout = 30 * time.Second

// Step names the part of an SMTP session that failed.
type Step string

// The steps of a session, in order.
const (
	StepCompose Step = "compose" // building the message: bad recipient, empty body
	StepDial    Step = "dial"    // TCP connect, the server's greeting, EHLO
	StepTLS     Step = "tls"     // STARTTLS or implicit TLS, certificate checks
	StepAuth    Step = "auth"    // SMTP AUTH
	StepSend    Step = "send"    // MAIL FROM, RCPT TO, DATA
)

// Error is every error Send and Check return. Its text names the step and
// never holds the SMTP password or the message body.
type Error struct {
	Step Step
	Code int   // the SMTP reply code when the server refused, else 0
	Err  error // the cause; use errors.Is / errors.As through Error
	msg  string
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.Err }

var _ notify.Mailer = (*Mailer)(nil)

// Mailer sends mail through the SMTP server of the configuration. It opens
// one connection per message and closes it after QUIT: the product sends a
// handful of mails an hour (activations, confirmations, notices), so a pool
// would only add stale-connection handling and servers' idle timeouts to the
// failure modes. It is immutable after New and safe for concurrent use.
//
// go-mail builds the message (gomail.Msg: multipart/alternative, quoted-
// printable, RFC 2047 subjects) and speaks the protocol (its smtp.Client);
// Mailer drives the session step by step, instead of gomail.Client's
// one-call dial, so that every error names its step and one context deadline
// bounds the whole session.
type Mailer struct {
	cfg         Config
	addr        string // host:port
	from        *netmail.Address
	policy      gomail.TLSPolicy
	implicitTLS bool // port 465: TLS from the first byte (RFC 8314)
	tlsConfig   *tls.Config
	timeout     time.Duration
	helo        string
	idDomain    string // right-hand side of Message-IDs: the From domain
}

// Option adjusts a Mailer; options exist for tests.
type Option func(*Mailer)

// WithRootCAs trusts pool instead of the system roots when verifying the
// server certificate (tests use the smtptest server's self-signed CA).
// Verification itself cannot be turned off.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(m *Mailer) { m.tlsConfig.RootCAs = pool }
}

// WithTimeout replaces DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(m *Mailer) {
		if d > 0 {
			m.timeout = d
		}
	}
}

// New returns a Mailer for cfg, which must be valid and enabled. It does
// not connect; Check does.
func New(cfg Config, opts ...Option) (*Mailer, error) {
	if !cfg.Enabled() {
		return nil, errors.New("mailer: mail.host is empty, so mail is off")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mailer: invalid mail settings: %w", err)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: mail.from: %w", err)
	}
	policy := map[string]gomail.TLSPolicy{
		TLSMandatory:     gomail.TLSMandatory,
		TLSOpportunistic: gomail.TLSOpportunistic,
		TLSNone:          gomail.NoTLS,
	}[cfg.TLS]
	helo, err := os.Hostname()
	if err != nil || helo == "" {
		helo = "localhost"
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	m := &Mailer{
		cfg:         cfg,
		addr:        net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		from:        from,
		policy:      policy,
		implicitTLS: cfg.Port == 465 && policy != gomail.NoTLS,
		tlsConfig:   &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12},
		timeout:     DefaultTimeout,
		helo:        helo,
		idDomain:    domain,
	}
	for _, opt := range opts {
		opt(m)
	}
	return m, nil
}

// Send delivers msg: a multipart/alternative mail (text, then HTML when
// msg.HTML is set) from the configured sender. The session ends when ctx is
// done or after the Mailer's timeout, whichever comes first.
func (m *Mailer) Send(ctx context.Context, msg notify.Mail) error {
	rcpt, raw, err := m.compose(msg)
	if err != nil {
		return m.fail(context.Background(), StepCompose, err)
	}
	ctx, cancel := m.sessionContext(ctx)
	defer cancel()
	s, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.c.Mail("<" + m.from.Address + ">"); err != nil {
		return m.fail(ctx, StepSend, fmt.Errorf("MAIL FROM <%s>: %w", m.from.Address, err))
	}
	if err := s.c.Rcpt("<" + rcpt + ">"); err != nil {
		return m.fail(ctx, StepSend, fmt.Errorf("RCPT TO <%s>: %w", rcpt, err))
	}
	w, err := s.c.Data()
	if err != nil {
		return m.fail(ctx, StepSend, fmt.Errorf("DATA: %w", err))
	}
	if _, err := w.Write(raw); err != nil {
		return m.fail(ctx, StepSend, fmt.Errorf("writing the message after DATA: %w", err))
	}
	if err := w.Close(); err != nil {
		return m.fail(ctx, StepSend, fmt.Errorf("end of DATA: %w", err))
	}
	// The server has taken the message; a failed QUIT changes nothing.
	_ = s.c.Quit()
	return nil
}

// Check connects, does STARTTLS and AUTH as configured, and quits without
// sending anything: for check-config.
func (m *Mailer) Check(ctx context.Context) error {
	ctx, cancel := m.sessionContext(ctx)
	defer cancel()
	s, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	// Everything to check has passed; a failed QUIT says nothing more.
	_ = s.c.Quit()
	return nil
}

var errTimeout = errors.New("no answer from the mail server in time")

func (m *Mailer) sessionContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, m.timeout,
		fmt.Errorf("%w (%s): %w", errTimeout, m.timeout, context.DeadlineExceeded))
}

// compose renders the message; the envelope recipient is returned apart.
func (m *Mailer) compose(msg notify.Mail) (rcpt string, raw []byte, err error) {
	to, err := netmail.ParseAddress(msg.To)
	if err != nil {
		return "", nil, fmt.Errorf("recipient %q is not a mail address: %w", msg.To, err)
	}
	// A subject is one line: a newline in a rendered name must not start a
	// header of its own.
	subject := strings.Join(strings.Fields(msg.Subject), " ")
	switch {
	case subject == "":
		return "", nil, errors.New("the subject is empty")
	case strings.TrimSpace(msg.Text) == "":
		return "", nil, errors.New("the text body is empty")
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", nil, err
	}
	gm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	gm.FromMailAddress(m.from)
	gm.ToMailAddress(to)
	gm.Subject(subject)
	gm.SetDateWithValue(time.Now())
	gm.SetMessageIDWithValue(hex.EncodeToString(id) + "@" + m.idDomain)
	gm.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	}
	var buf bytes.Buffer
	if _, err := gm.WriteTo(&buf); err != nil {
		return "", nil, fmt.Errorf("building the message: %w", err)
	}
	return to.Address, buf.Bytes(), nil
}

// session is one open SMTP connection.
type session struct {
	conn net.Conn
	c    *smtp.Client
	stop func() bool
}

func (s *session) close() {
	s.stop()
	_ = s.conn.Close()
}

// open dials, greets, secures and authenticates as the configuration says.
func (m *Mailer) open(ctx context.Context) (*session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return nil, m.fail(ctx, StepDial, err) // names the address
	}
	// The deadline covers the whole session; cancelling ctx ends it too.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	s := &session{conn: conn, stop: stop}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()

	if m.implicitTLS {
		tc := tls.Client(conn, m.tlsConfig.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, m.fail(ctx, StepTLS, fmt.Errorf("%s (implicit TLS on port 465): %w", m.addr, err))
		}
		s.conn = tc
	}
	if s.c, err = smtp.NewClient(s.conn, m.cfg.Host); err != nil {
		return nil, m.fail(ctx, StepDial, fmt.Errorf("%s: greeting: %w", m.addr, err))
	}
	if err := s.c.Hello(m.helo); err != nil {
		return nil, m.fail(ctx, StepDial, fmt.Errorf("%s: EHLO: %w", m.addr, err))
	}
	if err := m.startTLS(s.c); err != nil {
		return nil, m.fail(ctx, StepTLS, err)
	}
	if err := m.auth(s.c); err != nil {
		return nil, m.fail(ctx, StepAuth, err)
	}
	ok = true
	return s, nil
}

// startTLS applies the TLS policy. Opportunistic differs from mandatory only
// when the server offers no STARTTLS: a certificate that fails verification
// is an error under both, never a quiet fall back to plain text.
func (m *Mailer) startTLS(c *smtp.Client) error {
	if m.implicitTLS || m.policy == gomail.NoTLS {
		return nil
	}
	if offered, _ := c.Extension("STARTTLS"); !offered {
		if m.policy == gomail.TLSMandatory {
			return fmt.Errorf("%s does not offer STARTTLS and mail.tls is %q", m.addr, TLSMandatory)
		}
		return nil
	}
	if err := c.StartTLS(m.tlsConfig.Clone()); err != nil {
		return fmt.Errorf("STARTTLS with %s: %w", m.addr, err)
	}
	return nil
}

// auth logs in when a username is configured, with PLAIN, or LOGIN for
// servers that only offer that (Microsoft 365). Either sends the password
// as it is, so it goes only over TLS, or to a server on this machine.
func (m *Mailer) auth(c *smtp.Client) error {
	if m.cfg.Username == "" {
		return nil
	}
	offered, mechs := c.Extension("AUTH")
	if !offered {
		return fmt.Errorf("%s offers no SMTP AUTH, but mail.username is set", m.addr)
	}
	_, encrypted := c.TLSConnectionState()
	local := isLoopback(m.cfg.Host)
	if !encrypted && !local {
		return fmt.Errorf("refusing to send the password to %s without TLS", m.addr)
	}
	var a smtp.Auth
	switch list := strings.Fields(strings.ToUpper(mechs)); {
	case slices.Contains(list, "PLAIN"):
		a = smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.cfg.Host, local)
	case slices.Contains(list, "LOGIN"):
		a = smtp.LoginAuth(m.cfg.Username, m.cfg.Password, m.cfg.Host, local)
	default:
		return fmt.Errorf("%s offers AUTH %s; supported are PLAIN and LOGIN", m.addr, mechs)
	}
	if err := c.Auth(a); err != nil {
		return fmt.Errorf("as %q on %s: %w", m.cfg.Username, m.addr, err)
	}
	return nil
}

// fail builds the Error for step. When the session's context is done the
// network error ("i/o timeout", "use of closed connection") says less than
// the context, so the context's cause is reported, still wrapping err.
func (m *Mailer) fail(ctx context.Context, step Step, err error) *Error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is the context's: its timer is due.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	e := &Error{Step: step, Err: err}
	var te *textproto.Error
	if errors.As(err, &te) {
		e.Code = te.Code
	}
	e.msg = "mailer: " + string(step) + ": " + m.redact(err.Error())
	return e
}

// redact removes the password from text that a server echoed back, in the
// forms it travels in: as it is, and base64 for LOGIN and PLAIN.
func (m *Mailer) redact(s string) string {
	p := m.cfg.Password
	if p == "" {
		return s
	}
	enc := base64.StdEncoding.EncodeToString
	for _, secret := range []string{
		enc([]byte("\x00" + m.cfg.Username + "\x00" + p)),
		enc([]byte(p)),
		p,
	} {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}
