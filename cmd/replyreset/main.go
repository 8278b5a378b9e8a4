// Command replyreset runs the ReplyReset SMS password reset gateway and its
// admin subcommands. main does a signal context and the exit code; the
// command tree is in root.go and each command (or pair of commands) lives
// in its own file; the configuration file is composed in config.go.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// runAsService runs the command line under a service manager that started
// the process and reports ok; it reports false by default: outside Windows
// a service manager (systemd, docs/replyreset.service) runs `replyreset
// serve` as an ordinary process. service_windows.go sets it in its init.
var runAsService = func() (code int, ok bool) { return 0, false }

func main() {
	if code, ok := runAsService(); ok { // started by the Windows service manager
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
