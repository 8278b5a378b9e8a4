package mailer

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
)

// TLS modes for the SMTP connection.
const (
	TLSMandatory     = "mandatory"     // TLS with a verified certificate, or no mail
	TLSOpportunistic = "opportunistic" // STARTTLS when the server offers it
	TLSNone          = "none"          // plain SMTP, e.g. a local relay
)

// Config is the `mail:` section of the configuration file. Mail is
// optional: an empty Host turns it off. The loader fills Password from
// PasswordFile when that is set.
type Config struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	Username     string `yaml:"username"` // empty: no SMTP AUTH
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	From         string `yaml:"from"` // RFC 5322 address, e.g. "IT Service Desk <it@example.com>"
	TLS          string `yaml:"tls"`
}

// DefaultConfig returns the documented defaults: mail off.
func DefaultConfig() Config {
	return Config{Port: 587, TLS: TLSMandatory}
}

// Enabled reports whether mail is configured.
func (c Config) Enabled() bool { return c.Host != "" }

// Validate reports every problem, each prefixed by its key relative to
// `mail.`. With mail off nothing is required, but values that are set must
// still make sense.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if _, _, err := net.SplitHostPort(c.Host); err == nil {
		bad("host", "give the host name only; the port goes in mail.port")
	} else if strings.ContainsAny(c.Host, "/ ") {
		bad("host", "%q is not a host name", c.Host)
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port", "must be between 1 and 65535, not %d", c.Port)
	}
	switch c.TLS {
	case TLSMandatory, TLSOpportunistic, TLSNone:
	default:
		bad("tls", "must be mandatory, opportunistic or none, not %q", c.TLS)
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			bad("from", "%q is not a mail address: %v", c.From, err)
		}
	} else if c.Enabled() {
		bad("from", "required when mail.host is set, e.g. \"IT Service Desk <it@example.com>\"")
	}
	if c.Password != "" && c.Username == "" {
		bad("username", "required when a password is set (SMTP AUTH needs both)")
	}
	if c.Enabled() && c.Username != "" && c.TLS == TLSNone && !isLoopback(c.Host) {
		bad("tls", "none would send the SMTP password in clear to %s; use mandatory or opportunistic", c.Host)
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
