package main

// Tests of the command-line conventions (root.go): flags before or after
// the arguments, one dash or two, REPLYRESET_CONFIG, -h of every command,
// usage errors and exit codes. The commands run against the embedded AD
// directory (directory/demodir) and an in-process SMTP server.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/replyreset/replyreset/directory/demodir"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/spf13/cobra"
)

func TestNormalizeArgs(t *testing.T) {
	t.Parallel()
	known := flagsOf(newRoot(&cmdEnv{}, io.Discard, io.Discard))
	for _, tc := range []struct{ in, want string }{
		{"activate jdoe asmith -config c.yaml", "activate jdoe asmith --config c.yaml"},
		{"activate -config=c.yaml jdoe", "activate --config=c.yaml jdoe"},
		{"activate --config c.yaml jdoe", "activate --config c.yaml jdoe"},
		{"enroll jdoe +15550100 -by -config -config c.yaml", "enroll jdoe +15550100 --by -config --config c.yaml"}, // a value that starts with '-'
		{"audit -limit -1 -format json", "audit --limit -1 --format json"},
		{"backup -o -force -force", "backup -o -force --force"}, // -o takes the next word, whatever it is
		{"backup -ofile.db", "backup -ofile.db"},                // a one-letter flag with its value attached
		{"check-config -h", "check-config -h"},
		{"check-config -help", "check-config --help"},
		{"-version", "--version"},
		{"demo -v -listen 127.0.0.1:9", "demo -v --listen 127.0.0.1:9"},
		{"deactivate -config c.yaml -- -config -by", "deactivate --config c.yaml -- -config -by"}, // operands after --
		{"check-config -bogus", "check-config --bogus"},                                           // pflag's error names it whole
		{"enroll jdoe -5", "enroll jdoe -5"},
		{"audit - -", "audit - -"},
	} {
		got := strings.Join(normalizeArgs(strings.Fields(tc.in), known), " ")
		if got != tc.want {
			t.Errorf("normalizeArgs(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// demoLab is the embedded AD directory, with the users the documentation
// names added, and an SMTP server that takes the activation mails.
type demoLab struct {
	dir    *demodir.Server
	smtp   *smtptest.Server
	busyLn net.Listener // held for the test binary's life
	busy   string       // its address, taken: serve fails at once
}

var sharedDemoLab = sync.OnceValues(func() (*demoLab, error) {
	dir, err := demodir.Start(context.Background(), demodir.Options{Seed: true,
		CAFile: filepath.Join(os.TempDir(), fmt.Sprintf("replyreset-cli-test-ca-%d.pem", os.Getpid()))})
	if err != nil {
		return nil, err
	}
	for _, u := range []demodir.UserSpec{
		{Username: "jdoe", CN: "John Doe", Mail: "jdoe@example.com", Mobile: "+12015550142"},
		{Username: "asmith", CN: "Anna Smith", Mail: "asmith@example.com", Mobile: "+12015550143"},
	} {
		u.Password = demodir.SamplePassword
		if _, err := dir.AddUser(u); err != nil {
			return nil, err
		}
	}
	smtp, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &demoLab{dir: dir, smtp: smtp, busyLn: ln, busy: ln.Addr().String()}, nil
})

// writeDemoConfig writes config.yaml in a new temporary directory for the
// demo lab and returns its path; data_dir is next to it.
func writeDemoConfig(t *testing.T, listen ...string) string {
	t.Helper()
	lab, err := sharedDemoLab()
	if err != nil {
		t.Fatalf("demo lab: %v", err)
	}
	dir := t.TempDir()
	dc := lab.dir.DirectoryConfig()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, fmt.Sprintf(`listen: %s
public_url: %s
data_dir: %s
directory:
  dialect: ad
  urls: [%s]
  ca_file: %s
  bind_dn: %s
  bind_password: %s
  base_dn: %s
  admin_group: %s
sms:
  provider: outbox
mail:
  host: %s
  port: %d
  from: "IT Service Desk <it@example.com>"
  tls: none
`, q(cmp.Or(strings.Join(listen, ""), lab.busy)), q(testPublicURL), q(filepath.Join(dir, "data")), q(dc.URLs[0]), q(dc.CAFile), q(dc.BindDN), q(dc.BindPassword),
		q(dc.BaseDN), q(dc.AdminGroup), q(lab.smtp.Host), lab.smtp.Port))
	return path
}

// TestEveryCommandFlagOrders runs every command with its flags after the
// arguments (one dash), before them (two dashes) and with the file named
// by REPLYRESET_CONFIG: each does the same. Not parallel: it sets the
// environment.
func TestEveryCommandFlagOrders(t *testing.T) {
	type cliCase struct {
		words, args, flags []string
		noConfig           bool
		code               int
		want               string // a line of stdout or stderr
	}
	cases := []cliCase{
		{words: []string{"activate"}, args: []string{"jdoe", "asmith"}, want: "asmith: activation email to asmith@example.com queued (link valid until "},
		{words: []string{"enroll"}, args: []string{"jdoe", "+1 201 555 0142"}, flags: []string{"-by", "helpdesk", "-language", "fr"},
			want: "enrolled jdoe with +12015550142 (fr); confirmation SMS queued"},
		{words: []string{"deactivate"}, args: []string{"jdoe"}, flags: []string{"-by", "helpdesk"}, code: 1,
			want: "jdoe: NOT deactivated: no enrollment and no pending activation"},
		{words: []string{"enrollments"}, flags: []string{"-state", "active", "-format", "json"}, want: "[]"},
		{words: []string{"audit"}, flags: []string{"-format", "csv", "-since", "24h"}, want: "seq,time,actor,action,username,phone,outcome,detail,source_ip"},
		{words: []string{"outbox"}, flags: []string{"-limit", "5"}, want: "ID  CREATED  KIND  TO  PURPOSE  STATUS  TRIES  ERROR  BODY"},
		{words: []string{"api-token", "create"}, args: []string{"grafana"}, flags: []string{"-owner", demodir.HelpdeskUsername, "-scopes", "read,write"},
			want: "Store it now, e.g. in your secret manager; send it as: Authorization: Bearer <secret>"},
		{words: []string{"api-token", "list"}, flags: []string{"-format", "json"}, want: "[]"},
		{words: []string{"api-token", "revoke"}, args: []string{"grafana"}, code: 1,
			want: `replyreset api-token revoke: no live API token is named "grafana" (see replyreset api-token list)`},
		{words: []string{"backup"}, flags: []string{"-o", "{dir}/copy.db"}, want: "backup written to {dir}/copy.db ("},
		{words: []string{"restore"}, flags: []string{"-i", "{dir}/none.db"}, code: 1, want: "replyreset restore: backup file: open {dir}/none.db: no such file or directory"},
		{words: []string{"migrate"}, flags: []string{"-from", "{dir}/old/replyreset.db", "-force"}, code: 1,
			want: "replyreset migrate: migrate copies a bbolt data file into etcd, and the configured store is the bbolt data file {dir}/data/replyreset.db"},
		{words: []string{"check-config"}, want: "directory " + mustLab(t).dir.URL() + ": OK ("},
		{words: []string{"check-config"}, flags: []string{"-offline"}, want: "{dir}/config.yaml: syntax and values OK"},
		{words: []string{"serve"}, code: 1, want: "replyreset serve: listen: listen tcp " + mustLab(t).busy + ": bind: address already in use"},
		{words: []string{"demo"}, flags: []string{"-listen", "0.0.0.0:1"}, noConfig: true, code: 2,
			want: `replyreset demo: usage: -listen "0.0.0.0:1": the demo listens on loopback only (127.0.0.1 or [::1])`},
		{words: []string{"version"}, noConfig: true, want: "replyreset " + version},
		{words: []string{"completion"}, args: []string{"bash"}, noConfig: true, want: "# bash completion V2 for replyreset                           -*- shell-script -*-"},
	}
	for _, tc := range cases {
		for _, variant := range []string{"flags after", "flags before", "REPLYRESET_CONFIG"} {
			if tc.noConfig && variant == "REPLYRESET_CONFIG" {
				continue
			}
			t.Run(strings.Join(tc.words, "_")+"/"+variant, func(t *testing.T) {
				cfg := writeDemoConfig(t)
				dir := filepath.Dir(cfg)
				expand := func(s []string) []string {
					out := make([]string, len(s))
					for i, a := range s {
						out[i] = strings.ReplaceAll(a, "{dir}", dir)
					}
					return out
				}
				flags := expand(tc.flags)
				var args []string
				switch variant {
				case "flags after":
					if !tc.noConfig {
						flags = append(flags, "-config", cfg)
					}
					args = slices.Concat(tc.words, tc.args, flags)
				case "flags before":
					for i, f := range flags {
						if strings.HasPrefix(f, "-") && len(f) > 2 {
							flags[i] = "-" + f
						}
					}
					if !tc.noConfig {
						flags = append([]string{"--config", cfg}, flags...)
					}
					args = slices.Concat(tc.words, flags, tc.args)
				default:
					t.Setenv(configEnv, cfg)
					args = slices.Concat(tc.words, tc.args, flags)
				}
				r := runCLI(t, args...)
				wantCode(t, r, tc.code)
				want := strings.ReplaceAll(tc.want, "{dir}", dir)
				if !hasLinePrefix(r.stdout, want) && !hasLinePrefix(r.stderr, want) {
					t.Errorf("want a line starting %q in:\n%v", want, r)
				}
			})
		}
	}
}

func mustLab(t *testing.T) *demoLab {
	lab, err := sharedDemoLab()
	if err != nil {
		t.Fatalf("demo lab: %v", err)
	}
	return lab
}

func hasLinePrefix(out, prefix string) bool {
	_, ok := lineWithPrefix(out, strings.TrimRight(prefix, " "))
	return ok
}

// runnable lists every command a person can run, by its words after
// "replyreset".
func runnable(c *cobra.Command, words []string) [][]string {
	var out [][]string
	if c.Runnable() && !c.Hidden && c.HasParent() {
		out = append(out, words)
	}
	for _, sub := range c.Commands() {
		out = append(out, runnable(sub, append(slices.Clone(words), sub.Name()))...)
	}
	return out
}

func TestHelpOfEveryCommand(t *testing.T) {
	t.Parallel()
	root := newRoot(&cmdEnv{}, io.Discard, io.Discard)
	flagsOf(root) // adds help and completion, as a run does
	cmds := runnable(root, nil)
	if len(cmds) < 15 {
		t.Fatalf("only %d commands: %q", len(cmds), cmds)
	}
	for _, words := range cmds {
		for _, h := range []string{"-h", "--help", "-help"} {
			r := runCLI(t, append(slices.Clone(words), h)...)
			wantCode(t, r, 0)
			c, _, _ := root.Find(words)
			// The synopsis names the arguments (enroll USER PHONE) ...
			wantLine(t, r, r.stdout, "  "+c.UseLine())
			// ... and an example follows.
			if _, ok := lineWithPrefix(r.stdout, "Examples:"); !ok || c.Example == "" {
				t.Errorf("no example:\n%v", r)
			}
			wantContains(t, r, r.stdout, "  replyreset "+strings.Join(words, " "))
		}
	}
	r := runCLI(t, "help", "enroll")
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, "  replyreset enroll USER PHONE [flags]")
}

// TestUsageErrors: an unknown flag, a missing or extra argument says what
// is wrong, shows that command's usage and exits 2.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cfg := writeDemoConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"activate", "-config", cfg}, "replyreset activate: usage: want one or more usernames, e.g. replyreset activate -config config.yaml jdoe asmith"},
		{[]string{"enroll", "jdoe", "-config", cfg}, "replyreset enroll: usage: want USER PHONE, e.g. replyreset enroll -config config.yaml jdoe '+1 555 555 0101'"},
		{[]string{"deactivate", "-config", cfg}, "replyreset deactivate: usage: want one or more usernames, e.g. replyreset deactivate -config config.yaml jdoe asmith"},
		{[]string{"backup", "-config", cfg}, "replyreset backup: usage: want -o FILE, e.g. replyreset backup -config config.yaml -o /var/backups/replyreset.db"},
		{[]string{"restore", "-config", cfg}, "replyreset restore: usage: want -i FILE, e.g. replyreset restore -config config.yaml -i /var/backups/replyreset.db"},
		{[]string{"migrate", "-config", cfg}, "replyreset migrate: usage: want -from DATAFILE, e.g. replyreset migrate -config config.yaml -from /var/lib/replyreset/replyreset.db"},
		{[]string{"enrollments", "extra", "-config", cfg}, "replyreset enrollments: usage: enrollments takes no arguments"},
		{[]string{"audit", "-bogus", "-config", cfg}, "replyreset audit: usage: unknown flag: --bogus"},
		{[]string{"outbox", "-config"}, "replyreset outbox: usage: flag needs an argument: --config"},
		{[]string{"serve", "-x"}, "replyreset serve: usage: unknown shorthand flag: 'x' in -x"},
		{[]string{"enrollments"}, "replyreset enrollments: usage: -config FILE is required (or set REPLYRESET_CONFIG; see config.example.yaml)"},
		{[]string{"check-config", "-offline=maybe", "-config", cfg}, `replyreset check-config: usage: invalid argument "maybe" for "--offline" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"completion", "tcsh"}, `replyreset completion: usage: unknown command "tcsh"`},
	} {
		r := runCLI(t, tc.args...)
		wantCode(t, r, 2)
		wantLine(t, r, r.stderr, tc.want)
		c, _, _ := newRoot(&cmdEnv{}, io.Discard, io.Discard).Find(tc.args[:1])
		wantLine(t, r, r.stderr, "Usage:")
		wantContains(t, r, r.stderr, "  "+c.CommandPath()+" ")
		if r.stdout != "" {
			t.Errorf("a usage error printed to stdout:\n%v", r)
		}
	}
}

// TestForwardedCommandLines: while serve holds the data file, a command
// whose file comes from REPLYRESET_CONFIG, or with flags before or after
// the arguments, runs inside the server (control.go) just the same. Not
// parallel: it sets the environment.
func TestForwardedCommandLines(t *testing.T) {
	addr := freePort(t)
	path := writeDemoConfig(t, addr)
	srv := startServe(t, configFile{Path: path, DataDir: filepath.Join(filepath.Dir(path), "data")}, addr)
	defer srv.stop(t)

	r := runCLI(t, "enroll", "jdoe", "+1 201 555 0142", "-by", "helpdesk-ann", "-config", path)
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, "enrolled jdoe with +12015550142 (en); confirmation SMS queued")
	r = runCLI(t, "enroll", "--config", path, "asmith", "+1 201 555 0142")
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, "replyreset enroll: +12015550142 is already enrolled by jdoe; deactivate that enrollment first")

	t.Setenv(configEnv, path)
	t.Chdir(t.TempDir()) // the server's working directory is not the caller's
	r = runCLI(t, "audit", "-user", "jdoe", "-format", "json")
	wantCode(t, r, 0)
	wantContains(t, r, r.stdout, `"actor": "cli:helpdesk-ann"`)
	r = runCLI(t, "backup", "-o", "copy.db")
	wantCode(t, r, 0)
	wantContains(t, r, r.stdout, "backup written by the running server to ")
	if _, err := os.Stat("copy.db"); err != nil {
		t.Errorf("the backup is not in the caller's directory: %v", err)
	}
}

// wantPrintable fails the test if the output holds a control byte other
// than the line ends.
func wantPrintable(t *testing.T, r cliResult) {
	t.Helper()
	for _, out := range []string{r.stdout, r.stderr} {
		if i := strings.IndexFunc(out, func(c rune) bool { return c != '\n' && (c < 0x20 || c == 0x7f) }); i >= 0 {
			t.Errorf("control byte %q at offset %d of the output:\n%q", out[i], i, out)
		}
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text, é, ✓":                   "plain text, é, ✓",
		"data 52e, v4563\x00":                `data 52e, v4563\x00`,
		"best match of:\n\t'DC=example'\r\n": `best match of:\n\t'DC=example'\r\n`,
		"\x1b[31mred\x1b[0m":                 `\x1b[31mred\x1b[0m`,
		"bidi \u202egnp.exe":                 `bidi \u202egnp.exe`,
		"bad \xff utf-8 \x7f":                `bad \xff utf-8 \x7f`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheckConfigWarnings: settings that work but are unsafe get one
// "warning: " line each, after the checks, and leave the exit status 0
// (also with --offline); with a problem as well the status is 1.
func TestCheckConfigWarnings(t *testing.T) {
	t.Parallel()
	path := writeDemoConfig(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unsafe := strings.Replace(string(b), q(testPublicURL), q("http://reset.example.test"), 1)
	unsafe = strings.Replace(unsafe, "directory:\n", "directory:\n  insecure_skip_verify: true\n", 1)
	writeFile(t, path, unsafe)
	want := []string{
		"warning: directory.insecure_skip_verify is true: the directory's certificate is not checked, so whoever sits on the network path can read the passwords the gateway sets",
		"warning: public_url is http://: enrollment links, admin sign-ins and Twilio's webhooks cross the network unencrypted; use https:// (a reverse proxy with TLS)",
		"warning: mail.tls is none: activation emails (their links) and the SMTP password cross the network unencrypted",
	}
	for _, offline := range []bool{false, true} {
		args := []string{"check-config", "-config", path}
		if offline {
			args = append(args, "-offline")
		}
		r := runCLI(t, args...)
		wantCode(t, r, 0)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) < len(want) || !slices.Equal(lines[len(lines)-len(want):], want) {
			t.Errorf("want the warnings last:\n%s\nin:\n%v", strings.Join(want, "\n"), r)
		}
		if r.stderr != "" {
			t.Errorf("warnings only, yet stderr says:\n%v", r)
		}
		wantPrintable(t, r)
	}

	// A problem as well: exit 1, the warnings still said.
	writeFile(t, path, strings.Replace(unsafe, "  port: ", "  port: 1\n  x_port: ", 1))
	r := runCLI(t, "check-config", "-config", path)
	wantCode(t, r, 1)
	wantLine(t, r, r.stdout, path+": INVALID")
}

// TestCheckConfigProblemsOnePerLine: every problem of a bad file on its own
// line, whatever control bytes its values hold.
func TestCheckConfigProblemsOnePerLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "listen: \"nowhere\\n\\x00\"\nlanguage: \"de\\x1b[2J\"\ndirectory: {dialect: \"x\\ry\"}\n")
	r := runCLI(t, "check-config", "-config", path)
	wantCode(t, r, 1)
	wantPrintable(t, r)
	for _, want := range []string{
		path + ": INVALID",
		`line 1: listen: must be host:port, e.g. 127.0.0.1:8080 or :8080, not "nowhere\n\x00"`,
		`line 2: language: must be en or fr, not "de\x1b[2J"`,
	} {
		wantLine(t, r, r.stdout, want)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash":       "# bash completion V2 for replyreset",
		"zsh":        "#compdef replyreset",
		"fish":       "# fish completion for replyreset",
		"powershell": "# powershell completion for replyreset",
	} {
		r := runCLI(t, "completion", shell)
		wantCode(t, r, 0)
		if !strings.HasPrefix(r.stdout, want) {
			t.Errorf("completion %s starts %.60q, want %q", shell, r.stdout, want)
		}
	}
	r := runCLI(t, "completion")
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset completion: usage: missing command")
}
