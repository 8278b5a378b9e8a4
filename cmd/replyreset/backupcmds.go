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
)

// runBackup writes a consistent copy of the data file: bbolt's tx.WriteTo
// in one read transaction, so the gateway keeps serving (and writing)
// meanwhile. The copy goes to a temporary file next to FILE, is checked,
// and only then takes FILE's name, mode 0600. While serve runs, the server
// writes the file (the command runs inside it), as the service's user.
func runBackup(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("backup", stderr)
	path := fset.String("config", "", "configuration file (required)")
	out := fset.String("o", "", "the backup file to write (required)")
	force := fset.Bool("force", false, "overwrite FILE if it exists")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if *out == "" || fset.NArg() != 0 {
		return fmt.Errorf("%w: want -o FILE, e.g. replyreset backup -config config.yaml -o /var/backups/replyreset.db", errUsage)
	}
	dest, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	cfg, err := loadConfigFlag(*path)
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
	n, err := writeBackup(store, dest, *force)
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
	fmt.Fprintf(stdout, "backup written%s to %s (%d bytes, %s, checked); keep %s with it: it opens the sealed secrets\n",
		by, dest, n, time.Since(start).Round(time.Millisecond), filepath.Join(cfg.DataDir, "replyreset.key"))
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

// writeBackup writes store's copy to dest through a checked temporary file.
func writeBackup(store *enroll.BoltStore, dest string, force bool) (int64, error) {
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
	n, err := store.Backup(tmp)
	if err = finishFile(tmp, err); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	if err := checkDataFile(tmp.Name()); err != nil {
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
func checkDataFile(path string) error {
	s, err := enroll.OpenBolt(path)
	if err != nil {
		return err
	}
	err = s.Check()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
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

// runRestore replaces the data file with a backup. It refuses while a
// server (or any other process) holds the data file, checks the backup (a
// copy of it is opened with bbolt and checked), keeps the current file as
// replyreset.db.bak-<time> and puts the checked copy in its place. The
// key file (replyreset.key) stays: it opens the backup's sealed secrets.
func runRestore(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("restore", stderr)
	path := fset.String("config", "", "configuration file (required)")
	in := fset.String("i", "", "the backup file to restore (required)")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if *in == "" || fset.NArg() != 0 {
		return fmt.Errorf("%w: want -i FILE, e.g. replyreset restore -config config.yaml -i /var/backups/replyreset.db", errUsage)
	}
	cfg, err := loadConfigFlag(*path)
	if err != nil {
		return err
	}
	if sock := controlSocket(cfg); controlAnswers(sock) {
		return fmt.Errorf("replyreset serve is running on %s: stop the service first, then restore", cfg.DataDir)
	}
	src, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	defer src.Close()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	live := dataFile(cfg)
	_, statErr := os.Stat(live)
	existed := statErr == nil
	// Hold the live file while replacing it, so no other replyreset
	// process (a serve without its socket yet, a command) is using it.
	held, err := enroll.OpenBolt(live, enroll.WithLockTimeout(time.Second))
	if err != nil {
		return fmt.Errorf("the data file cannot be taken: %w (stop the service first)", err)
	}
	defer held.Close()

	tmp, err := os.CreateTemp(cfg.DataDir, ".replyreset-restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, src)
	if err = finishFile(tmp, err); err != nil {
		return fmt.Errorf("copy the backup: %w", err)
	}
	if err := checkDataFile(tmp.Name()); err != nil {
		return fmt.Errorf("%s is not a usable data file, nothing was changed: %w", *in, err)
	}
	kept := "there was no previous data file"
	if existed {
		bak := live + ".bak-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Link(live, bak); err != nil {
			return fmt.Errorf("keep the current data file: %w", err)
		}
		kept = "the previous data file is kept as " + bak
	}
	if err := os.Rename(tmp.Name(), live); err != nil {
		return fmt.Errorf("put the backup in place (the current data file is unchanged): %w", err)
	}
	if err := syncDir(cfg.DataDir); err != nil {
		return err
	}
	held.Close()

	restored, err := enroll.OpenBolt(live)
	if err != nil {
		return fmt.Errorf("open the restored data file: %w", err)
	}
	defer restored.Close()
	if _, err := restored.AppendAudit(ctx, enroll.Event{Time: time.Now(), Actor: "cli:" + env.user(), Action: "restore",
		Outcome: "ok", Detail: "from " + *in + "; " + kept}); err != nil {
		fmt.Fprintf(stderr, "replyreset restore: the audit event was not recorded: %v\n", err)
	}
	fmt.Fprintf(stdout, "restored %s from %s; %s\n", live, *in, kept)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "replyreset.key")); err != nil {
		fmt.Fprintf(stderr, "replyreset restore: warning: %s is missing: put back the key file that was in use when the backup was taken, or sealed secrets and token hashes will not open\n",
			filepath.Join(cfg.DataDir, "replyreset.key"))
	}
	return nil
}
