package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/replyreset/replyreset/cmd/replyreset/internal/strictyaml"
	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/expiry"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/web"
)

const exampleConfigPath = "../../config.example.yaml"

// minimalConfig is the smallest valid file: only what has no default.
const minimalConfig = `public_url: https://reset.example.com
data_dir: /var/lib/replyreset
directory:
  urls: [ldaps://dc1.example.com]
  bind_dn: CN=svc,DC=example,DC=com
  bind_password: pw
  base_dn: DC=example,DC=com
sms:
  provider: outbox
`

func testEnv(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func testFiles(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func parseTestConfig(t *testing.T, data string, env map[string]string, files map[string]string) (*Config, error) {
	t.Helper()
	return ParseConfig([]byte(data), testEnv(env), testFiles(files))
}

func mustParseConfig(t *testing.T, data string, env map[string]string, files map[string]string) *Config {
	t.Helper()
	cfg, err := parseTestConfig(t, data, env, files)
	if err != nil {
		t.Fatalf("ParseConfig: unexpected error:\n%v", err)
	}
	return cfg
}

// configProblems parses data and returns the lines of its error.
func configProblems(t *testing.T, data string, env map[string]string, files map[string]string) []string {
	t.Helper()
	cfg, err := parseTestConfig(t, data, env, files)
	if err == nil {
		t.Fatalf("ParseConfig succeeded, want an error; got %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("ParseConfig returned a config together with an error")
	}
	return strings.Split(err.Error(), "\n")
}

func assertProblems(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("configProblems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestDefaults(t *testing.T) {
	d := DefaultConfig()
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", d.Listen, "127.0.0.1:8080"},
		{"language", d.Language, "en"},
		{"log", d.Log, LogConfig{Level: "info", Format: "json"}},
		{"directory.dialect", d.Directory.Dialect, "ad"},
		{"directory.timeout", d.Directory.Timeout, 10 * time.Second},
		{"directory.mail_attribute", d.Directory.MailAttribute, "mail"},
		{"directory.mobile_attribute", d.Directory.MobileAttribute, "mobile"},
		{"password", d.Password, password.Config{Length: 12, Style: "readable", MustChange: true, Unlock: true, SMSPasswordTTL: 10 * time.Minute}},
		{"sms.provider", d.SMS.Provider, "twilio"},
		{"sms.default_region", d.SMS.DefaultRegion, "US"},
		{"sms.allowed_countries", len(d.SMS.AllowedCountries), 0},
		{"sms.rate_per_second", d.SMS.RatePerSecond, 1.0},
		{"sms.budgets", d.SMS.Budgets, gateway.BudgetConfig{PerNumberDay: 10, PerCountryDay: map[string]int{}, PerDay: 1000}},
		{"sms.lookup", d.SMS.Lookup, gateway.LookupConfig{}},
		{"sms.twilio", d.SMS.Twilio, gateway.TwilioConfig{}},
		{"reset", d.Reset, gateway.ResetConfig{RequireAppCode: false, MaxPerHour: 3, ProtectPrivileged: true,
			Web: gateway.WebResetConfig{Enabled: true, ChoosePassword: true}}},
		{"enrollment", d.Enrollment, enroll.Config{ActivationTTL: 168 * time.Hour, CodeTTL: 40 * time.Minute, ResendAfter: 60 * time.Second, MaxAttempts: 5, Methods: []string{"sms", "voice", "app"}}},
		{"lockout", d.Lockout, lockout.Config{Enabled: true, PollInterval: 30 * time.Second, StormThreshold: 10, StormWindow: 5 * time.Minute}},
		{"reminders", d.Reminders, expiry.RemindersConfig{Days: []int{14, 7, 3, 1}}},
		{"mail", d.Mail, mailer.Config{Port: 587, TLS: "mandatory"}},
		{"admin", d.Admin, web.AdminConfig{SessionTTL: 8 * time.Hour}},
		{"trusted_proxies", d.TrustedProxies, []string{}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// A file with only the required keys gets every other default.
	got := mustParseConfig(t, minimalConfig, nil, nil)
	want := DefaultConfig()
	want.PublicURL = "https://reset.example.com"
	want.DataDir = "/var/lib/replyreset"
	want.Directory.URLs = []string{"ldaps://dc1.example.com"}
	want.Directory.BindDN = "CN=svc,DC=example,DC=com"
	want.Directory.BindPassword = "pw"
	want.Directory.BaseDN = "DC=example,DC=com"
	want.SMS.Provider = "outbox"
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("minimalConfig file:\n got %#v\nwant %#v", plainTestConfigOf(*got), plainTestConfigOf(want))
	}
}

type plainTestConfig Config // prints secrets: tests only

func plainTestConfigOf(c Config) plainTestConfig { return plainTestConfig(c) }

func TestNullKeepsDefault(t *testing.T) {
	cfg := mustParseConfig(t, minimalConfig+"listen:\nreminders: {days: ~}\nlockout: {poll_interval: null}\nmail:\n", nil, nil)
	if cfg.Listen != "127.0.0.1:8080" || !slices.Equal(cfg.Reminders.Days, []int{14, 7, 3, 1}) || cfg.Lockout.PollInterval != 30*time.Second || cfg.Mail.Port != 587 {
		t.Errorf("null values did not keep the defaults: %+v", plainTestConfigOf(*cfg))
	}
	// An explicit empty string is a value, not an absence.
	assertProblems(t, configProblems(t, minimalConfig+"listen: \"\"\n", nil, nil), []string{`line 10: listen: must be host:port, e.g. 127.0.0.1:8080 or :8080, not ""`})
}

func TestEmptyListTurnsOff(t *testing.T) {
	cfg := mustParseConfig(t, minimalConfig+"reminders: {days: []}\n", nil, nil)
	if cfg.Reminders.Days == nil || len(cfg.Reminders.Days) != 0 {
		t.Errorf("reminders.days: [] = %#v, want an empty list (reminders off)", cfg.Reminders.Days)
	}
}

func exampleConfigEnv() map[string]string {
	return map[string]string{
		"REPLYRESET_BIND_PASSWORD": "bind-$ecret",
		"TWILIO_AUTH_TOKEN":        "twilio-token",
		"SMTP_PASSWORD":            "smtp-secret",
	}
}

// TestExampleFile loads config.example.yaml as an operator would and checks
// every key's value.
func TestExampleFile(t *testing.T) {
	for k, v := range exampleConfigEnv() {
		t.Setenv(k, v)
	}
	cfg, err := LoadConfig(exampleConfigPath)
	if err != nil {
		t.Fatalf("config.example.yaml does not load:\n%v", err)
	}
	want := Config{
		Listen:    "127.0.0.1:8080",
		PublicURL: "https://reset.example.com",
		DataDir:   "/var/lib/replyreset",
		Language:  "en",
		Log:       LogConfig{Level: "info", Format: "json"},
		Directory: directory.Config{
			Dialect:            "ad",
			URLs:               []string{"ldaps://dc1.example.com:636", "ldaps://dc2.example.com:636"},
			StartTLS:           false,
			CAFile:             "",
			InsecureSkipVerify: false,
			BindDN:             "CN=svc-replyreset,OU=Service Accounts,DC=example,DC=com",
			BindPassword:       "bind-$ecret",
			BindPasswordFile:   "",
			BaseDN:             "DC=example,DC=com",
			UserFilter:         "",
			UsernameAttribute:  "",
			MailAttribute:      "mail",
			MobileAttribute:    "mobile",
			AdminGroup:         "CN=Helpdesk,OU=Groups,DC=example,DC=com",
			Timeout:            10 * time.Second,
		},
		Password: password.Config{Length: 12, Style: "readable", MustChange: true, Unlock: true, SMSPasswordTTL: 10 * time.Minute},
		SMS: gateway.SMSConfig{
			Provider: "twilio",
			Twilio: gateway.TwilioConfig{
				AccountSID: "AC0123456789abcdef0123456789abcdef",
				AuthToken:  "twilio-token",
				From:       "+15550001111",
			},
			DefaultRegion:    "US",
			AllowedCountries: []string{},
			RatePerSecond:    1,
			Budgets:          gateway.BudgetConfig{PerNumberDay: 10, PerCountryDay: map[string]int{}, PerDay: 1000},
			Lookup:           gateway.LookupConfig{LineType: false, SIMSwapMaxAge: 0},
		},
		Reset: gateway.ResetConfig{RequireAppCode: false, MaxPerHour: 3, ProtectPrivileged: true,
			AllowGroups: []string{}, DenyGroups: []string{}, Web: gateway.WebResetConfig{Enabled: true, ChoosePassword: true}},
		Enrollment: enroll.Config{ActivationTTL: 168 * time.Hour, CodeTTL: 40 * time.Minute, ResendAfter: 60 * time.Second, MaxAttempts: 5, Methods: []string{"sms", "voice", "app"}},
		Lockout:    lockout.Config{Enabled: true, PollInterval: 30 * time.Second, StormThreshold: 10, StormWindow: 5 * time.Minute},
		Reminders:  expiry.RemindersConfig{Days: []int{14, 7, 3, 1}},
		Mail: mailer.Config{
			Host:     "smtp.example.com",
			Port:     587,
			Username: "svc-replyreset@example.com",
			Password: "smtp-secret",
			From:     "IT Service Desk <it@example.com>",
			TLS:      "mandatory",
		},
		Admin:          web.AdminConfig{SessionTTL: 8 * time.Hour, AlertMail: []string{}},
		TrustedProxies: []string{},
		Store: StoreConfig{Backend: "bolt", Etcd: EtcdConfig{
			Endpoints: []string{"https://etcd1.example.com:2379", "https://etcd2.example.com:2379", "https://etcd3.example.com:2379"},
			Prefix:    "/replyreset/", DialTimeout: 5 * time.Second}},
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("config.example.yaml:\n got %#v\nwant %#v", plainTestConfigOf(*cfg), plainTestConfigOf(want))
	}

	// Without the environment, the example names each missing variable.
	_, err = ParseConfig(mustReadFile(t, exampleConfigPath), testEnv(nil), testFiles(nil))
	for _, v := range []string{"directory.bind_password: environment variable REPLYRESET_BIND_PASSWORD is not set", "sms.twilio.auth_token: environment variable TWILIO_AUTH_TOKEN is not set", "mail.password: environment variable SMTP_PASSWORD is not set"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("example without environment: want %q in\n%v", v, err)
		}
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExampleDocumentsEveryKey keeps config.example.yaml and the Config
// types in step: every key of the types is in the example with a comment,
// and the example has no other key.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(mustReadFile(t, exampleConfigPath), &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strictyaml.JoinPath(path, k.Value)
			inFile[p] = true
			if v.Kind == yaml.MappingNode && !strings.HasSuffix(p, "per_country_day") {
				walk(v, p)
			} else if k.LineComment == "" && v.LineComment == "" {
				t.Errorf("config.example.yaml: %s has no comment", p)
			}
		}
	}
	walk(doc.Content[0], "")

	inType := map[string]bool{}
	var keys func(typ reflect.Type, path string)
	keys = func(typ reflect.Type, path string) {
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no yaml key", typ, typ.Field(i).Name)
				continue
			}
			p := strictyaml.JoinPath(path, name)
			inType[p] = true
			if ft := typ.Field(i).Type; ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
				keys(ft, p)
			}
		}
	}
	keys(reflect.TypeFor[Config](), "")

	for p := range inType {
		if !inFile[p] {
			t.Errorf("config.example.yaml does not document %s", p)
		}
	}
	for p := range inFile {
		if !inType[p] {
			t.Errorf("config.example.yaml has %s, which Config does not know", p)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"A": "alpha", "B": "beta", "EMPTY": "", "PORT": "2525", "URL": "ldaps://dc9.example.com", "BAD_PORT": "s3cret"}
	tests := []struct {
		value string // YAML for directory.bind_password
		want  string
	}{
		{`"${A}"`, "alpha"},
		{`x${A}y${B}z`, "xalphaybetaz"},
		{`"${EMPTY}"`, ""},                     // set but empty is allowed
		{`"$A"`, "$A"},                         // braces required
		{`"p$$word"`, "p$$word"},               // $$ is not an escape
		{`"pa$${A}"`, "pa$alpha"},              // ...so $${A} is $ then ${A}
		{`"$"`, "$"},                           // a lone $
		{`"ab${cd"`, "ab${cd"},                 // unterminated
		{`"${}"`, "${}"},                       // no name
		{`"${1A}"`, "${1A}"},                   // not a variable name
		{`"${A-B}"`, "${A-B}"},                 // not a variable name
		{`"${${A}}"`, "${alpha}"},              // expanded once, not recursively
		{`'${A}'`, "alpha"},                    // single quotes do not stop it
		{`"tr!cky$pa ss{}"`, "tr!cky$pa ss{}"}, // a real password with $ stays
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			in := strings.Replace(minimalConfig, "bind_password: pw", "bind_password: "+tc.value, 1)
			if tc.want == "" {
				// Set but empty expands fine; an empty password then
				// fails validation, not expansion.
				assertProblems(t, configProblems(t, in, env, nil), []string{"line 6: directory.bind_password: required (or bind_password_file)"})
				return
			}
			cfg := mustParseConfig(t, in, env, nil)
			if cfg.Directory.BindPassword != tc.want {
				t.Errorf("bind_password: %s = %q, want %q", tc.value, cfg.Directory.BindPassword, tc.want)
			}
		})
	}

	t.Run("non-string values and list items", func(t *testing.T) {
		in := strings.Replace(minimalConfig, "urls: [ldaps://dc1.example.com]", `urls: ["${URL}", ldaps://dc2.example.com]`, 1) +
			"mail: {host: mx.example.com, port: \"${PORT}\", from: it@example.com}\n"
		cfg := mustParseConfig(t, in, env, nil)
		if cfg.Mail.Port != 2525 || cfg.Directory.URLs[0] != "ldaps://dc9.example.com" {
			t.Errorf("got port %d, urls %q", cfg.Mail.Port, cfg.Directory.URLs)
		}
	})

	t.Run("missing variable names key and variable", func(t *testing.T) {
		in := strings.Replace(minimalConfig, "bind_password: pw", "bind_password: ${REPLYRESET_BIND_PASSWORD}", 1) +
			"mail: {host: mx.example.com, from: \"${MISSING_FROM}\"}\n"
		assertProblems(t, configProblems(t, in, env, nil), []string{
			"line 6: directory.bind_password: environment variable REPLYRESET_BIND_PASSWORD is not set",
			"line 10: mail.from: environment variable MISSING_FROM is not set",
		})
	})

	t.Run("keys and comments are never expanded", func(t *testing.T) {
		in := minimalConfig + "# ${NOT_SET} in a comment is fine\n\"${A}\": 1\n"
		assertProblems(t, configProblems(t, in, env, nil), []string{`line 11: ["${A}"]: unknown key`})
	})

	t.Run("a bad expanded value is not shown", func(t *testing.T) {
		in := minimalConfig + "mail: {port: \"${BAD_PORT}\"}\n"
		got := configProblems(t, in, env, nil)
		assertProblems(t, got, []string{`line 10: mail.port: "${BAD_PORT}" (after expansion) is not a whole number`})
	})
}

func TestSecretFiles(t *testing.T) {
	files := map[string]string{
		"/run/secrets/bind":   "from-file\n",
		"/run/secrets/crlf":   "from-file\r\n",
		"/run/secrets/two":    "from-file\n\n",
		"/run/secrets/none":   "from-file",
		"/run/secrets/token":  "tok\n",
		"/run/secrets/smtp":   "smtp$pw\n",
		"/run/secrets/empty":  "\n",
		"/run/secrets/spaces": " pw \n",
	}
	bindFile := func(path string) string {
		return strings.Replace(minimalConfig, "bind_password: pw", "bind_password_file: "+path, 1)
	}
	for path, want := range map[string]string{
		"/run/secrets/bind":   "from-file",
		"/run/secrets/crlf":   "from-file",
		"/run/secrets/two":    "from-file\n", // one trailing newline only
		"/run/secrets/none":   "from-file",
		"/run/secrets/spaces": " pw ",
	} {
		cfg := mustParseConfig(t, bindFile(path), nil, files)
		if cfg.Directory.BindPassword != want {
			t.Errorf("bind_password_file %s: password %q, want %q", path, cfg.Directory.BindPassword, want)
		}
		if cfg.Directory.BindPasswordFile != path {
			t.Errorf("bind_password_file = %q, want %q", cfg.Directory.BindPasswordFile, path)
		}
	}

	t.Run("every secret", func(t *testing.T) {
		in := bindFile("/run/secrets/bind") + `  twilio:
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token_file: /run/secrets/token
    from: "+15550001111"
mail:
  host: smtp.example.com
  username: svc
  password_file: /run/secrets/smtp
  from: it@example.com
`
		cfg := mustParseConfig(t, in, nil, files)
		if cfg.SMS.Twilio.AuthToken != "tok" || cfg.Mail.Password != "smtp$pw" {
			t.Errorf("auth_token %q, mail password %q", cfg.SMS.Twilio.AuthToken, cfg.Mail.Password)
		}
	})

	t.Run("path from the environment", func(t *testing.T) {
		cfg := mustParseConfig(t, bindFile("${SECRETS}/bind"), map[string]string{"SECRETS": "/run/secrets"}, files)
		if cfg.Directory.BindPassword != "from-file" {
			t.Errorf("password %q", cfg.Directory.BindPassword)
		}
	})

	t.Run("both forms, unreadable, empty", func(t *testing.T) {
		in := strings.Replace(minimalConfig, "bind_password: pw", "bind_password: pw\n  bind_password_file: /run/secrets/bind", 1) + `  twilio:
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token_file: /run/secrets/missing
    from: "+15550001111"
mail:
  host: smtp.example.com
  username: svc
  password_file: /run/secrets/empty
  from: it@example.com
`
		_, err := parseTestConfig(t, in, nil, files)
		if err == nil {
			t.Fatal("no error")
		}
		assertProblems(t, strings.Split(err.Error(), "\n"), []string{
			"line 7: directory.bind_password_file: set either bind_password or bind_password_file, not both",
			"line 13: sms.twilio.auth_token_file: open /run/secrets/missing: file does not exist",
			"line 18: mail.password_file: /run/secrets/empty is empty",
		})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(err, fs.ErrNotExist) = false; the OS error must stay reachable")
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("errors.As(err, *ConfigError) = false")
		}
	})

	t.Run("real file system", func(t *testing.T) {
		dir := t.TempDir()
		secret := dir + "/bind"
		if err := os.WriteFile(secret, []byte("disk-pw\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfgPath := dir + "/config.yaml"
		if err := os.WriteFile(cfgPath, []byte(bindFile(secret)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Directory.BindPassword != "disk-pw" {
			t.Errorf("password %q", cfg.Directory.BindPassword)
		}
		if _, err := LoadConfig(dir + "/nope.yaml"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadConfig of a missing file: %v", err)
		}
	})
}

// TestResetWebKeys: reset.web.enabled and choose_password are on by
// default, each can be turned off, and an unknown key under reset.web or
// a value that is not a boolean is named.
func TestResetWebKeys(t *testing.T) {
	if w := DefaultConfig().Reset.Web; !w.Enabled || !w.ChoosePassword {
		t.Errorf("default reset.web = %+v, want both on", w)
	}
	cfg := mustParseConfig(t, minimalConfig+"reset:\n  web: {enabled: false, choose_password: false}\n", nil, nil)
	if w := cfg.Reset.Web; w.Enabled || w.ChoosePassword {
		t.Errorf("reset.web = %+v, want both off", w)
	}
	problems := configProblems(t, minimalConfig+"reset:\n  web: {enabled: maybe, choose: true}\n", nil, nil)
	for _, want := range []string{"reset.web.enabled", "reset.web.choose"} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("no problem naming %s in %q", want, problems)
		}
	}
}

// TestResetSelfServiceKeys: reset.protect_privileged, allow_groups and
// deny_groups decode into the section and bad entries are named.
func TestResetSelfServiceKeys(t *testing.T) {
	cfg := mustParseConfig(t, minimalConfig+`reset:
  protect_privileged: false
  allow_groups: ["CN=SMS Users,OU=Groups,DC=example,DC=com", "Staff"]
  deny_groups: [Tier0]
`, nil, nil)
	want := gateway.ResetConfig{MaxPerHour: 3, ProtectPrivileged: false,
		AllowGroups: []string{"CN=SMS Users,OU=Groups,DC=example,DC=com", "Staff"}, DenyGroups: []string{"Tier0"},
		Web: gateway.WebResetConfig{Enabled: true, ChoosePassword: true}}
	if !reflect.DeepEqual(cfg.Reset, want) {
		t.Fatalf("reset = %#v, want %#v", cfg.Reset, want)
	}
	if p := cfg.Reset.SelfServicePolicy(); !p.AllowPrivileged || len(p.AllowGroups) != 2 || p.DenyGroups[0] != "Tier0" {
		t.Errorf("SelfServicePolicy() = %+v", p)
	}
	if p := DefaultConfig().Reset.SelfServicePolicy(); p.AllowPrivileged {
		t.Errorf("default policy %+v lets privileged accounts in", p)
	}
	problems := configProblems(t, minimalConfig+`reset:
  allow_groups: ["", "CN=,DC=x", Staff, staff]
  deny_groups: [" Tier0"]
`, nil, nil)
	for _, want := range []string{
		`reset.allow_groups[0]: empty group: give a DN or a group name`,
		`reset.allow_groups[1]: "CN=,DC=x" is neither a distinguished name nor a group name`,
		`reset.allow_groups[3]: "staff" is listed twice`,
		`reset.deny_groups[0]: " Tier0" has leading or trailing spaces`,
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasSuffix(p, want) }) {
			t.Errorf("no problem %q in %q", want, problems)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	in := `lisen: ":8080"
public_url: https://reset.example.com
data_dir: /var/lib/replyreset
directory:
  urls: [ldaps://dc1.example.com]
  bind_dn: CN=svc,DC=example,DC=com
  bind_pasword: pw
  bind_password: pw
  base_dn: DC=example,DC=com
sms:
  provider: outbox
  twilio:
    acount_sid: x
  budgets: {per_number_dy: 1, per_country_day: {FR: 1}}
  lookup: {sim_swap: 1h}
log: {formt: text}
reminders: {days: [1], weeks: [1]}
colour: blue
`
	assertProblems(t, configProblems(t, in, nil, nil), []string{
		"line 1: lisen: unknown key (did you mean listen?)",
		"line 7: directory.bind_pasword: unknown key (did you mean bind_password?)",
		"line 13: sms.twilio.acount_sid: unknown key (did you mean account_sid?)",
		"line 14: sms.budgets.per_number_dy: unknown key (did you mean per_number_day?)",
		"line 15: sms.lookup.sim_swap: unknown key",
		"line 16: log.formt: unknown key (did you mean format?)",
		"line 17: reminders.weeks: unknown key",
		"line 18: colour: unknown key",
	})
}

func TestEverySectionReportedTogether(t *testing.T) {
	in := `listen: "localhost"
public_url: "ftp://x"
data_dir: ""
language: de
log: {level: loud, format: xml}
directory:
  dialect: novell
  urls: ["ldap://ok.example.com", "http://dc2"]
  bind_dn: CN=svc,DC=example,DC=com
  bind_password: pw
  base_dn: example.com
  timeout: 0s
password: {length: 4, style: emoji}
sms:
  provider: twilio
  twilio: {account_sid: AC123, auth_token: t, from: "555-1234"}
  default_region: XX
  rate_per_second: 0
  budgets: {per_day: -1, per_country_day: {fr: 5}}
  allowed_countries: [US, US, ZZ]
reset: {max_per_hour: 0, require_app_code: true}
enrollment: {code_ttl: 1m, resend_after: 2m, methods: [sms, fax, sms]}
lockout: {poll_interval: 100ms, storm_threshold: 0}
reminders: {days: [0, 7, 7]}
mail: {host: smtp.example.com, port: 0, tls: maybe}
admin: {session_ttl: 30s}
`
	assertProblems(t, configProblems(t, in, nil, nil), []string{
		`line 1: listen: must be host:port, e.g. 127.0.0.1:8080 or :8080, not "localhost"`,
		`line 2: public_url: must be an absolute https:// (or http://) URL, not "ftp://x"`,
		`line 3: data_dir: required: the directory that holds replyreset.db, e.g. /var/lib/replyreset`,
		`line 4: language: must be en or fr, not "de"`,
		`line 5: log.level: must be debug, info, warn or error, not "loud"`,
		`line 5: log.format: must be json or text, not "xml"`,
		`line 7: directory.dialect: must be ad or openldap, not "novell"`,
		`line 8: directory.urls[1]: scheme must be ldap or ldaps`,
		`line 11: directory.base_dn: "example.com" is not a distinguished name`,
		`line 12: directory.timeout: must be positive, e.g. 10s`,
		`line 13: password.length: must be between 8 and 64, not 4`,
		`line 13: password.style: must be readable, random or words, not "emoji"`,
		`line 16: sms.twilio.account_sid: "AC123" is not a Twilio account SID (AC followed by 32 hex digits, 34 characters)`,
		`line 16: sms.twilio.from: "555-1234" is not an E.164 number (+ country code and number, no spaces, e.g. +15550001111)`,
		`line 17: sms.default_region: "XX" is not a supported ISO 3166 alpha-2 region code (e.g. US, GB, FR)`,
		`line 18: sms.rate_per_second: must be a positive number, e.g. 1`,
		`line 19: sms.budgets.per_day: must not be negative (0 = no limit)`,
		`line 19: sms.budgets.per_country_day.fr: region codes are upper case: FR`,
		`line 20: sms.allowed_countries[1]: US is listed twice`,
		`line 20: sms.allowed_countries[2]: "ZZ" is not a supported ISO 3166 alpha-2 region code (e.g. US, GB, FR)`,
		`line 21: reset.max_per_hour: must be at least 1, not 0`,
		`line 21: reset.require_app_code: needs app in enrollment.methods, or no one could reset`,
		`line 22: enrollment.resend_after: must be shorter than enrollment.code_ttl (1m0s)`,
		`line 22: enrollment.methods[1]: must be sms, voice or app, not "fax"`,
		`line 22: enrollment.methods[2]: sms is listed twice`,
		`line 23: lockout.poll_interval: must be at least 1s, not 100ms`,
		`line 23: lockout.storm_threshold: must be at least 1, not 0`,
		`line 24: reminders.days[0]: must be between 1 and 365, not 0`,
		`line 24: reminders.days[2]: 7 is listed twice`,
		`line 25: mail.port: must be between 1 and 65535, not 0`,
		`line 25: mail.tls: must be mandatory, opportunistic or none, not "maybe"`,
		`line 26: admin.session_ttl: must be at least 1m, not 30s`,
		`mail.from: required when mail.host is set, e.g. "IT Service Desk <it@example.com>"`,
	})
}

func TestMissingRequired(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "~\n", "{}\n"} {
		assertProblems(t, configProblems(t, in, nil, nil), []string{
			"public_url: required: the https:// address users and Twilio reach the gateway at, e.g. https://reset.example.com",
			"data_dir: required: the directory that holds replyreset.db, e.g. /var/lib/replyreset",
			"directory.urls: at least one ldap:// or ldaps:// URL is required",
			"directory.bind_dn: required: the service account the gateway binds with",
			"directory.bind_password: required (or bind_password_file)",
			"directory.base_dn: required, e.g. DC=example,DC=com",
			"sms.twilio.account_sid: required for provider twilio (AC followed by 32 hex digits, from the Twilio console)",
			"sms.twilio.auth_token: required for provider twilio (or twilio.auth_token_file)",
			"sms.twilio.from: required for provider twilio: the sending number in E.164, e.g. +15550001111 (or twilio.messaging_service_sid)",
		})
	}
}

func TestTypeErrors(t *testing.T) {
	in := minimalConfig + `lockout:
  poll_interval: 30x
  enabled: yes
  storm_threshold: 1.5
log: [info]
reminders: {days: 7}
enrollment: {methods: [sms, [voice]], max_attempts: "010x"}
password: 12
mail: {port: 5_87}
reset: {max_per_hour: !!binary AAAA}
admin: {session_ttl: {hours: 8}}
`
	assertProblems(t, configProblems(t, in, nil, nil), []string{
		`line 11: lockout.poll_interval: "30x" is not a duration (e.g. 30s, 5m)`,
		`line 12: lockout.enabled: "yes" is not true or false`,
		`line 13: lockout.storm_threshold: "1.5" is not a whole number`,
		`line 14: log: must be a mapping of settings (key: value), not a list`,
		`line 15: reminders.days: must be a list, e.g. [a, b], not "7"`,
		`line 16: enrollment.methods[1]: must be a single value, not a list`,
		`line 16: enrollment.max_attempts: "010x" is not a whole number`,
		`line 17: password: must be a mapping of settings (key: value), not "12"`,
		`line 18: mail.port: "5_87" is not a whole number`,
		`line 19: reset.max_per_hour: the YAML tag !!binary is not supported here`,
		`line 20: admin.session_ttl: must be a single value, not a mapping`,
	})

	t.Run("float", func(t *testing.T) {
		for _, v := range []string{"fast", ".nan", ".inf", "1e400"} {
			got := configProblems(t, minimalConfig+"  rate_per_second: "+v+"\n", nil, nil)
			assertProblems(t, got, []string{fmt.Sprintf("line 10: sms.rate_per_second: %q is not a number", v)})
		}
		cfg := mustParseConfig(t, minimalConfig+"  rate_per_second: 0.5\n", nil, nil)
		if cfg.SMS.RatePerSecond != 0.5 {
			t.Errorf("rate_per_second = %v", cfg.SMS.RatePerSecond)
		}
	})
}

func TestYAMLStructure(t *testing.T) {
	t.Run("duplicate key", func(t *testing.T) {
		assertProblems(t, configProblems(t, minimalConfig+"data_dir: /srv\n", nil, nil), []string{"line 10: data_dir: set twice (first on line 2)"})
	})
	t.Run("syntax error", func(t *testing.T) {
		assertProblems(t, configProblems(t, "listen: [\n", nil, nil), []string{"line 1: did not find expected node content"})
	})
	t.Run("tab indentation", func(t *testing.T) {
		got := configProblems(t, "directory:\n\turls: []\n", nil, nil)
		if len(got) != 1 || !strings.HasPrefix(got[0], "line 2: ") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("two documents", func(t *testing.T) {
		assertProblems(t, configProblems(t, minimalConfig+"---\nlisten: :9\n", nil, nil), []string{"line 10: the file must hold one YAML document; remove the second (---)"})
	})
	t.Run("document markers", func(t *testing.T) {
		mustParseConfig(t, "---\n"+minimalConfig+"...\n", nil, nil)
		mustParseConfig(t, minimalConfig+"---\n", nil, nil)
	})
	t.Run("not a mapping", func(t *testing.T) {
		assertProblems(t, configProblems(t, "- listen\n", nil, nil), []string{"line 1: the file must be a YAML mapping of settings (key: value)"})
	})
	t.Run("complex key", func(t *testing.T) {
		assertProblems(t, configProblems(t, minimalConfig+"? [a]\n: 1\n", nil, nil), []string{"line 10: keys must be plain names, not a list"})
	})
	t.Run("anchors and merges", func(t *testing.T) {
		in := minimalConfig + `x-timeouts: &t {poll_interval: 10s, storm_window: 1m}
`
		assertProblems(t, configProblems(t, in, nil, nil), []string{"line 10: x-timeouts: unknown key"})

		in = strings.Replace(minimalConfig, "bind_dn: CN=svc,DC=example,DC=com", "bind_dn: &svc CN=svc,DC=example,DC=com", 1) + `lockout: &lock
  poll_interval: 10s
enrollment: {methods: &m [sms]}
x-unused: 1
`
		assertProblems(t, configProblems(t, in, nil, nil), []string{"line 13: x-unused: unknown key"})
		in = strings.Replace(in, "x-unused: 1\n", "admin: {session_ttl: 1h}\ndirectory2: *lock\n", 1)
		assertProblems(t, configProblems(t, in, nil, nil), []string{"line 14: directory2: unknown key (did you mean directory?)"})
		in = strings.Replace(in, "directory2: *lock\n", "mail: {host: mx.example.com, from: it@example.com, username: *svc}\n", 1)
		cfg := mustParseConfig(t, in, nil, nil)
		if cfg.Mail.Username != "CN=svc,DC=example,DC=com" || cfg.Lockout.PollInterval != 10*time.Second || !slices.Equal(cfg.Enrollment.Methods, []string{"sms"}) {
			t.Errorf("aliases: %+v", plainTestConfigOf(*cfg))
		}
	})
	t.Run("merge keys", func(t *testing.T) {
		in := minimalConfig + `log: &base {level: debug, format: text}
admin: {session_ttl: 1h}
lockout:
  <<: {poll_interval: 10s, storm_window: 2m, storm_threshold: 3}
  storm_threshold: 4
`
		cfg := mustParseConfig(t, in, nil, nil)
		want := lockout.Config{Enabled: true, PollInterval: 10 * time.Second, StormWindow: 2 * time.Minute, StormThreshold: 4}
		if cfg.Lockout != want {
			t.Errorf("merge: %+v, want %+v", cfg.Lockout, want)
		}
		assertProblems(t, configProblems(t, minimalConfig+"log:\n  <<: {levl: x}\n", nil, nil), []string{"line 11: log.levl: unknown key (did you mean level?)"})
		assertProblems(t, configProblems(t, minimalConfig+"log:\n  <<: 5\n", nil, nil), []string{`line 11: log: << must merge a mapping, not "5"`})
	})
	t.Run("alias bomb", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("a0: &a0 {level: info}\n")
		for i := 1; i < 30; i++ {
			fmt.Fprintf(&b, "a%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1)
		}
		b.WriteString("log: {<<: *a29}\n")
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := parseTestConfig(t, b.String(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), "too large or expands too many aliases") && !strings.Contains(err.Error(), "nest too deeply") {
				t.Errorf("alias bomb: %v", err)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("alias bomb did not stop")
		}
	})
}

func TestPublicURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://reset.example.com/":       "https://reset.example.com",
		"https://reset.example.com/sspr//": "https://reset.example.com/sspr",
		"http://127.0.0.1:8080":            "http://127.0.0.1:8080",
	} {
		cfg := mustParseConfig(t, strings.Replace(minimalConfig, "https://reset.example.com", in, 1), nil, nil)
		if cfg.PublicURL != want {
			t.Errorf("public_url %q loaded as %q, want %q", in, cfg.PublicURL, want)
		}
	}
	for in, want := range map[string]string{
		"reset.example.com":              `line 1: public_url: must be an absolute https:// (or http://) URL, not "reset.example.com"`,
		"https://reset.example.com/?a=1": `line 1: public_url: must not have a query or fragment: "https://reset.example.com/?a=1"`,
		"https://reset.example.com/#top": `line 1: public_url: must not have a query or fragment: "https://reset.example.com/#top"`,
		"https://u:p@reset.example.com":  `line 1: public_url: must not hold a user name or password`,
		"https:///path":                  `line 1: public_url: host is missing in "https:///path"`,
	} {
		assertProblems(t, configProblems(t, strings.Replace(minimalConfig, "https://reset.example.com", in, 1), nil, nil), []string{want})
	}
}

func TestSectionRules(t *testing.T) {
	twilio := func(body string) string {
		return strings.Replace(minimalConfig, "  provider: outbox\n", "  twilio:\n"+body, 1)
	}
	const sid = "    account_sid: AC0123456789abcdef0123456789abcdef\n    auth_token: t\n"
	mustParseConfig(t, twilio(sid+"    messaging_service_sid: MG0123456789abcdef0123456789abcdef\n"), nil, nil)
	for body, want := range map[string][]string{
		sid + "    from: \"+15550001111\"\n    messaging_service_sid: MG0123456789abcdef0123456789abcdef\n": {"line 13: sms.twilio.messaging_service_sid: set either twilio.from or twilio.messaging_service_sid, not both"},
		sid + "    messaging_service_sid: MGxyz\n":                                                          {`line 12: sms.twilio.messaging_service_sid: "MGxyz" is not a Twilio messaging service SID (MG followed by 32 hex digits, 34 characters)`},
		sid + "    from: \"+15550001111\"\n    api_base_url: ftp://x\n":                                     {`line 13: sms.twilio.api_base_url: must be an http:// or https:// URL, not "ftp://x"`},
	} {
		assertProblems(t, configProblems(t, twilio(body), nil, nil), want)
	}
	mustParseConfig(t, twilio(sid+"    from: \"+15550001111\"\n    api_base_url: http://127.0.0.1:9999\n"), nil, nil)

	// Mail off: nothing is required.
	mustParseConfig(t, minimalConfig+"mail: {host: \"\"}\n", nil, nil)
	for body, want := range map[string]string{
		"{host: smtp.example.com:587, from: it@example.com}":                                  `line 10: mail.host: give the host name only; the port goes in mail.port`,
		"{host: smtp.example.com, from: \"not an address\"}":                                  `line 10: mail.from: "not an address" is not a mail address: mail: no angle-addr`,
		"{host: smtp.example.com, from: it@example.com, password: p}":                         `mail.username: required when a password is set (SMTP AUTH needs both)`,
		"{host: smtp.example.com, from: it@example.com, username: u, password: p, tls: none}": `line 10: mail.tls: none would send the SMTP password in clear to smtp.example.com; use mandatory or opportunistic`,
	} {
		assertProblems(t, configProblems(t, minimalConfig+"mail: "+body+"\n", nil, nil), []string{want})
	}
	mustParseConfig(t, minimalConfig+"mail: {host: localhost, port: 25, from: it@example.com, username: u, password: p, tls: none}\n", nil, nil)
	mustParseConfig(t, minimalConfig+"  allowed_countries: [US, FR]\n  budgets: {per_country_day: {US: 100, FR: 0}}\n  lookup: {line_type: true, sim_swap_max_age: 72h}\n", nil, nil)
}

func TestTrustedProxies(t *testing.T) {
	cfg := mustParseConfig(t, minimalConfig+"trusted_proxies: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.7/32, 10.1.2.3/16]\n", nil, nil)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("10.1.0.0/16")}
	if got := cfg.trustedProxies(); !slices.Equal(got, want) {
		t.Errorf("trusted proxies %v, want %v", got, want)
	}
	if got := DefaultConfig().trustedProxies(); len(got) != 0 {
		t.Errorf("default trusted proxies %v, want none", got)
	}
	n := strings.Count(minimalConfig, "\n") + 1
	assertProblems(t, configProblems(t, minimalConfig+"trusted_proxies: [10.0.0.0/8, 192.0.2.7, proxy.example.com]\n", nil, nil), []string{
		fmt.Sprintf(`line %d: trusted_proxies[1]: "192.0.2.7" is not a CIDR: give the proxy's network, e.g. 10.0.0.0/24, or one address as 192.0.2.7/32`, n),
		fmt.Sprintf(`line %d: trusted_proxies[2]: "proxy.example.com" is not a CIDR: give the proxy's network, e.g. 10.0.0.0/24, or one address as 192.0.2.7/32`, n),
	})
}

func TestRedacted(t *testing.T) {
	for k, v := range exampleConfigEnv() {
		t.Setenv(k, v)
	}
	cfg, err := LoadConfig(exampleConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", *cfg)
	outputs := map[string]string{
		"String": cfg.String(),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", *cfg),
		"%#v":    fmt.Sprintf("%#v", *cfg),
		//lint:ignore S1025 the %s verb itself is under test
		"%s":   fmt.Sprintf("%s", cfg),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		for _, secret := range exampleConfigEnv() {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows the secret %q:\n%s", name, secret, out)
			}
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not say what was redacted:\n%s", name, out)
		}
	}
	if cfg.Directory.BindPassword != "bind-$ecret" {
		t.Errorf("Redacted changed the config itself")
	}

	// A secret from a file shows the file name only.
	in := strings.Replace(minimalConfig, "bind_password: pw", "bind_password_file: /run/secrets/bind", 1)
	fromFile := mustParseConfig(t, in, nil, map[string]string{"/run/secrets/bind": "file-secret"})
	if s := fromFile.String(); strings.Contains(s, "file-secret") || !strings.Contains(s, "/run/secrets/bind") {
		t.Errorf("file secret:\n%s", s)
	}
}

// TestStringRoundTrip: the printed config parses back to the same config.
func TestStringRoundTrip(t *testing.T) {
	cfg := mustParseConfig(t, string(mustReadFile(t, exampleConfigPath)), exampleConfigEnv(), nil)
	again := mustParseConfig(t, cfg.String(), nil, nil)
	if again.String() != cfg.String() {
		t.Errorf("round trip:\n%s\n---\n%s", cfg, again)
	}
}

func TestParseConfigNilMeansOS(t *testing.T) {
	t.Setenv("REPLYRESET_TEST_PW", "from-os")
	in := strings.Replace(minimalConfig, "bind_password: pw", "bind_password: ${REPLYRESET_TEST_PW}", 1)
	cfg, err := ParseConfig([]byte(in), nil, nil)
	if err != nil || cfg.Directory.BindPassword != "from-os" {
		t.Fatalf("ParseConfig(nil, nil) = %v, %v", cfg, err)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := DefaultConfig()
	c.SMS.Provider = "outbox"
	c.PublicURL = "http://127.0.0.1:8080"
	c.DataDir = "/tmp/x"
	c.Directory.URLs = []string{"ldap://127.0.0.1:3389"}
	c.Directory.BindDN = "CN=a,DC=b"
	c.Directory.BindPassword = "x"
	c.Directory.BaseDN = "DC=b"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	c.Lockout.StormWindow = 0
	var ce *ConfigError
	if err := c.Validate(); !errors.As(err, &ce) || ce.Path != "lockout.storm_window" || ce.Line != 0 {
		t.Errorf("Validate: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(mustReadFileF(f, exampleConfigPath))
	f.Add([]byte(minimalConfig))
	f.Add([]byte(minimalConfig + "log:\n  <<: {level: debug}\nx: &a [*a]\n"))
	f.Add([]byte("directory: {bind_password: \"${SECRET}$$${\", bind_password_file: /s}\n"))
	f.Add([]byte("a: &a {b: *a}\nlog: {<<: *a}\n"))
	env := map[string]string{"REPLYRESET_BIND_PASSWORD": "FUZZSECRET1", "TWILIO_AUTH_TOKEN": "FUZZSECRET2", "SMTP_PASSWORD": "FUZZSECRET3", "SECRET": "FUZZSECRET4"}
	files := map[string]string{"/s": "FUZZSECRET5\n"}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, testEnv(env), testFiles(files))
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error together")
			}
			for _, e := range leafErrors(err) {
				if msg := e.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
					t.Fatalf("problem is not one line: %q", msg)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		out := cfg.String()
		if !bytes.Contains(data, []byte("FUZZSECRET")) && strings.Contains(out, "FUZZSECRET") {
			t.Fatalf("String shows a secret:\n%s", out)
		}
		again, err := ParseConfig([]byte(out), testEnv(env), testFiles(files))
		if err != nil {
			t.Fatalf("printed config does not parseTestConfig: %v\n%s", err, out)
		}
		if again.String() != out {
			t.Fatalf("round trip differs:\n%s\n---\n%s", out, again.String())
		}
	})
}

func mustReadFileF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
