package ldaplab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// cacheDir holds the provisioned templates, shared by every test process on
// the machine.
func cacheDir() string {
	if d := os.Getenv("REPLYRESET_LAB_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "replyreset-lab-cache")
}

// cacheKey names a template after everything that shapes it, so that a
// changed recipe or server version provisions anew.
func cacheKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// template returns a tar of the directory that build fills, building it at
// most once per machine: concurrent test processes wait on a file lock while
// the first one builds.
func template(name string, build func(dir string) error) (string, error) {
	dir := cacheDir()
	tarPath := filepath.Join(dir, name+".tar")
	if _, err := os.Stat(tarPath); err == nil {
		return tarPath, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("ldaplab: cache: %w", err)
	}
	lock, err := LockFile(filepath.Join(dir, name+".lock"))
	if err != nil {
		return "", fmt.Errorf("ldaplab: cache lock: %w", err)
	}
	defer lock.Close() // releases the lock
	if _, err := os.Stat(tarPath); err == nil {
		return tarPath, nil // built by another process while we waited
	}
	work := filepath.Join(dir, name+".build")
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", fmt.Errorf("ldaplab: cache: %w", err)
	}
	defer os.RemoveAll(work)
	if err := build(work); err != nil {
		return "", err
	}
	tmp := tarPath + ".tmp"
	if _, err := run(time.Minute, "tar", "-C", work, "-cf", tmp, "."); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, tarPath); err != nil {
		return "", fmt.Errorf("ldaplab: cache: %w", err)
	}
	return tarPath, nil
}

// LockFile opens (creating it) the file at path and takes an exclusive
// lock on it, waiting while another process holds it; closing the file
// releases the lock. For the machine-wide caches of the labs.
func LockFile(path string) (*os.File, error) {
	lock, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	return lock, nil
}

// restore unpacks a template into dst.
func restore(tarPath, dst string) error {
	_, err := run(time.Minute, "tar", "-C", dst, "-xf", tarPath)
	return err
}

// makeCert writes a self-signed certificate for 127.0.0.1, valid 10 years,
// with openssl: Samba's own certificate has a random serial that is negative
// half of the time, which Go refuses to parse.
func makeCert(certPath, keyPath, commonName string) error {
	_, err := run(time.Minute, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
		"-subj", "/CN="+commonName,
		"-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:"+commonName,
		"-keyout", keyPath, "-out", certPath)
	if err != nil {
		return err
	}
	return os.Chmod(keyPath, 0o600) // samba refuses a key readable by others
}
