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

func main() {
	if code, ok := runAsService(); ok { // started by the Windows service manager
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
