//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sys/windows/svc"
)

// Running as a Windows service. The service manager starts the binary with
// the command line it was registered with, for example
//
//	sc.exe create ReplyReset start= auto binPath= "C:\ReplyReset\replyreset.exe serve -config C:\ReplyReset\config.yaml"
//
// runAsService notices that (svc.IsWindowsService), runs that command line
// as `run` would, and turns the service manager's Stop and Shutdown into
// the same graceful stop as Ctrl-C. There is no console: the output goes to
// replyreset.log next to the executable (or to REPLYRESET_SERVICE_LOG).
// From a console the binary behaves as on every other system.

// serviceName is the name the service manager knows; with a service that
// runs in its own process the manager does not check it.
const serviceName = "ReplyReset"

func init() { runAsService = runWindowsService }

// runWindowsService runs the command line as a Windows service when the
// service manager started the process; ok is false otherwise.
func runWindowsService() (code int, ok bool) {
	isService, err := svc.IsWindowsService()
	if err != nil || !isService {
		return 0, false
	}
	cobra.MousetrapHelpText = "" // not started from Explorer: no "this is a command line tool" pause
	out := serviceLog()
	defer out.Close()
	h := &serviceHandler{args: os.Args[1:], out: out}
	if err := svc.Run(serviceName, h); err != nil {
		fmt.Fprintf(out, "replyreset: the service manager refused the service: %v\n", err)
		return 1, true
	}
	return h.code, true
}

// serviceLog opens the file that takes the service's output.
func serviceLog() io.WriteCloser {
	path := os.Getenv("REPLYRESET_SERVICE_LOG")
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nopCloser{io.Discard}
		}
		path = filepath.Join(filepath.Dir(exe), "replyreset.log")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nopCloser{io.Discard}
	}
	return f
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// serviceHandler is the svc.Handler: it runs the command line until it
// ends or the service manager asks it to stop.
type serviceHandler struct {
	args []string
	out  io.Writer
	code int
}

func (h *serviceHandler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- run(ctx, h.args, h.out, h.out) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case h.code = <-done:
			// serve ended by itself (a bad configuration, a lost data
			// file): the service manager records the exit code.
			return h.code != 0, uint32(h.code)
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				h.code = <-done
				return false, uint32(h.code)
			}
		}
	}
}
