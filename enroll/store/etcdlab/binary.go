package etcdlab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// Version is the etcd server version the lab runs: the same minor as the
// client module in go.mod.
const Version = "3.6.16"

// serverModule is the etcd main package, built with `go build`.
const serverModule = "go.etcd.io/etcd/server/v3"

// buildTimeout bounds one build of the server (about 2 minutes on 2 cores
// with a warm module cache, longer on a fresh machine).
const buildTimeout = 15 * time.Minute

// BinaryPath is where the cached server binary lives: $REPLYRESET_ETCD_CACHE
// (the file itself) when set, else etcd-v3.6.16 under os.UserCacheDir()'s
// replyreset directory (os.TempDir() when there is no user cache directory).
func BinaryPath() string {
	if p := os.Getenv("REPLYRESET_ETCD_CACHE"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "replyreset", "etcd-v"+Version)
}

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the etcd server binary, building it when it is
// missing (see BinaryPath). Concurrent test processes build it once: the
// others wait on a file lock next to it. The build needs the Go module proxy,
// which a test binary run through scripts/netns-exec.sh cannot reach: `make
// test` builds it first (`make etcd`).
func Binary() (string, error) {
	binary.once.Do(func() { binary.path, binary.err = ensureBinary(BinaryPath()) })
	return binary.path, binary.err
}

func ensureBinary(path string) (string, error) {
	if checkBinary(path) == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("etcdlab: etcd binary cache: %w", err)
	}
	lock, err := ldaplab.LockFile(path + ".lock")
	if err != nil {
		return "", fmt.Errorf("etcdlab: etcd binary cache lock: %w", err)
	}
	defer lock.Close() // releases the lock
	if checkBinary(path) == nil {
		return path, nil // built by another process while we waited
	}
	if err := build(path); err != nil {
		return "", err
	}
	if err := checkBinary(path); err != nil {
		return "", fmt.Errorf("etcdlab: the etcd binary just built at %s does not run: %w", path, err)
	}
	return path, nil
}

// checkBinary runs `etcd --version` and checks the version.
func checkBinary(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return err
	}
	if !bytes.Contains(out, []byte("etcd Version: "+Version+"\n")) {
		return fmt.Errorf("%s is not etcd %s: %q", path, Version, firstLine(out))
	}
	return nil
}

// build compiles the server in a throwaway module outside the repository (the
// server stays out of the project's go.mod) and renames it into place.
func build(path string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("etcdlab: building etcd %s needs the go command: %w", Version, err)
	}
	dir, err := os.MkdirTemp("", "replyreset-etcd-build-")
	if err != nil {
		return fmt.Errorf("etcdlab: build etcd: %w", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.Remove(tmp)
	steps := [][]string{
		{"mod", "init", "etcdbuild"},
		{"get", serverModule + "@v" + Version},
		{"build", "-o", tmp, serverModule},
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("etcdlab: build etcd %s: go %s: %v (a test binary run through scripts/netns-exec.sh "+
				"cannot reach the Go module proxy: run `make etcd` first, which `make test` does); output ends with:\n%s",
				Version, strings.Join(args, " "), err, lastBytes(out, 3000))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("etcdlab: build etcd: %w", err)
	}
	return nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return string(line)
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
