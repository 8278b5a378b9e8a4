package directory

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3"
)

// Check is the outcome of reaching one configured URL, step by step.
type Check struct {
	URL    string
	Step   string // the last step tried: dns, tcp, tls, bind, base_dn
	Err    error  // nil when every step passed
	Detail string // for a passed check: what was verified
}

// Diagnose dials every configured URL in turn (DNS, TCP, TLS or StartTLS,
// service bind, base DN lookup) and says precisely where each one fails.
// It is for check-config and start-up messages, not for the request path.
func Diagnose(ctx context.Context, cfg Config) []Check {
	d := dialer{cfg: cfg}
	var out []Check
	for _, raw := range cfg.URLs {
		out = append(out, diagnoseOne(ctx, d, raw))
	}
	return out
}

func diagnoseOne(ctx context.Context, d dialer, raw string) Check {
	conn, err := d.dialBound(ctx, raw)
	if err != nil {
		var se *StepError
		if errors.As(err, &se) {
			return Check{URL: raw, Step: se.Step, Err: explain(se)}
		}
		return Check{URL: raw, Step: StepTCP, Err: err}
	}
	defer conn.Close()
	c := &Client{cfg: d.cfg}
	if err := c.readBase(ctx, conn); err != nil {
		return Check{URL: raw, Step: StepBase, Err: err}
	}
	tls := "no TLS"
	if st, ok := conn.TLSConnectionState(); ok {
		tls = fmt.Sprintf("TLS %s", tlsVersionName(st.Version))
		if d.cfg.InsecureSkipVerify {
			tls += " (certificate NOT verified: insecure_skip_verify)"
		} else {
			tls += ", certificate verified"
		}
	}
	return Check{URL: raw, Step: StepBase, Detail: fmt.Sprintf("%s; bound as %s; base DN %s found", tls, d.cfg.BindDN, d.cfg.BaseDN)}
}

// explain adds the operator's next step to the common failures.
func explain(se *StepError) error {
	hint := ""
	switch se.Step {
	case StepDNS:
		hint = "check the host name and the machine's DNS resolver"
	case StepTCP:
		hint = "check that the server runs and that no firewall blocks the port"
	case StepTLS:
		hint = "check directory.ca_file (the CA that signed the server certificate) and that the URL's host name is in the certificate"
		if !errors.Is(se.Err, ErrTLS) {
			hint = "the server accepted the connection but did not complete a TLS handshake (is it an LDAPS port? is it overloaded?)"
		}
		var le *ldap.Error
		if errors.As(se.Err, &le) && le.ResultCode == ldap.LDAPResultProtocolError {
			hint = "the server refused StartTLS; use ldaps:// or enable TLS on the server"
		}
	case StepBind:
		hint = "check directory.bind_dn and directory.bind_password"
		if errors.Is(se.Err, ErrTLS) {
			hint = "the server requires an encrypted connection for binds: use ldaps:// or start_tls: true"
		}
	}
	if hint == "" {
		return se
	}
	return fmt.Errorf("%w (%s)", se, hint)
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0x0304:
		return "1.3"
	case 0x0303:
		return "1.2"
	}
	return fmt.Sprintf("0x%04x", v)
}
