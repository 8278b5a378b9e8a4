package directory

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Dialects.
const (
	DialectAD       = "ad"
	DialectOpenLDAP = "openldap"
)

// Config is the `directory:` section of the configuration file.
type Config struct {
	Dialect            string        `yaml:"dialect"`
	URLs               []string      `yaml:"urls"`
	StartTLS           bool          `yaml:"start_tls"`
	CAFile             string        `yaml:"ca_file"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	BindDN             string        `yaml:"bind_dn"`
	BindPassword       string        `yaml:"bind_password"`
	BindPasswordFile   string        `yaml:"bind_password_file"`
	BaseDN             string        `yaml:"base_dn"`
	UserFilter         string        `yaml:"user_filter"`
	UsernameAttribute  string        `yaml:"username_attribute"`
	MailAttribute      string        `yaml:"mail_attribute"`
	MobileAttribute    string        `yaml:"mobile_attribute"`
	AdminGroup         string        `yaml:"admin_group"`
	Timeout            time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Dialect:         DialectAD,
		MailAttribute:   "mail",
		MobileAttribute: "mobile",
		Timeout:         10 * time.Second,
	}
}

// Per-dialect defaults for the empty settings.
const (
	adUserFilter       = "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
	openldapUserFilter = "(objectClass=inetOrgPerson)"
)

// EffectiveUserFilter is user_filter, or the dialect's default when empty.
func (c Config) EffectiveUserFilter() string {
	if c.UserFilter != "" {
		return c.UserFilter
	}
	if c.Dialect == DialectOpenLDAP {
		return openldapUserFilter
	}
	return adUserFilter
}

// EffectiveUsernameAttribute is username_attribute, or the dialect's default.
func (c Config) EffectiveUsernameAttribute() string {
	if c.UsernameAttribute != "" {
		return c.UsernameAttribute
	}
	if c.Dialect == DialectOpenLDAP {
		return "uid"
	}
	return "sAMAccountName"
}

// Validate reports every problem at once; each error starts with the key
// path relative to `directory.` (e.g. "urls[1]: scheme must be ldap or ldaps").
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch c.Dialect {
	case DialectAD, DialectOpenLDAP:
	default:
		bad("dialect", "must be ad or openldap, not %q", c.Dialect)
	}
	if len(c.URLs) == 0 {
		bad("urls", "at least one ldap:// or ldaps:// URL is required")
	}
	for i, raw := range c.URLs {
		key := fmt.Sprintf("urls[%d]", i)
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			bad(key, "not a URL: %v", err)
		case u.Scheme != "ldap" && u.Scheme != "ldaps":
			bad(key, "scheme must be ldap or ldaps")
		case u.Hostname() == "":
			bad(key, "host is missing")
		case u.Path != "" && u.Path != "/":
			bad(key, "must not have a path (the base DN goes in directory.base_dn)")
		case u.Scheme == "ldaps" && c.StartTLS:
			bad(key, "start_tls applies to ldap:// URLs; ldaps:// is already encrypted")
		}
	}
	if c.BindDN == "" {
		bad("bind_dn", "required: the service account the gateway binds with")
	}
	if c.BindPassword == "" {
		bad("bind_password", "required (or bind_password_file)")
	}
	if c.BaseDN == "" {
		bad("base_dn", "required, e.g. DC=example,DC=com")
	} else if !looksLikeDN(c.BaseDN) {
		bad("base_dn", "%q is not a distinguished name", c.BaseDN)
	}
	if c.UserFilter != "" && !(strings.HasPrefix(c.UserFilter, "(") && strings.HasSuffix(c.UserFilter, ")")) {
		bad("user_filter", "must be an LDAP filter in parentheses")
	}
	if c.AdminGroup != "" && !looksLikeDN(c.AdminGroup) {
		bad("admin_group", "%q is not a distinguished name", c.AdminGroup)
	}
	if c.MailAttribute == "" {
		bad("mail_attribute", "must not be empty")
	}
	if c.MobileAttribute == "" {
		bad("mobile_attribute", "must not be empty")
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, e.g. 10s")
	}
	return errors.Join(errs...)
}

func looksLikeDN(s string) bool {
	first, _, _ := strings.Cut(s, ",")
	k, v, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(k) != "" && strings.TrimSpace(v) != ""
}
