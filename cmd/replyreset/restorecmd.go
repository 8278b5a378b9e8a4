package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/spf13/cobra"
)

func newRestoreCmd(env *cmdEnv) *cobra.Command {
	var path, in string
	c := &cobra.Command{
		Use:     "restore -i FILE",
		Short:   "replace the data file with a backup, or load one into an empty etcd prefix (the service must be stopped)",
		Example: "  replyreset restore --config config.yaml -i /var/backups/replyreset.db",
		Args:    wantArgs(cobra.NoArgs, "want -i FILE, e.g. replyreset restore -config config.yaml -i /var/backups/replyreset.db"),
		RunE: func(c *cobra.Command, _ []string) error {
			if in == "" {
				return usageErrorf("want -i FILE, e.g. replyreset restore -config config.yaml -i /var/backups/replyreset.db")
			}
			return runRestore(c.Context(), env, path, in, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	configFlag(c.Flags(), &path)
	c.Flags().StringVarP(&in, "input", "i", "", "the backup `FILE` to restore (required)")
	return c
}

// runRestore replaces the data file with a backup. It refuses while a
// server (or any other process) holds the data file, checks the backup (a
// copy of it is opened with bbolt and checked), keeps the current file as
// replyreset.db.bak-<time> and puts the checked copy in its place. The
// key file (replyreset.key) stays: it opens the backup's sealed secrets.
// With store.backend etcd it loads an etcd store backup instead
// (restoreEtcd).
func runRestore(ctx context.Context, env *cmdEnv, path, in string, stdout, stderr io.Writer) error {
	cfg, err := loadConfigFlag(path)
	if err != nil {
		return err
	}
	if sock := controlSocket(cfg); controlAnswers(sock) {
		return fmt.Errorf("replyreset serve is running on %s: stop the service first, then restore", cfg.DataDir)
	}
	if cfg.Store.Backend == backendEtcd {
		return restoreEtcd(ctx, env, cfg, in, stdout)
	}
	src, err := os.Open(in)
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
	held, err := bolt.Open(live, bolt.WithLockTimeout(time.Second))
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
	if err := checkDataFile(ctx, tmp.Name()); err != nil {
		return fmt.Errorf("%s is not a usable data file, nothing was changed: %w", in, err)
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

	restored, err := bolt.Open(live)
	if err != nil {
		return fmt.Errorf("open the restored data file: %w", err)
	}
	defer restored.Close()
	if _, err := restored.AppendAudit(ctx, enroll.Event{Time: time.Now(), Actor: "cli:" + env.user(), Action: "restore",
		Outcome: "ok", Detail: "from " + in + "; " + kept}); err != nil {
		fmt.Fprintf(stderr, "replyreset restore: the audit event was not recorded: %v\n", err)
	}
	fmt.Fprintf(stdout, "restored %s from %s; %s\n", live, in, kept)
	if _, err := os.Stat(cfg.keyFile()); err != nil {
		fmt.Fprintf(stderr, "replyreset restore: warning: %s is missing: put back the key file that was in use when the backup was taken, or sealed secrets and token hashes will not open\n",
			cfg.keyFile())
	}
	return nil
}

// etcdRestoreTimeout bounds a restore into etcd (one transaction per
// hundred keys).
const etcdRestoreTimeout = 10 * time.Minute

// restoreEtcd loads an etcd store backup into store.etcd.prefix, which must
// hold no record (a fresh store's meta/schema aside; etcd.Import: TTL
// records on leases, ended ones left out): a prefix that holds keys is
// refused, naming it and how many it
// holds, and nothing is written (there is no -force: the keys may be a
// running node's, and deleting them is a decision for etcdctl). Each key
// is created only if absent, so a node that starts meanwhile makes the
// restore stop rather than be overwritten. The restored store is then
// opened as serve opens it, which checks that store.key_file is the key
// its secrets are sealed with, and the restore is audited there.
func restoreEtcd(ctx context.Context, env *cmdEnv, cfg *Config, in string, stdout io.Writer) error {
	src, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	defer src.Close()
	if _, _, err := checkEtcdBackup(in); err != nil {
		return fmt.Errorf("%s is not an etcd store backup, nothing was changed: %w", in, err)
	}
	cli, err := dialEtcd(ctx, cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	prefix := cfg.Store.Etcd.Prefix
	rctx, cancel := context.WithTimeout(ctx, etcdRestoreTimeout)
	defer cancel()
	n, err := etcd.Restore(rctx, cli, prefix, src)
	switch {
	case errors.Is(err, etcd.ErrNotEmpty) && n == 0:
		return fmt.Errorf("%w; nothing was restored. Restore only into an empty prefix: stop every node, then "+
			"delete the prefix first with `etcdctl del --prefix %s` (or set store.etcd.prefix to an empty one)", err, prefix)
	case err != nil:
		return fmt.Errorf("%w; %d keys were written: stop every node, delete the prefix with `etcdctl del --prefix %s` and restore again",
			err, n, prefix)
	}
	b, _, err := openSealedStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("restored %d keys into etcd prefix %s, but the store does not open: %w", n, prefix, err)
	}
	defer b.Close()
	if _, err := b.Store.AppendAudit(ctx, enroll.Event{Time: time.Now(), Actor: "cli:" + env.user(), Action: "restore",
		Outcome: "ok", Detail: fmt.Sprintf("from %s: %d keys into etcd prefix %s", in, n, prefix)}); err != nil {
		return fmt.Errorf("restored %d keys into etcd prefix %s, but the audit event was not recorded: %w", n, prefix, err)
	}
	fmt.Fprintf(stdout, "restored %d keys into etcd prefix %s from %s\n", n, prefix, in)
	return nil
}
