package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/spf13/cobra"
)

// runBackup writes a consistent copy of the store: with bolt, bbolt's
// tx.WriteTo in one read transaction; with etcd, every key of the prefix
// read at one revision, as JSON lines (etcd.Store.Backup). Either way the
// gateway keeps serving (and writing) meanwhile. The copy goes to a
// temporary file next to FILE, is checked, and only then takes FILE's
// name, mode 0600. While serve runs, the server writes the file (the
// command runs inside it), as the service's user.
func newBackupCmd(env *cmdEnv) *cobra.Command {
	var path, out string
	var force bool
	c := &cobra.Command{
		Use:         "backup -o FILE",
		Short:       "write a consistent copy of the store (data file or etcd prefix), also while serve runs",
		Example:     "  replyreset backup --config config.yaml -o /var/backups/replyreset.db",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.NoArgs, "want -o FILE, e.g. replyreset backup -config config.yaml -o /var/backups/replyreset.db"),
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("want -o FILE, e.g. replyreset backup -config config.yaml -o /var/backups/replyreset.db")
			}
			return runBackup(c.Context(), env, path, out, force, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := c.Flags()
	configFlag(fs, &path)
	fs.StringVarP(&out, "output", "o", "", "the backup `FILE` to write (required)")
	fs.BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return c
}

func runBackup(ctx context.Context, env *cmdEnv, path, out string, force bool, stdout, stderr io.Writer) error {
	dest, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cfg, err := loadConfigFlag(path)
	if err != nil {
		return err
	}
	if live, _ := filepath.Abs(dataFile(cfg)); live == dest {
		return fmt.Errorf("%w: -o names the live data file itself", errUsage)
	}
	store, release, err := env.openStore(cfg)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	check, what := checkDataFile, ""
	if cfg.Store.Backend == backendEtcd {
		check = func(_ context.Context, path string) error {
			keys, rev, err := checkEtcdBackup(path)
			what = fmt.Sprintf("%d keys of etcd prefix %s at revision %d, ", keys, cfg.Store.Etcd.Prefix, rev)
			return err
		}
	}
	n, err := writeBackup(ctx, store, dest, force, check)
	ev := enroll.Event{Time: time.Now(), Actor: "cli:" + env.user(), Action: "backup", Outcome: "ok",
		Detail: fmt.Sprintf("to %s (%d bytes)", dest, n)}
	if err != nil {
		ev.Outcome, ev.Detail = "error", fmt.Sprintf("to %s: %v", dest, err)
	}
	if _, aerr := store.AppendAudit(context.WithoutCancel(ctx), ev); aerr != nil {
		fmt.Fprintf(stderr, "replyreset backup: the audit event was not recorded: %v\n", aerr)
	}
	if err != nil {
		return err
	}
	by := ""
	if env.server != nil {
		by = " by the running server"
	}
	fmt.Fprintf(stdout, "backup written%s to %s (%d bytes, %s%s, checked); keep %s with it: it opens the sealed secrets\n",
		by, dest, n, what, time.Since(start).Round(time.Millisecond), cfg.keyFile())
	return nil
}

// finishFile makes the data file copy f, written with err, private
// (0600) and durable, and closes it; it returns the first error.
func finishFile(f *os.File, err error) error {
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// dataFile is the data file's path for cfg.
func dataFile(cfg *Config) string { return filepath.Join(cfg.DataDir, "replyreset.db") }

// writeBackup writes store's copy to dest through a temporary file that
// check accepts.
func writeBackup(ctx context.Context, store enroll.Backupper, dest string, force bool,
	check func(ctx context.Context, path string) error) (int64, error) {
	if !force {
		if _, err := os.Lstat(dest); err == nil {
			return 0, fmt.Errorf("%s exists; use -force to overwrite it", dest)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".replyreset-backup-*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up on failure
	n, err := store.Backup(ctx, tmp)
	if err = finishFile(tmp, err); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	if err := check(ctx, tmp.Name()); err != nil {
		return n, fmt.Errorf("backup: the copy does not check out: %w", err)
	}
	if force {
		err = os.Rename(tmp.Name(), dest)
	} else {
		// A hard link fails if dest appeared meanwhile: nothing is clobbered.
		err = os.Link(tmp.Name(), dest)
	}
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, syncDir(filepath.Dir(dest))
}

// checkDataFile opens a copy of a data file and runs bbolt's consistency
// check over it. Opening may add buckets a newer replyreset knows, so only
// copies are checked this way.
func checkDataFile(ctx context.Context, path string) error {
	s, err := bolt.Open(path)
	if err != nil {
		return err
	}
	err = s.Check(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkEtcdBackup reads the etcd store backup at path (etcd.CheckBackup)
// and returns how many keys it holds and the revision it was read at.
func checkEtcdBackup(path string) (keys int, revision int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return etcd.CheckBackup(f)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
