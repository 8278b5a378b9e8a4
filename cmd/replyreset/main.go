// Command replyreset runs the ReplyReset SMS password reset gateway and its
// admin subcommands. main does flags, a signal context and the exit code;
// each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its flags are parsed from args.
type command struct {
	name    string
	summary string
	run     func(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error
	// shared: the command works on the data file, so while a server holds
	// it the command runs inside that server (control.go).
	shared bool
}

func commands() []command {
	return []command{
		{"serve", "run the gateway (webhook, pages, API)", runServe, false},
		{"demo", "run the whole product on 127.0.0.1 with a sample directory, phone simulator and mailbox", runDemo, false},
		{"check-config", "validate a configuration file and dial the directory, store, mail and Twilio", runCheckConfig, false},
		{"activate", "activate USER...: mail each user a single-use enrollment link", runActivate, true},
		{"enroll", "enroll USER PHONE in person (helpdesk): the phone is taken as verified", runEnroll, true},
		{"deactivate", "deactivate USER...: turn SMS self-service off (the phone is released and told)", runDeactivate, true},
		{"enrollments", "list enrollments", runEnrollments, true},
		{"audit", "print or export the audit trail (table, CSV, JSON)", runAudit, true},
		{"outbox", "list queued, sent and failed SMS and calls", runOutbox, true},
		{"backup", "write a consistent copy of the data file, also while serve runs", runBackup, true},
		{"restore", "replace the data file with a backup (the service must be stopped)", runRestore, false},
		{"api-token", "create, list or revoke bearer tokens of the JSON API", runAPIToken, true},
		{"version", "print the version", func(_ *cmdEnv, _ context.Context, _ []string, out, _ io.Writer) error {
			_, err := fmt.Fprintln(out, "replyreset", version)
			return err
		}, false},
	}
}

// errUsage marks an error whose message already explains the usage problem.
var errUsage = errors.New("usage")

// exitError carries a specific exit code (check-config uses 1 for a bad file).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	if code, ok := runAsService(); ok { // started by the Windows service manager
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runIn(&cmdEnv{}, ctx, args, stdout, stderr)
}

// runIn runs one command line in env: the CLI's own, or a running server's.
func runIn(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if env.server != nil && !c.shared {
			fmt.Fprintf(stderr, "replyreset %s: cannot run inside the server\n", c.name)
			return 2
		}
		err := c.run(env, ctx, args[1:], stdout, stderr)
		var busy *serverRunningError
		if errors.As(err, &busy) && env.server == nil {
			return forward(ctx, busy.socket, args, stdout, stderr)
		}
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "replyreset %s: %v\n", c.name, err)
			return 2
		}
		fmt.Fprintf(stderr, "replyreset %s: %v\n", c.name, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "replyreset: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: replyreset <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'replyreset <command> -h' for the flags of a command.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("replyreset "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// formatFlag adds -format table|json to fs; checkFormat checks it after
// parsing.
func formatFlag(fs *flag.FlagSet) *string { return fs.String("format", "table", "table | json") }

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("%w: -format must be table or json", errUsage)
	}
	return nil
}

// parseInterleaved parses args in which flags and operands may mix, as in
// `deactivate jdoe asmith -config config.yaml`, and returns the operands.
// Everything after "--" is an operand.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		before := len(args)
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if used := before - len(rest); used > 0 && args[used-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// parseFlags parses args and maps flag errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
