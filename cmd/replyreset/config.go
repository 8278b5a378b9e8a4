package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/replyreset/replyreset/cmd/replyreset/internal/strictyaml"
	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/expiry"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

// Config is the whole configuration file. Each section is owned, defaulted
// and validated by its package; this type only composes them.
type Config struct {
	Listen     string                 `yaml:"listen"`
	PublicURL  string                 `yaml:"public_url"` // no trailing slash once loaded
	DataDir    string                 `yaml:"data_dir"`
	Language   string                 `yaml:"language"`
	Log        LogConfig              `yaml:"log"`
	Directory  directory.Config       `yaml:"directory"`
	Password   password.Config        `yaml:"password"`
	SMS        gateway.SMSConfig      `yaml:"sms"`
	Reset      gateway.ResetConfig    `yaml:"reset"`
	Enrollment enroll.Config          `yaml:"enrollment"`
	Lockout    lockout.Config         `yaml:"lockout"`
	Reminders  expiry.RemindersConfig `yaml:"reminders"`
	Mail       mailer.Config          `yaml:"mail"`
	Admin      web.AdminConfig        `yaml:"admin"`
	// TrustedProxies are the CIDRs of the reverse proxies whose
	// X-Forwarded-For is believed (web.Deps.TrustedProxies).
	TrustedProxies []string    `yaml:"trusted_proxies"`
	Store          StoreConfig `yaml:"store"`
}

// LogConfig is the `log:` section.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text
}

// DefaultConfig returns every documented default. public_url, data_dir and
// the directory connection have none and must be set.
func DefaultConfig() Config {
	return Config{
		Listen:     "127.0.0.1:8080",
		Language:   "en",
		Log:        LogConfig{Level: "info", Format: "json"},
		Directory:  directory.DefaultConfig(),
		Password:   password.DefaultConfig(),
		SMS:        gateway.DefaultSMSConfig(),
		Reset:      gateway.DefaultResetConfig(),
		Enrollment: enroll.DefaultConfig(),
		Lockout:    lockout.DefaultConfig(),
		Reminders:  expiry.DefaultRemindersConfig(),
		Mail:       mailer.DefaultConfig(),
		Admin:      web.DefaultAdminConfig(),

		TrustedProxies: []string{},
		Store:          DefaultStoreConfig(),
	}
}

// ConfigError is one problem with the configuration. ParseConfig returns
// an errors.Join of them, which prints one problem per line.
type ConfigError = strictyaml.Problem

// Validate checks every section and the rules that span sections. Each
// problem is a *ConfigError with the full key path (and no line: that is
// known only to ParseConfig).
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port, e.g. 127.0.0.1:8080 or :8080, not %q", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		bad("listen", "port must be a number between 1 and 65535, not %q", port)
	} else if strings.ContainsAny(host, "/ ") {
		bad("listen", "%q is not a host name or address", host)
	}
	if c.PublicURL == "" {
		bad("public_url", "required: the https:// address users and Twilio reach the gateway at, e.g. https://reset.example.com")
	} else if p := publicURLProblem(c.PublicURL); p != "" {
		bad("public_url", "%s", p)
	}
	if c.DataDir == "" {
		bad("data_dir", "required: the directory that holds replyreset.db, e.g. /var/lib/replyreset")
	}
	if !templates.SupportedLanguage(c.Language) {
		bad("language", "must be %s, not %q", strings.Join(templates.Languages(), " or "), c.Language)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "must be json or text, not %q", c.Log.Format)
	}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"directory", c.Directory.Validate()},
		{"password", c.Password.Validate()},
		{"sms", c.SMS.Validate()},
		{"reset", c.Reset.Validate()},
		{"enrollment", c.Enrollment.Validate()},
		{"lockout", c.Lockout.Validate()},
		{"reminders", c.Reminders.Validate()},
		{"mail", c.Mail.Validate()},
		{"admin", c.Admin.Validate()},
	} {
		for _, e := range leafErrors(s.err) {
			// Sections say "key: reason" relative to themselves.
			rel, msg, ok := strings.Cut(e.Error(), ": ")
			if !ok {
				rel, msg = "", e.Error()
			}
			errs = append(errs, &ConfigError{Path: strictyaml.JoinPath(s.name, rel), Msg: msg, Err: errors.Unwrap(e)})
		}
	}
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR: give the proxy's network, e.g. 10.0.0.0/24, or one address as 192.0.2.7/32", p)
		}
	}
	if c.Reset.RequireAppCode && !c.Enrollment.HasMethod("app") {
		bad("reset.require_app_code", "needs app in enrollment.methods, or no one could reset")
	}
	return errors.Join(errs...)
}

func publicURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("must be an absolute https:// (or http://) URL, not %q", raw)
	case u.Host == "":
		return fmt.Sprintf("host is missing in %q", raw)
	case u.User != nil:
		return "must not hold a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Sprintf("must not have a query or fragment: %q", raw)
	}
	return ""
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// LoadConfig reads and parses the file at path, with the process
// environment for ${VAR} and the file system for *_file secrets.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, os.LookupEnv, os.ReadFile)
}

// ParseConfig decodes a configuration file strictly over the defaults,
// expands ${VAR} in values with lookupEnv (os.LookupEnv: an unset variable
// is an error, an empty one is not), reads *_file secrets with readFile,
// and validates. All problems come back at once as an errors.Join of
// *ConfigError, in file order, each naming its key path.
//
// A nil lookupEnv or readFile means os.LookupEnv or os.ReadFile.
func ParseConfig(data []byte, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	cfg := DefaultConfig()
	doc, problems := strictyaml.Decode(data, &cfg, lookupEnv)
	if doc == nil {
		return nil, strictyaml.Join(problems)
	}
	for _, s := range []struct {
		value *string
		file  string
		key   string
	}{
		{&cfg.Directory.BindPassword, cfg.Directory.BindPasswordFile, "directory.bind_password"},
		{&cfg.SMS.Twilio.AuthToken, cfg.SMS.Twilio.AuthTokenFile, "sms.twilio.auth_token"},
		{&cfg.Mail.Password, cfg.Mail.PasswordFile, "mail.password"},
		{&cfg.Store.Etcd.Password, cfg.Store.Etcd.PasswordFile, "store.etcd.password"},
	} {
		if p := readSecret(doc, s.value, s.file, s.key, readFile); p != nil {
			problems = append(problems, p)
		}
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")

	errs := leafErrors(cfg.Validate())
	for _, p := range cfg.Store.problems(readFile) {
		errs = append(errs, p)
	}
	for _, e := range errs {
		var ce *ConfigError
		if !errors.As(e, &ce) || doc.Reported(ce.Path) {
			continue
		}
		ce.Line = doc.Line(ce.Path)
		problems = append(problems, ce)
	}
	if len(problems) > 0 {
		return nil, strictyaml.Join(problems)
	}
	return &cfg, nil
}

// readSecret fills *value from file when the *_file form of a secret is set.
func readSecret(doc *strictyaml.Doc, value *string, file, key string, readFile func(string) ([]byte, error)) *ConfigError {
	fileKey := key + "_file"
	if file == "" || doc.Reported(fileKey) {
		return nil
	}
	fail := func(err error, format string, a ...any) *ConfigError {
		doc.MarkReported(fileKey)
		doc.MarkReported(key)
		return &ConfigError{Line: doc.Line(fileKey), Path: fileKey, Msg: fmt.Sprintf(format, a...), Err: err}
	}
	if *value != "" {
		short := key[strings.LastIndexByte(key, '.')+1:]
		return fail(nil, "set either %s or %s_file, not both", short, short)
	}
	b, err := readFile(file)
	if err != nil {
		return fail(err, "%v", err)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	if s == "" {
		return fail(nil, "%s is empty", file)
	}
	*value = s
	return nil
}

// Redacted returns a copy that is safe to print: secrets are replaced, and
// a secret read from a *_file shows only its file name.
func (c Config) Redacted() Config {
	hide := func(secret *string, file string) {
		switch {
		case file != "":
			*secret = ""
		case *secret != "":
			*secret = redacted
		}
	}
	hide(&c.Directory.BindPassword, c.Directory.BindPasswordFile)
	hide(&c.SMS.Twilio.AuthToken, c.SMS.Twilio.AuthTokenFile)
	hide(&c.Mail.Password, c.Mail.PasswordFile)
	hide(&c.Store.Etcd.Password, c.Store.Etcd.PasswordFile)
	return c
}

const redacted = "[redacted]"

// String prints the configuration as YAML with secrets redacted, so %v,
// %+v and %s never show a password.
func (c Config) String() string {
	b, err := yaml.Marshal(c.Redacted())
	if err != nil {
		return fmt.Sprintf("config: %v", err)
	}
	return string(b)
}

// GoString keeps %#v redacted too.
func (c Config) GoString() string {
	type plain Config // no methods: plain %#v
	return fmt.Sprintf("%#v", plain(c.Redacted()))
}

// LogValue keeps slog output redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// trustedProxies are the parsed trusted_proxies (validated by Validate).
func (c Config) trustedProxies() []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, p := range c.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			ps = append(ps, pfx.Masked())
		}
	}
	return ps
}
