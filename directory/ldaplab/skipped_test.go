package ldaplab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const fakeServer = "Fake server"

// fakeUnavailable is a server that cannot run here, as requireTools says it.
func fakeUnavailable() *instance {
	return &instance{name: fakeServer, start: func() (*Server, error) {
		return nil, fmt.Errorf("%w: %s needs fakesrv, not found in PATH or /usr/sbin (install with scripts/install-test-deps.sh)",
			ErrUnavailable, fakeServer)
	}}
}

// tbRecorder is a testing.TB that records a skip or a failure instead of
// ending the test.
type tbRecorder struct {
	testing.TB // nil: need uses only the methods below
	name       string
	skipped    string
	failed     string
}

var errStopped = fmt.Errorf("test stopped")

func (r *tbRecorder) Helper()             {}
func (r *tbRecorder) Name() string        { return r.name }
func (r *tbRecorder) Logf(string, ...any) {}
func (r *tbRecorder) Skipf(f string, args ...any) {
	r.skipped = fmt.Sprintf(f, args...)
	panic(errStopped)
}
func (r *tbRecorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...); panic(errStopped) }

func (r *tbRecorder) need(in *instance) {
	defer func() {
		if v := recover(); v != nil && v != errStopped {
			panic(v)
		}
	}()
	in.need(r)
}

// fakeSkips returns the skips recorded for the fake server, and removes
// them at the end of t so that the package's own report stays true.
func fakeSkips(t *testing.T) []skip {
	t.Cleanup(func() {
		skipped.mu.Lock()
		defer skipped.mu.Unlock()
		skipped.skips = slices.DeleteFunc(skipped.skips, func(s skip) bool { return s.server == fakeServer })
	})
	skipped.mu.Lock()
	defer skipped.mu.Unlock()
	var out []skip
	for _, s := range skipped.skips {
		if s.server == fakeServer {
			out = append(out, s)
		}
	}
	return out
}

// Outside REPLYRESET_INTEGRATION=1 and CI no server is started: the test
// skips, saying how to run it, and the skip is recorded for the package's
// report.
func TestPlainRunSkipsAndIsRecorded(t *testing.T) {
	t.Setenv("REPLYRESET_INTEGRATION", "")
	t.Setenv("CI", "")
	started := false
	in := &instance{name: fakeServer, start: func() (*Server, error) {
		started = true
		return nil, errors.New("started")
	}}
	r := &tbRecorder{name: "TestNeedsFake/sub"}
	r.need(in)
	if started {
		t.Error("a plain run started a server")
	}
	if r.failed != "" || !strings.Contains(r.skipped, "Fake server not started") ||
		!strings.Contains(r.skipped, "set REPLYRESET_INTEGRATION=1 to run it") {
		t.Fatalf("want a skip saying how to run the test, got skip %q, failure %q", r.skipped, r.failed)
	}
	got := fakeSkips(t)
	want := []skip{{server: fakeServer, test: "TestNeedsFake/sub", reason: errNotRequested.Error()}}
	if !slices.Equal(got, want) {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
}

// Under REPLYRESET_INTEGRATION=1 or CI a server that cannot start fails the
// test, and nothing is reported as skipped.
func TestUnavailableServerFailsWhenStrict(t *testing.T) {
	for _, env := range [][2]string{{"REPLYRESET_INTEGRATION", "1"}, {"CI", "1"}} {
		t.Run(env[0], func(t *testing.T) {
			t.Setenv("REPLYRESET_INTEGRATION", "")
			t.Setenv("CI", "")
			t.Setenv(env[0], env[1])
			r := &tbRecorder{name: "TestNeedsFake"}
			r.need(fakeUnavailable())
			if r.skipped != "" || !strings.Contains(r.failed, "Fake server needs fakesrv") {
				t.Fatalf("want a failure naming the missing program, got skip %q, failure %q", r.skipped, r.failed)
			}
			if got := fakeSkips(t); len(got) != 0 {
				t.Fatalf("a failed start was recorded as a skip: %+v", got)
			}
		})
	}
}

func TestSkipSummary(t *testing.T) {
	var l skipLog
	if got := l.summary("./directory"); got != "" {
		t.Fatalf("nothing skipped: summary %q, want none", got)
	}
	notRoot := fmt.Errorf("ldaplab: Samba AD DC not started: %w", errNotRequested)
	notRootLDAP := fmt.Errorf("ldaplab: OpenLDAP slapd not started: %w", errNotRequested)
	browser := errors.New("Chromium not found (install with scripts/install-test-deps.sh)")
	l.add("Samba AD DC", "TestConformanceSambaAD", notRoot)
	want1 := "ldaplab: ./directory did not run 1 test that needs a real server (Samba AD DC: 1; " +
		"real directory servers start only with REPLYRESET_INTEGRATION=1 or CI set): TestConformanceSambaAD. Run them with `make test`, or as root: " +
		"REPLYRESET_INTEGRATION=1 CI=1 go test -race -count=1 -exec $PWD/scripts/netns-exec.sh ./directory"
	if got := l.summary("./directory"); got != want1 {
		t.Errorf("summary\n got %q\nwant %q", got, want1)
	}
	for i := range 7 {
		l.add("OpenLDAP slapd", fmt.Sprintf("TestT%d/openldap", i), notRootLDAP)
		l.add("Samba AD DC", fmt.Sprintf("TestT%d/samba", i), notRoot)
	}
	l.add("Chromium", "TestPages", browser)
	want := "ldaplab: ./gateway did not run 16 tests that need a real server (Samba AD DC: 8, OpenLDAP slapd: 7, Chromium: 1; " +
		"real directory servers start only with REPLYRESET_INTEGRATION=1 or CI set; Chromium not found): " +
		"TestConformanceSambaAD, TestT0, TestT1, TestT2, TestT3, TestT4 and 3 more. Run them with `make test`, or as root: " +
		"REPLYRESET_INTEGRATION=1 CI=1 go test -race -count=1 -exec $PWD/scripts/netns-exec.sh ./gateway"
	if got := l.summary("./gateway"); got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	if strings.Contains(want, "\n") {
		t.Error("the summary must be one line")
	}
}

func TestPackageDir(t *testing.T) {
	if got := packageDir(); got != "./directory/ldaplab" {
		t.Fatalf("packageDir() = %q, want ./directory/ldaplab", got)
	}
}

// Every package whose tests use the lab reports its skipped tests: its
// TestMain calls Main or ReportSkipped.
func TestEveryLabPackageReportsSkips(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	uses := map[string]bool{}    // package directory -> its tests import ldaplab
	reports := map[string]bool{} // package directory -> a TestMain reports
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src, dir := string(data), filepath.Dir(path)
		if strings.Contains(src, `"github.com/replyreset/replyreset/directory/ldaplab"`) || filepath.Base(dir) == "ldaplab" {
			uses[dir] = true
		}
		if strings.Contains(src, "func TestMain(") && (strings.Contains(src, "ldaplab.Main(m)") ||
			strings.Contains(src, "ldaplab.ReportSkipped(")) {
			reports[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < 2 {
		t.Fatalf("found only %v using the lab: the walk is broken", uses)
	}
	for dir := range uses {
		if !reports[dir] {
			t.Errorf("%s: its tests use ldaplab but no TestMain calls ldaplab.Main(m) or ldaplab.ReportSkipped: "+
				"add main_test.go with func TestMain(m *testing.M) { ldaplab.Main(m) }", dir)
		}
	}
}
