package ldaplab

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Tests that did not run. Outside REPLYRESET_INTEGRATION=1 and CI, a test
// that needs a real server skips (Samba, OpenLDAP); `go test ./...` shows
// nothing of a passing package's skips, so Main reports them once per
// package, after m.Run, with the command that runs them. Under
// REPLYRESET_INTEGRATION=1 or CI nothing is skipped: a server that cannot
// start fails the test, and there is nothing to report.

// Main is the TestMain of a package whose tests use the lab: it runs the
// tests, stops the servers (StopAll), reports the tests skipped for want of
// a server (ReportSkipped) and exits with the tests' status.
//
//	func TestMain(m *testing.M) { ldaplab.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	ReportSkipped(code)
	os.Exit(code)
}

// Skip skips t, which needs server, for the reason err, and records it for
// ReportSkipped. Only outside REPLYRESET_INTEGRATION=1 and CI: there a
// server that cannot start fails the test instead (see Samba).
func Skip(t testing.TB, server string, err error) {
	t.Helper()
	skipped.add(server, t.Name(), err)
	t.Skipf("%v\n(set REPLYRESET_INTEGRATION=1 to run it; `make test` installs the packages, sets it and runs every test binary in a network namespace of its own)", err)
}

// ReportSkipped writes, when tests of this process skipped for want of a
// server, one line naming them and how to run them. For a TestMain that
// does more than Main; code is m.Run's result. The line goes to stdout, and
// also to the terminal (/dev/tty) when the go command would hide it: a
// passing package tested in package-list mode without -v.
func ReportSkipped(code int) {
	line := skipped.summary(packageDir())
	if line == "" {
		return
	}
	fmt.Fprintln(os.Stdout, line)
	if code != 0 || verbose() || isTerminal(os.Stdout) {
		return // the go command shows this output, or it is the terminal
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(tty, line)
		_ = tty.Close()
	}
}

// skipLog records the tests skipped for want of a server.
type skipLog struct {
	mu    sync.Mutex
	skips []skip
}

type skip struct {
	server, test string
	reason       string // why the server cannot run, briefly
}

var skipped skipLog

func (l *skipLog) add(server, test string, err error) {
	reason := err.Error()
	if errors.Is(err, errNotRequested) {
		reason = errNotRequested.Error() // the same for every server
	}
	if i := strings.Index(reason, " ("); i > 0 {
		reason = reason[:i] // the details are in the test's own skip message
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.skips = append(l.skips, skip{server: server, test: test, reason: reason})
}

// maxNamed is how many skipped tests the summary names before "and N more".
const maxNamed = 6

// summary is the report for the package in dir (e.g. ./directory), or ""
// when nothing was skipped. Tests are named by their top-level name.
func (l *skipLog) summary(dir string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.skips) == 0 {
		return ""
	}
	var servers, reasons, tops []string
	perServer := map[string]int{}
	for _, s := range l.skips {
		if perServer[s.server] == 0 {
			servers = append(servers, s.server)
		}
		perServer[s.server]++
		if !slices.Contains(reasons, s.reason) {
			reasons = append(reasons, s.reason)
		}
		top, _, _ := strings.Cut(s.test, "/")
		if !slices.Contains(tops, top) {
			tops = append(tops, top)
		}
	}
	counts := make([]string, len(servers))
	for i, s := range servers {
		counts[i] = fmt.Sprintf("%s: %d", s, perServer[s])
	}
	named := strings.Join(tops[:min(len(tops), maxNamed)], ", ")
	if len(tops) > maxNamed {
		named += fmt.Sprintf(" and %d more", len(tops)-maxNamed)
	}
	tests := "tests that need"
	if len(l.skips) == 1 {
		tests = "test that needs"
	}
	return fmt.Sprintf("ldaplab: %s did not run %d %s a real server (%s; %s): %s. "+
		"Run them with `make test`, or as root: REPLYRESET_INTEGRATION=1 CI=1 go test -race -count=1 -exec $PWD/scripts/netns-exec.sh %s",
		dir, len(l.skips), tests, strings.Join(counts, ", "), strings.Join(reasons, "; "), named, dir)
}

// packageDir is the directory of the package under test relative to the
// module root ("./directory"); go test runs a test binary in its package's
// directory. The binary's name when there is no go.mod above.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return filepath.Base(os.Args[0])
}

// verbose reports whether go test shows all output (-v, -json).
func verbose() bool {
	f := flag.Lookup("test.v")
	return f != nil && f.Value.String() != "false"
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
