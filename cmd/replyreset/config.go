package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/expiry"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/gateway/mailer"
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
	TrustedProxies []string `yaml:"trusted_proxies"`
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
	}
}

// ConfigError is one problem with the configuration. ParseConfig returns
// an errors.Join of them, which prints one problem per line.
type ConfigError struct {
	Line int    // 1-based line in the file; 0 when unknown, e.g. a missing key
	Path string // full key path, e.g. "directory.urls[1]"; empty for the file as a whole
	Msg  string
	Err  error // the underlying cause, if any (e.g. the *fs.PathError of a secret file)
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	// One problem per line, whatever a value or an OS error holds.
	return oneLine.Replace(b.String())
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

func (e *ConfigError) Unwrap() error { return e.Err }

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
	if c.Language != "en" && c.Language != "fr" {
		bad("language", "must be en or fr, not %q", c.Language)
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
			errs = append(errs, &ConfigError{Path: joinPath(s.name, rel), Msg: msg, Err: errors.Unwrap(e)})
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
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	d := &decoder{lookupEnv: lookupEnv, lines: map[string]int{}, failed: map[string]bool{}, budget: maxNodes}
	if root != nil {
		d.decode(root, "", reflect.ValueOf(&cfg).Elem())
	}
	if d.exhausted {
		return nil, joinProblems(d.errs[len(d.errs)-1:])
	}
	for _, s := range []struct {
		value *string
		file  string
		key   string
	}{
		{&cfg.Directory.BindPassword, cfg.Directory.BindPasswordFile, "directory.bind_password"},
		{&cfg.SMS.Twilio.AuthToken, cfg.SMS.Twilio.AuthTokenFile, "sms.twilio.auth_token"},
		{&cfg.Mail.Password, cfg.Mail.PasswordFile, "mail.password"},
	} {
		d.readSecret(s.value, s.file, s.key, readFile)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")

	errs := d.errs
	for _, e := range leafErrors(cfg.Validate()) {
		var ce *ConfigError
		if !errors.As(e, &ce) || d.alreadyReported(ce.Path) {
			continue
		}
		ce.Line = d.lines[ce.Path]
		errs = append(errs, ce)
	}
	if len(errs) > 0 {
		// File order; problems with no line (missing keys) last, in key order.
		slices.SortStableFunc(errs, func(a, b *ConfigError) int {
			return cmp.Compare(lineOrLast(a.Line), lineOrLast(b.Line))
		})
		return nil, joinProblems(errs)
	}
	return &cfg, nil
}

// maxProblems keeps a file of garbage from printing thousands of lines.
const maxProblems = 100

func joinProblems(errs []*ConfigError) error {
	joined := make([]error, 0, min(len(errs), maxProblems+1))
	for i, e := range errs {
		if i == maxProblems {
			joined = append(joined, &ConfigError{Msg: fmt.Sprintf("… and %d more problems", len(errs)-i)})
			break
		}
		joined = append(joined, e)
	}
	return errors.Join(joined...)
}

func lineOrLast(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the root mapping of the single document in data, or nil
// for an empty file.
func parseYAML(data []byte) (*yaml.Node, error) {
	syntax := func(err error) error {
		ce := &ConfigError{Msg: strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
		if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
			ce.Line, _ = strconv.Atoi(m[1])
			ce.Msg = m[2]
		}
		return errors.Join(ce)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, syntax(err)
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, syntax(err)
		}
		if len(next.Content) == 1 && next.Content[0].ShortTag() == "!!null" {
			continue // a stray --- or ... with nothing after it
		}
		return nil, errors.Join(&ConfigError{Line: next.Line, Msg: "the file must hold one YAML document; remove the second (---)"})
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, errors.Join(&ConfigError{Line: root.Line, Msg: "the file must be a YAML mapping of settings (key: value)"})
	}
	return root, nil
}

// readSecret fills *value from file when the *_file form of a secret is set.
func (d *decoder) readSecret(value *string, file, key string, readFile func(string) ([]byte, error)) {
	fileKey := key + "_file"
	if file == "" || d.failed[fileKey] {
		return
	}
	fail := func(format string, a ...any) *ConfigError {
		e := &ConfigError{Line: d.lines[fileKey], Path: fileKey, Msg: fmt.Sprintf(format, a...)}
		d.errs = append(d.errs, e)
		d.failed[fileKey], d.failed[key] = true, true
		return e
	}
	if *value != "" {
		short := key[strings.LastIndexByte(key, '.')+1:]
		fail("set either %s or %s_file, not both", short, short)
		return
	}
	b, err := readFile(file)
	if err != nil {
		fail("%v", err).Err = err
		return
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	if s == "" {
		fail("%s is empty", file)
		return
	}
	*value = s
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

// The decoder walks the YAML node tree into the typed config itself, so
// that every problem names its key path and line, unknown keys are caught,
// and ${VAR} is expanded in scalar values only, never in keys or the file
// as text. A null value ("key:" or "key: ~") keeps the default.
type decoder struct {
	lookupEnv func(string) (string, bool)
	errs      []*ConfigError
	lines     map[string]int  // key path → line, for validation problems
	failed    map[string]bool // key paths already reported while decoding
	budget    int             // nodes left to visit (aliases can multiply them)
	exhausted bool
}

const (
	maxNodes      = 100_000
	maxMergeDepth = 8
)

var durationType = reflect.TypeFor[time.Duration]()

func (d *decoder) fail(n *yaml.Node, path, format string, a ...any) {
	d.errs = append(d.errs, &ConfigError{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, a...)})
	d.failed[path] = true
}

// alreadyReported says whether path, or a key above it, failed to decode
// or read, so validation would only repeat the problem.
func (d *decoder) alreadyReported(path string) bool {
	for p := range d.failed {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// spend counts n visited nodes against the budget and says whether the
// walk may go on.
func (d *decoder) spend(n int) bool {
	if d.budget -= n; d.budget < 0 && !d.exhausted {
		d.exhausted = true
		d.errs = append(d.errs, &ConfigError{Msg: "the file is too large or expands too many aliases"})
	}
	return !d.exhausted
}

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if !d.spend(1) {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: keep the default
	}
	if v.Type() == durationType {
		d.scalar(n, path, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice:
		d.sequence(n, path, v)
	default:
		d.scalar(n, path, v)
	}
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of settings (key: value), not %s", describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		fields[name] = i
		names = append(names, name)
	}
	for _, kv := range d.pairs(n, path, 0) {
		name := kv.key.Value
		i, ok := fields[name]
		if !ok {
			hint := ""
			if s := suggest(name, names); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			d.errs = append(d.errs, &ConfigError{Line: kv.key.Line, Path: joinPath(path, keyPath(name)), Msg: "unknown key" + hint})
			continue
		}
		child := joinPath(path, name)
		if _, ok := d.lines[child]; !ok || !kv.merged {
			d.lines[child] = kv.key.Line
		}
		d.decode(kv.value, child, v.Field(i))
	}
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping (key: value), not %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(n, path, 0) {
		child := joinPath(path, keyPath(kv.key.Value))
		d.lines[child] = kv.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(kv.value, child, elem)
		m.SetMapIndex(reflect.ValueOf(kv.key.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, e.g. [a, b], not %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		child := fmt.Sprintf("%s[%d]", path, i)
		d.lines[child] = item.Line
		d.decode(item, child, s.Index(i))
	}
	v.Set(s)
}

type keyValue struct {
	key, value *yaml.Node
	merged     bool // came from a << merge key
}

// pairs lists a mapping's entries: keys merged in with << first (the
// explicit keys override them), then the explicit keys in file order. A
// key given twice is an error.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []keyValue {
	var merged, explicit []keyValue
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(val, path, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain names, not %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, joinPath(path, keyPath(k.Value)), "set twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		explicit = append(explicit, keyValue{key: k, value: val})
	}
	var out []keyValue
	for _, kv := range merged {
		if _, overridden := seen[kv.key.Value]; !overridden {
			seen[kv.key.Value] = kv.key.Line
			kv.merged = true
			out = append(out, kv)
		}
	}
	return append(out, explicit...)
}

func (d *decoder) mergeSources(val *yaml.Node, path string, depth int) []keyValue {
	if depth >= maxMergeDepth {
		if !d.failed[path] {
			d.fail(val, path, "<< merges nest too deeply")
		}
		return nil
	}
	if !d.spend(len(val.Content) + 1) {
		return nil
	}
	for val.Kind == yaml.AliasNode && val.Alias != nil {
		val = val.Alias
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path, depth+1)
	case yaml.SequenceNode:
		var out []keyValue
		for _, src := range val.Content {
			for src.Kind == yaml.AliasNode && src.Alias != nil {
				src = src.Alias
			}
			if src.Kind != yaml.MappingNode {
				d.fail(src, path, "<< must merge mappings, not %s", describe(src))
				continue
			}
			out = append(out, d.pairs(src, path, depth+1)...)
		}
		return out
	}
	d.fail(val, path, "<< must merge a mapping, not %s", describe(val))
	return nil
}

func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be a single value, not %s", describe(n))
		return
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp", "!!merge":
	default:
		d.fail(n, path, "the YAML tag %s is not supported here", tag)
		return
	}
	s, ok := d.expand(n, path)
	if !ok {
		return
	}
	shown := strconv.Quote(s)
	if s != n.Value {
		// The value came (at least partly) from the environment and may
		// be a secret: show the reference, not the value.
		shown = strconv.Quote(n.Value) + " (after expansion)"
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(n, path, "%s is not a duration (e.g. 30s, 5m)", shown)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(n, path, "%s is not true or false", shown)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "%s is not a whole number", shown)
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || f != f || f > 1e300 || f < -1e300 {
			d.fail(n, path, "%s is not a number", shown)
			return
		}
		v.SetFloat(f)
	default:
		// A programming error in a section type, caught by the tests.
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// expand replaces each ${NAME} in a scalar value. Anything else with a $
// ($NAME, $$, a lone $ or ${ in a password) is left as it is.
func (d *decoder) expand(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	if !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 || !isEnvName(s[i+2:i+end]) {
			b.WriteString(s[:i+1]) // not a reference: keep the $ and go on
			s = s[i+1:]
			continue
		}
		name := s[i+2 : i+end]
		val, set := d.lookupEnv(name)
		if !set {
			d.fail(n, path, "environment variable %s is not set", name)
			ok = false
		}
		b.WriteString(s[:i])
		b.WriteString(val)
		s = s[i+end+1:]
	}
	return b.String(), ok
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

func joinPath(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	}
	return parent + "." + child
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath writes a key as a path element, quoting odd ones.
func keyPath(key string) string {
	if plainKey.MatchString(key) {
		return key
	}
	return fmt.Sprintf("[%q]", key)
}

// suggest returns the known name closest to a mistyped key, if close enough.
func suggest(key string, names []string) string {
	best, bestDist := "", max(2, len(key)/4)+1
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

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
