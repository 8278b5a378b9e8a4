package etcdlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A member that cannot start makes the start fail with the reason and the
// end of the member's log, and leaves no files behind.
func TestClusterThatCannotStartSaysWhy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "etcd")
	script := "#!/bin/sh\necho \"fake etcd: refusing to start as $2\" >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "replyreset-etcd-*"))
	c, err := startOnce(bin, Options{Members: 3})
	if err == nil {
		c.stop()
		t.Fatal("a cluster of members that exit at once started")
	}
	for _, want := range []string{"etcd member m", "exited (exit status 3)", "fake etcd: refusing to start as m"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "replyreset-etcd-*"))
	if len(after) > len(before) {
		t.Errorf("the failed start left files: %v (before: %v)", after, before)
	}
}

func TestBinaryPath(t *testing.T) {
	t.Setenv("REPLYRESET_ETCD_CACHE", "/srv/cache/etcd")
	if got := BinaryPath(); got != "/srv/cache/etcd" {
		t.Errorf("BinaryPath() = %q with REPLYRESET_ETCD_CACHE set", got)
	}
	t.Setenv("REPLYRESET_ETCD_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/home/u/.cache")
	if got, want := BinaryPath(), "/home/u/.cache/replyreset/etcd-v"+Version; got != want {
		t.Errorf("BinaryPath() = %q, want %q", got, want)
	}
}
