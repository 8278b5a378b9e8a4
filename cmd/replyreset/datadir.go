package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// The data directory holds the data file (enrollments, hashed secrets,
// the audit trail) and the key that seals and hashes them: nobody but the
// service's user has any business reading either.
const (
	dataDirMode  fs.FileMode = 0o700
	dataFileMode fs.FileMode = 0o600
)

// dataFiles are the files of data_dir that openDataDir tightens.
var dataFiles = []string{"replyreset.db", "replyreset.key"}

// openDataDir creates data_dir (0700) when missing and tightens what is
// there: the directory to 0700 and the data and key files to 0600 when
// group or others have any access. What cannot be tightened (another
// owner, a read-only file system) is logged as a warning and does not stop
// the start: the service still works, the operator is told. Only a
// data_dir that cannot be created is an error.
func openDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	tighten(dir, dataDirMode, log)
	for _, name := range dataFiles {
		tighten(filepath.Join(dir, name), dataFileMode, log)
	}
	return nil
}

// tighten sets path to mode when its permissions give group or others
// anything; a missing path is left alone.
func tighten(path string, mode fs.FileMode, log *slog.Logger) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil && st.Mode().Perm()&0o077 == 0 {
		return
	}
	if err == nil {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		log.Warn("data_dir: cannot restrict access to the service's user; fix it by hand",
			"path", path, "want", fmt.Sprintf("%04o", mode), "err", err)
		return
	}
	log.Info("data_dir: access restricted to the service's user", "path", path,
		"was", fmt.Sprintf("%04o", st.Mode().Perm()), "now", fmt.Sprintf("%04o", mode))
}
