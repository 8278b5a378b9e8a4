package ldaplab

import (
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

// Outside REPLYRESET_INTEGRATION=1 and CI, a server that cannot run skips
// the test with the reason and records the skip for the package's report.
func TestUnavailableServerSkipsAndIsRecorded(t *testing.T) {
	t.Setenv("REPLYRESET_INTEGRATION", "")
	t.Setenv("CI", "")
	r := &tbRecorder{name: "TestNeedsFake/sub"}
	r.need(fakeUnavailable())
	if r.failed != "" || !strings.Contains(r.skipped, "Fake server needs fakesrv") ||
		!strings.Contains(r.skipped, "set REPLYRESET_INTEGRATION=1 to make this a failure") {
		t.Fatalf("want a skip naming the missing program, got skip %q, failure %q", r.skipped, r.failed)
	}
	got := fakeSkips(t)
	want := []skip{{server: fakeServer, test: "TestNeedsFake/sub", reason: "Fake server needs fakesrv, not found in PATH or /usr/sbin"}}
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
	notRoot := fmt.Errorf("%w: Samba AD DC: the lab must run as root (Samba binds port 389)", ErrUnavailable)
	notRootLDAP := fmt.Errorf("%w: OpenLDAP slapd: the lab must run as root (Samba binds port 389)", ErrUnavailable)
	l.add("Samba AD DC", "TestConformanceSambaAD", notRoot)
	want1 := "ldaplab: ./directory did not run 1 test that needs a real directory server (Samba AD DC: 1; " +
		"Samba AD DC: the lab must run as root): TestConformanceSambaAD. Run them with `make test`, or as root: " +
		"REPLYRESET_INTEGRATION=1 CI=1 go test -race -count=1 -exec $PWD/scripts/netns-exec.sh ./directory"
	if got := l.summary("./directory"); got != want1 {
		t.Errorf("summary\n got %q\nwant %q", got, want1)
	}
	for i := range 7 {
		l.add("OpenLDAP slapd", fmt.Sprintf("TestT%d/openldap", i), notRootLDAP)
		l.add("Samba AD DC", fmt.Sprintf("TestT%d/samba", i), notRoot)
	}
	want := "ldaplab: ./gateway did not run 15 tests that need a real directory server (Samba AD DC: 8, OpenLDAP slapd: 7; " +
		"Samba AD DC: the lab must run as root; OpenLDAP slapd: the lab must run as root): " +
		"TestConformanceSambaAD, TestT0, TestT1, TestT2, TestT3, TestT4 and 2 more. Run them with `make test`, or as root: " +
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
