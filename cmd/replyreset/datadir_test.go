package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/enroll/enrolltest"
)

// wantModes checks the permissions of data_dir and its files.
func wantModes(t *testing.T, dir string, want map[string]os.FileMode) {
	t.Helper()
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %04o, want %04o", filepath.Join(dir, name), got, mode)
		}
	}
}

func loosen(t *testing.T, dir string) {
	t.Helper()
	for name, mode := range map[string]os.FileMode{".": 0o755, "replyreset.db": 0o644, "replyreset.key": 0o640} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
}

var tight = map[string]os.FileMode{".": 0o700, "replyreset.db": 0o600, "replyreset.key": 0o600}

// TestDataDirTightened: serve and the commands that open the data file
// restrict data_dir to 0700 and the data and key files to 0600, and say so.
func TestDataDirTightened(t *testing.T) {
	t.Parallel()
	c := offlineConfig()
	c.Listen = freePort(t)
	f := writeConfig(t, c)
	mustRun(t, "api-token", "list", "-config", f.Path) // creates data_dir, the data file and the key
	wantModes(t, f.DataDir, tight)

	loosen(t, f.DataDir)
	srv := startServe(t, f, c.Listen)
	wantModes(t, f.DataDir, tight)
	srv.stop(t)
	log := srv.stderr.String()
	for _, name := range []string{"replyreset.db", "replyreset.key"} {
		if !strings.Contains(log, "data_dir: access restricted to the service's user") || !strings.Contains(log, filepath.Join(f.DataDir, name)) {
			t.Errorf("the serve log does not say %s was restricted:\n%s", name, log)
		}
	}

	// The commands that open the data file directly or through the app.
	for _, args := range [][]string{{"enrollments"}, {"api-token", "list"}, {"audit"}} {
		loosen(t, f.DataDir)
		mustRun(t, append(args, "-config", f.Path)...)
		wantModes(t, f.DataDir, tight)
	}
}

// TestDataDirCannotTighten: a data_dir whose mode cannot be changed (here
// a procfs directory, refused even to root) is a warning, not a failure.
func TestDataDirCannotTighten(t *testing.T) {
	buf := &enrolltest.LogBuffer{}
	if err := openDataDir("/proc/sys", slog.New(slog.NewTextHandler(buf, nil))); err != nil {
		t.Fatalf("openDataDir: %v, want only a warning", err)
	}
	if log := buf.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "cannot restrict access") ||
		!strings.Contains(log, "path=/proc/sys") || !strings.Contains(log, "want=0700") {
		t.Errorf("log:\n%s", log)
	}
	// Only a data_dir that cannot be created stops the start.
	if err := openDataDir("/proc/sys/replyreset-data", slog.New(slog.DiscardHandler)); err == nil || !strings.HasPrefix(err.Error(), "data_dir: ") {
		t.Errorf("openDataDir(uncreatable) = %v", err)
	}
}
