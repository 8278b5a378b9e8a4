package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configEnv names the configuration file when --config is not given.
const configEnv = "REPLYRESET_CONFIG"

// errUsage marks an error whose message already explains the usage problem:
// the command's usage follows it and the exit status is 2.
var errUsage = errors.New("usage")

func usageErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// exitError carries a specific exit code (check-config uses 1 for a bad file).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// sharedCommand annotates a command that works on the data file: while a
// server holds the file, the command runs inside that server (control.go).
var sharedCommand = map[string]string{"shared": "true"}

func isShared(c *cobra.Command) bool {
	for ; c != nil; c = c.Parent() {
		if c.Annotations["shared"] == "true" {
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runIn(&cmdEnv{}, ctx, args, stdout, stderr)
}

// runIn runs one command line in env: the CLI's own, or a running server's.
// Usage problems print the command's usage and exit 2; other failures exit
// 1 (or an exitError's code).
func runIn(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(env, stdout, stderr)
	args = normalizeArgs(args, flagsOf(root))
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var busy *serverRunningError
	if errors.As(err, &busy) && env.server == nil {
		return forward(ctx, busy.socket, withConfig(args), stdout, stderr)
	}
	printError(stderr, cmd.CommandPath(), err)
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "\n%s", cmd.UsageString())
		return 2
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// printError prints err after prefix, one line per line of its text (a
// configuration's problems), each printable.
func printError(w io.Writer, prefix string, err error) {
	for i, line := range strings.Split(err.Error(), "\n") {
		if i == 0 {
			line = prefix + ": " + line
		}
		fmt.Fprintln(w, printable(line))
	}
}

// lineWriter writes one line per Write (as fmt.Fprintf and Fprintln
// make), with every control character in it escaped: what a server or an
// error says can neither split a line nor put a NUL or an escape sequence
// on the operator's terminal.
type lineWriter struct{ w io.Writer }

func (l lineWriter) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	if _, err := io.WriteString(l.w, printable(line)+"\n"); err != nil {
		return 0, err
	}
	return len(p), nil
}

// printable escapes control and format characters (NUL, ESC, CR, LF,
// bidirectional overrides...) and invalid UTF-8 as Go escapes (\x00).
func printable(s string) string {
	clean := func(r rune) bool { return r != utf8.RuneError && !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r) }
	if strings.IndexFunc(s, func(r rune) bool { return !clean(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if clean(r) || r == utf8.RuneError && size > 1 {
			b.WriteString(s[i : i+size])
		} else {
			q := strconv.QuoteRune(r)
			if r == utf8.RuneError {
				q = fmt.Sprintf("'\\x%02x'", s[i])
			}
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// newRoot returns the command tree, writing to stdout and stderr.
func newRoot(env *cmdEnv, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "replyreset",
		Short: "ReplyReset: password reset by SMS for Active Directory and OpenLDAP",
		Long: `ReplyReset: password reset by SMS for Active Directory and OpenLDAP.

Flags may come before or after the arguments, with one dash or two
(-config and --config). REPLYRESET_CONFIG names the configuration file
when --config is not given.`,
		Example:       "  replyreset serve --config /etc/replyreset/config.yaml\n  replyreset demo",
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          subcommandArgs,
		RunE:          func(*cobra.Command, []string) error { return nil },
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			if env.server != nil && !isShared(c) {
				return &exitError{code: 2, err: errors.New("cannot run inside the server")}
			}
			return nil
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("replyreset {{.Version}}\n")
	// The root runs only to report a missing or unknown command: its
	// usage shows the commands, not a "replyreset [flags]" line.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable .HasParent}}", 1))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServeCmd(env),
		newDemoCmd(env),
		newCheckConfigCmd(env),
		newActivateCmd(env),
		newEnrollCmd(env),
		newDeactivateCmd(env),
		newEnrollmentsCmd(env),
		newAuditCmd(env),
		newOutboxCmd(env),
		newBackupCmd(env),
		newRestoreCmd(env),
		newMigrateCmd(env),
		newAPITokenCmd(env),
		newVersionCmd(),
	)
	addCobraCommands(root)
	return root
}

// addCobraCommands adds cobra's help and completion commands, with
// examples and usage errors as ours have.
func addCobraCommands(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  replyreset help enroll"
		case "completion":
			c.Example = "  source <(replyreset completion bash)"
			c.Args, c.RunE = subcommandArgs, func(*cobra.Command, []string) error { return nil }
			for _, sh := range c.Commands() {
				sh.Example = "  replyreset completion " + sh.Name() + " > replyreset-completion." + sh.Name()
			}
		}
	}
}

// subcommandArgs is the Args of a command that only holds subcommands: it
// runs only to say that one is missing or unknown.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing command")
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", s[0])
	}
	return usageErrorf("%s", msg)
}

// wantArgs returns check, with its error replaced by a usage error that
// says what the command wants.
func wantArgs(check cobra.PositionalArgs, want string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if check(c, args) != nil {
			return usageErrorf("%s", want)
		}
		return nil
	}
}

// configFlag adds --config to fs; loadConfigFlag falls back to
// REPLYRESET_CONFIG.
func configFlag(fs *pflag.FlagSet, path *string) {
	fs.StringVar(path, "config", "", "the configuration `FILE` (default: $"+configEnv+")")
}

// formatFlag adds --format table|json to fs; checkFormat checks it.
func formatFlag(fs *pflag.FlagSet, format *string) {
	fs.StringVar(format, "format", "table", "output format: table | json")
}

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return usageErrorf("-format must be table or json")
	}
	return nil
}

// loadConfigFlag loads the --config file, or the one REPLYRESET_CONFIG
// names, saying what is missing.
func loadConfigFlag(path string) (*Config, error) {
	if path == "" {
		path = os.Getenv(configEnv)
	}
	if path == "" {
		return nil, usageErrorf("-config FILE is required (or set %s; see config.example.yaml)", configEnv)
	}
	return LoadConfig(path)
}

// withConfig adds --config from REPLYRESET_CONFIG to a command line that
// has none, for a server whose environment is not the caller's.
func withConfig(args []string) []string {
	end := len(args)
	if i := slices.Index(args, "--"); i >= 0 {
		end = i
	}
	for _, a := range args[:end] {
		if a == "--config" || strings.HasPrefix(a, "--config=") {
			return args
		}
	}
	path := os.Getenv(configEnv)
	if path == "" || len(args) == 0 {
		return args
	}
	return slices.Concat(args[:1], []string{"--config", path}, args[1:])
}

// flagSpec is every flag of the command tree: name → whether it takes a
// value, by long name and by one-letter shorthand.
type flagSpec struct{ long, short map[string]bool }

func flagsOf(root *cobra.Command) flagSpec {
	root.InitDefaultVersionFlag()
	s := flagSpec{long: map[string]bool{}, short: map[string]bool{}}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		c.Flags().VisitAll(func(f *pflag.Flag) {
			takesValue := f.NoOptDefVal == ""
			s.long[f.Name] = takesValue
			if f.Shorthand != "" {
				s.short[f.Shorthand] = takesValue
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return s
}

// normalizeArgs rewrites the single-dash long spellings of our own flags
// (-config, -config=FILE) to the double-dash ones pflag reads (pflag would
// take -config for the one-letter flags c, o, n...). It leaves alone the
// value of a flag that takes one (--by -x), a one-letter flag (-h, -o FILE),
// a cluster that starts with a known one-letter flag (-ofile), negative
// numbers, and everything after "--". A single-dash word that is no flag of
// ours gets two dashes too, so that pflag's error names it whole.
func normalizeArgs(args []string, known flagSpec) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		body := strings.TrimPrefix(a, "-")
		double := strings.HasPrefix(body, "-")
		name, _, hasValue := strings.Cut(strings.TrimPrefix(body, "-"), "=")
		takesValue, isLong := known.long[name]
		switch {
		case double: // pflag reads --name; its value is skipped below
		case name == "":
		case len(name) == 1:
			takesValue, isLong = known.short[name]
		case isLong:
			a = "-" + a
		case isNumber(name):
		default:
			if _, cluster := known.short[name[:1]]; !cluster {
				a = "-" + a // not ours: let pflag's error name it whole
			}
		}
		out = append(out, a)
		if isLong && takesValue && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

func isNumber(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print the version",
		Example: "  replyreset version\n  replyreset --version",
		Args:    wantArgs(cobra.NoArgs, "version takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(c.OutOrStdout(), "replyreset", version)
			return err
		},
	}
}

// currentUser names the person running a CLI command for the audit trail,
// even where $USER is unset (cron, systemd, docker exec).
func currentUser() string {
	return osUser()
}

func osUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid-%d", os.Getuid())
}

// writeJSONList prints list as an indented JSON array ([] rather than null
// when empty, for scripts).
func writeJSONList[T any](w io.Writer, list []T) error {
	if list == nil {
		list = []T{}
	}
	return writeJSON(w, list)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
