package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/demodir"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// wantFileLacks fails if the file at path contains s.
func wantFileLacks(t *testing.T, path, s string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(s)) {
		t.Errorf("%s holds %q in clear", path, s)
	}
}

// tokenNames lists the token names in the data file at path.
func tokenNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	list, err := s.APITokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tok := range list {
		names[tok.Name] = true
	}
	return names
}

func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, embeddedConfig(t))
	for _, name := range []string{"one", "two"} {
		mustRun(t, "api-token", "create", "-config", f.Path, "-owner", demodir.HelpdeskUsername, "-scopes", "read", name)
	}
	dest := filepath.Join(t.TempDir(), "backup.db")
	r := mustRun(t, "backup", "-config", f.Path, "-o", dest)
	if !strings.HasPrefix(r.stdout, "backup written to "+dest+" (") || !strings.Contains(r.stdout, "replyreset.key") {
		t.Errorf("backup says:\n%v", r)
	}
	st, err := os.Stat(dest)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	if names := tokenNames(t, dest); len(names) != 2 || !names["one"] || !names["two"] {
		t.Errorf("the backup holds tokens %v, want one and two", names)
	}
	// No overwrite without -force; nothing left behind.
	r = runCLI(t, "backup", "-config", f.Path, "-o", dest)
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, "replyreset backup: "+dest+" exists; use -force to overwrite it")
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 1 {
		t.Errorf("the backup directory holds %d entries, want only the backup (no temporary file left)", len(entries))
	}
	events := auditEvents(t, f, "-action", "backup")
	if len(events) != 2 || events[0].Outcome != "ok" || events[1].Outcome != "error" || !strings.Contains(events[0].Detail, dest) {
		t.Errorf("backup audit = %+v, want ok then error, naming the file", events)
	}

	// Changes after the backup are undone by a restore.
	mustRun(t, "api-token", "create", "-config", f.Path, "-owner", demodir.HelpdeskUsername, "-scopes", "read", "three")
	mustRun(t, "api-token", "revoke", "-config", f.Path, "one")
	r = mustRun(t, "restore", "-config", f.Path, "-i", dest)
	line, ok := lineWithPrefix(r.stdout, "restored "+filepath.Join(f.DataDir, "replyreset.db")+" from "+dest+"; the previous data file is kept as ")
	if !ok {
		t.Fatalf("restore says:\n%v", r)
	}
	bak := line[strings.LastIndex(line, " ")+1:]
	list := listTokens(t, f)
	if len(list) != 2 || list[0].Name != "one" || list[0].Revoked() || list[1].Name != "two" {
		t.Errorf("after restore, tokens = %+v; want one (live again) and two", list)
	}
	if names := tokenNames(t, bak); !names["three"] {
		t.Errorf("the kept data file %s lacks the later token: %v", bak, names)
	}
	if events := auditEvents(t, f, "-action", "restore"); len(events) != 1 || !strings.Contains(events[0].Detail, bak) {
		t.Errorf("restore audit = %+v", events)
	}
	// -force overwrites.
	mustRun(t, "backup", "-config", f.Path, "-o", dest, "-force")
	if names := tokenNames(t, dest); len(names) != 2 {
		t.Errorf("forced backup holds %v", names)
	}
}

func TestRestoreRefusesBadFiles(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, embeddedConfig(t))
	mustRun(t, "api-token", "create", "-config", f.Path, "-owner", demodir.HelpdeskUsername, "-scopes", "read", "keep")
	junk := filepath.Join(t.TempDir(), "junk.db")
	writeFile(t, junk, strings.Repeat("not a database ", 1000))
	r := runCLI(t, "restore", "-config", f.Path, "-i", junk)
	wantCode(t, r, 1)
	wantContains(t, r, r.stderr, junk+" is not a usable data file, nothing was changed")
	r = runCLI(t, "restore", "-config", f.Path, "-i", junk+".missing")
	wantCode(t, r, 1)
	wantContains(t, r, r.stderr, "no such file")
	if list := listTokens(t, f); len(list) != 1 || list[0].Name != "keep" {
		t.Errorf("a refused restore changed the data: %+v", list)
	}
	entries, _ := os.ReadDir(f.DataDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".bak-") || strings.HasPrefix(e.Name(), ".replyreset-") {
			t.Errorf("a refused restore left %s behind", e.Name())
		}
	}
	r = runCLI(t, "restore", "-config", f.Path)
	wantCode(t, r, 2)
	r = runCLI(t, "backup", "-config", f.Path, "-o", filepath.Join(f.DataDir, "replyreset.db"))
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset backup: usage: -o names the live data file itself")
}

// TestBackupWhileServing: with serve holding the data file, backup runs
// inside the server (the relative -o is made absolute first) while other
// commands keep writing; the copy checks out and holds every write
// acknowledged before it began. Restore is refused meanwhile. Not
// parallel: it changes the working directory.
func TestBackupWhileServing(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	c := embeddedConfig(t)
	c.Listen = freePort(t)
	f := writeConfig(t, c)
	srv := startServe(t, f, c.Listen)

	var (
		mu      sync.Mutex
		acked   []string
		stop    atomic.Bool
		wg      sync.WaitGroup
		created atomic.Int32
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				r := runCLI(t, "api-token", "create", "-config", f.Path, "-owner", demodir.HelpdeskUsername, "-scopes", "read", name)
				if r.code != 0 {
					t.Errorf("create during backup:\n%v", r)
					return
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
				created.Add(1)
			}
		})
	}
	for created.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	r := runCLI(t, "backup", "-config", f.Path, "-o", "live-backup.db")
	stop.Store(true)
	wg.Wait()
	wantCode(t, r, 0)
	dest := filepath.Join(work, "live-backup.db")
	if !strings.HasPrefix(r.stdout, "backup written by the running server to "+dest+" (") {
		t.Errorf("backup through the server says:\n%v", r)
	}

	r = runCLI(t, "restore", "-config", f.Path, "-i", dest)
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, "replyreset restore: replyreset serve is running on "+f.DataDir+": stop the service first, then restore")
	srv.stop(t)

	names := tokenNames(t, dest)
	for _, name := range before {
		if !names[name] {
			t.Errorf("token %s was acknowledged before the backup began but is not in it", name)
		}
	}
	t.Logf("backup holds %d tokens; %d were acknowledged before it began, %d created in all", len(names), len(before), created.Load())
	mustRun(t, "restore", "-config", f.Path, "-i", dest)
	if got := len(listTokens(t, f)); got != len(names) {
		t.Errorf("after restore %d tokens, want the backup's %d", got, len(names))
	}
}
