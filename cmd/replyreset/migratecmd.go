package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/layout"
)

const migrateExample = "replyreset migrate -config config.yaml -from /var/lib/replyreset/replyreset.db"

func newMigrateCmd(env *cmdEnv) *cobra.Command {
	var o migrateOptions
	c := &cobra.Command{
		Use:     "migrate -from DATAFILE",
		Short:   "copy a bbolt data file into the configured etcd store (every record, secrets re-sealed, counts verified)",
		Example: "  " + migrateExample,
		Args:    wantArgs(cobra.NoArgs, "want -from DATAFILE, e.g. "+migrateExample),
		RunE: func(c *cobra.Command, _ []string) error {
			if o.from == "" {
				return usageErrorf("want -from DATAFILE, e.g. %s", migrateExample)
			}
			return runMigrate(c.Context(), env, o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := c.Flags()
	configFlag(fs, &o.config)
	fs.StringVar(&o.from, "from", "", "the bbolt data `FILE` to copy (required; it is only read)")
	fs.StringVar(&o.key, "key", "", "the data file's key `FILE` (default: replyreset.key next to it)")
	fs.BoolVar(&o.force, "force", false, "replace the records of a prefix that holds some (leases/ and leader/ are never touched)")
	return c
}

type migrateOptions struct {
	config, from, key string
	force             bool
}

// migrateTimeout bounds a whole migration, etcdRequestTimeout each of
// its own requests to the cluster.
const (
	migrateTimeout     = 30 * time.Minute
	etcdRequestTimeout = 30 * time.Second
)

// standInKey is a random key that seals nothing kept: the dry run's
// target when store.key_file does not exist yet.
func standInKey() (*enroll.Sealer, error) {
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return enroll.NewSealer(key)
}

// migration is the marker meta/migration (layout.KeyMigration): what
// filled the prefix, so that migrating the same file again does nothing.
type migration struct {
	Source  string        `json:"source"`
	SHA256  string        `json:"sha256"`
	Time    time.Time     `json:"time"`
	Written layout.Counts `json:"written"`
}

// runMigrate copies the bbolt data file o.from into the etcd store of the
// configuration: the file is opened read-only (a running serve's lock is
// refused, naming it) and exported in one read transaction to a private
// temporary stream (enroll/store/layout); every record is re-sealed from
// the file's key to store.key_file's in a dry run first (a wrong key
// fails before anything is written), then imported (etcd.Import: TTL
// records on leases of their remaining life, ended ones counted, never
// leases/ or leader/), read back and compared, and the migration is
// recorded in meta/migration and audited. Migrating the same file again
// verifies and does nothing; a prefix that holds records is refused
// unless -force.
func runMigrate(ctx context.Context, env *cmdEnv, o migrateOptions, stdout, stderr io.Writer) error {
	cfg, err := loadConfigFlag(o.config)
	if err != nil {
		return err
	}
	if cfg.Store.Backend != backendEtcd {
		return fmt.Errorf("migrate copies a bbolt data file into etcd, and the configured store is the bbolt data file %s: "+
			"set store.backend: etcd (and store.etcd) in the configuration, then migrate", dataFile(cfg))
	}
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	from, err := filepath.Abs(o.from)
	if err != nil {
		return err
	}
	keyPath := o.key
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(from), "replyreset.key")
	}
	src, sum, err := openMigrationSource(from, keyPath)
	if err != nil {
		return err
	}
	defer src.close()
	// The target's key: created (as serve would) only once the migration
	// is sure to write; until then a stand-in seals the dry run.
	to, err := enroll.LoadKey(cfg.keyFile())
	newKey := errors.Is(err, fs.ErrNotExist)
	switch {
	case newKey:
		if to, err = standInKey(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("store.key_file: %w", err)
	}
	stream, err := src.export(ctx)
	if err != nil {
		return err
	}
	defer os.Remove(stream.Name())
	defer stream.Close()

	want, err := dryRun(stream, src.sealer, keyPath, to)
	if err != nil {
		return fmt.Errorf("-from %s: nothing was migrated: %w", from, err)
	}

	cli, err := dialEtcd(ctx, cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	prefix := cfg.Store.Etcd.Prefix
	done, err := readMigration(ctx, cli, prefix)
	if err != nil {
		return err
	}
	if done != nil && done.SHA256 == sum {
		return verifyAgain(ctx, cli, prefix, from, done, want, stdout)
	}
	if done != nil && !o.force {
		return fmt.Errorf("etcd prefix %s was filled by a migration from %s (sha256 %s) at %s, and %s is another file or has changed since; "+
			"nothing was migrated: migrate with -force to replace its records", prefix, done.Source, done.SHA256, done.Time.Format(time.RFC3339), from)
	}

	if newKey {
		if cfg.Store.KeyFile == "" { // data_dir/replyreset.key: data_dir as serve makes it
			if err := openDataDir(cfg.DataDir, slog.Default()); err != nil {
				return err
			}
		}
		if to, err = enroll.LoadOrCreateKey(cfg.keyFile()); err != nil {
			return fmt.Errorf("store.key_file: %w", err)
		}
	}
	rs := enroll.NewResealer(src.sealer, to)
	res, err := etcd.Import(ctx, cli, prefix, stream, etcd.ImportOptions{Rewrite: resealRecord(rs, to), Replace: o.force})
	switch {
	case errors.Is(err, etcd.ErrNotEmpty) && res.Written.Total() == 0:
		if newKey {
			os.Remove(cfg.keyFile()) // made just now for a migration that wrote nothing
		}
		return fmt.Errorf("%w; nothing was migrated. Migrate into an empty prefix (set store.etcd.prefix to a new one), "+
			"or with -force to replace its records (leases/ and leader/ are never touched)", err)
	case err != nil:
		return fmt.Errorf("%w; %d records were written: run the migration again with -force", err, res.Written.Total())
	}
	found, bad, err := etcd.Verify(ctx, cli, prefix, res.Values, false)
	if err != nil {
		return err
	}
	if !found.Equal(res.Written) || len(bad) > 0 {
		return fmt.Errorf("the records read back from etcd prefix %s are not those written: written %s, read back %s; first differences: %s",
			prefix, res.Written, found, strings.Join(bad, ", "))
	}
	marker, err := json.Marshal(migration{Source: from, SHA256: sum, Time: time.Now().UTC(), Written: res.Written})
	if err != nil {
		return err
	}
	pctx, pcancel := context.WithTimeout(ctx, etcdRequestTimeout)
	defer pcancel()
	if _, err := cli.Put(pctx, prefix+layout.KeyMigration, string(marker)); err != nil {
		return fmt.Errorf("record the migration in %s%s: %w", prefix, layout.KeyMigration, err)
	}
	b, _, err := openSealedStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrated into etcd prefix %s, but the store does not open: %w", prefix, err)
	}
	defer b.Close()
	if _, err := b.Store.AppendAudit(ctx, enroll.Event{Time: time.Now(), Actor: "cli:" + env.user(), Action: "migrate", Outcome: "ok",
		Detail: fmt.Sprintf("from %s (sha256 %s): %d records into etcd prefix %s", from, sum, res.Written.Total(), prefix)}); err != nil {
		fmt.Fprintf(stderr, "replyreset migrate: the audit event was not recorded: %v\n", err)
	}
	if newKey {
		fmt.Fprintf(stdout, "created the key file %s (key fingerprint %s): copy it to every node\n", cfg.keyFile(), to.Fingerprint())
	}
	printMigration(stdout, stderr, from, sum, prefix, res, rs, cfg.keyFile(), keyPath)
	return nil
}

// dryRun reads the exported stream with every record re-sealed from the
// source's key to to, writing nothing, and returns the SHA-256 of each
// record an import writes that a later check finds still there (the TTL
// ones aside). A wrong source key fails here.
func dryRun(stream io.ReadSeeker, from *enroll.Sealer, keyPath string, to *enroll.Sealer) (map[string][sha256.Size]byte, error) {
	rs := enroll.NewResealer(from, to)
	want := map[string][sha256.Size]byte{}
	_, _, err := layout.Read(stream, func(rec layout.Record) error {
		// A file that names its key (every file since fingerprints) is
		// checked against it before any secret is opened.
		if fp := from.Fingerprint(); rec.Key == layout.KeySealKey && string(rec.Value) != fp {
			return fmt.Errorf("-key %s is not the key of this data file: its fingerprint is %s, the file's is %s; "+
				"give the key file that was in use with it", keyPath, fp, rec.Value)
		}
		rec, keep, err := resealRecord(rs, to)(rec)
		if keep && !layout.Live(rec.Key) && rec.Expires == 0 {
			want[rec.Key] = sha256.Sum256(rec.Value)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	_, err = stream.Seek(0, io.SeekStart)
	return want, err
}

// printMigration reports a migration: the counts of each kind read,
// written and left out, what was read back, and the secrets re-sealed.
func printMigration(stdout, stderr io.Writer, from, sum, prefix string, res etcd.ImportResult, rs *enroll.Resealer, keyFile, oldKey string) {
	fmt.Fprintf(stdout, "read from %s (sha256 %s): %s\n", from, sum, res.Read)
	fmt.Fprintf(stdout, "written into etcd prefix %s: %s\n", prefix, res.Written)
	if n := res.Expired.Total(); n > 0 {
		fmt.Fprintf(stdout, "not copied, their TTL had ended: %s\n", res.Expired)
	}
	if n := res.Skipped.Total(); n > 0 {
		fmt.Fprintf(stdout, "not copied, they belong to a running process: %s\n", res.Skipped)
	}
	fmt.Fprintf(stdout, "verified: %d records read back from etcd as written\n", res.Written.Total())
	if rs.Same() {
		fmt.Fprintf(stdout, "secrets: %s seals both stores (key fingerprint %s), nothing to re-seal\n", keyFile, rs.To.Fingerprint())
		return
	}
	fmt.Fprintf(stdout, "secrets: %d re-sealed with %s (key fingerprint %s)\n", rs.Resealed, keyFile, rs.To.Fingerprint())
	if rs.Stale > 0 {
		fmt.Fprintf(stderr, "replyreset migrate: warning: %d activation links, phone changes and API tokens were issued under the old key: "+
			"their hashes only match it, so they no longer work; activate those users and issue those API tokens again "+
			"(or migrate again with store.key_file set to %s)\n", rs.Stale, oldKey)
	}
}

// migrationSource is the opened data file and its key.
type migrationSource struct {
	store  *bolt.Store
	sealer *enroll.Sealer
}

func (s migrationSource) close() { s.store.Close() }

// openMigrationSource opens the data file read-only with its key and
// returns the file's SHA-256; each way it can be unusable is its own
// error.
func openMigrationSource(from, keyPath string) (migrationSource, string, error) {
	st, err := bolt.Open(from, bolt.ReadOnly(), bolt.WithLockTimeout(time.Second))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return migrationSource{}, "", fmt.Errorf("-from %s: there is no such data file", from)
	case errors.Is(err, bolt.ErrInUse):
		return migrationSource{}, "", fmt.Errorf("-from %s is locked by a running replyreset (serve holds the bbolt file lock while it runs): "+
			"stop the service, then migrate", from)
	case err != nil:
		return migrationSource{}, "", fmt.Errorf("-from %s is not a replyreset data file: %w", from, err)
	}
	sealer, err := enroll.LoadKey(keyPath)
	if err != nil {
		st.Close()
		return migrationSource{}, "", fmt.Errorf("the data file's key (-key): %w", err)
	}
	sum, err := fileSHA256(from)
	if err != nil {
		st.Close()
		return migrationSource{}, "", err
	}
	return migrationSource{store: st, sealer: sealer}, sum, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// export writes the data file's records to a private temporary stream,
// rewound.
func (s migrationSource) export(ctx context.Context) (*os.File, error) {
	f, err := os.CreateTemp("", "replyreset-migrate-*.jsonl") // 0600
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Export(ctx, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// dialEtcd is a client of store.etcd's cluster, for the commands that
// write a prefix before a store opens it (restore, migrate).
func dialEtcd(ctx context.Context, cfg *Config) (*clientv3.Client, error) {
	ec, err := etcdConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := etcd.Dial(ctx, ec)
	if err != nil {
		return nil, fmt.Errorf("store.etcd: %w", err)
	}
	return cli, nil
}

// readMigration reads the prefix's migration marker (nil: none).
func readMigration(ctx context.Context, cli *clientv3.Client, prefix string) (*migration, error) {
	ctx, cancel := context.WithTimeout(ctx, etcdRequestTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+layout.KeyMigration)
	if err != nil {
		return nil, fmt.Errorf("store.etcd: read %s%s: %w", prefix, layout.KeyMigration, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var m migration
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		return nil, fmt.Errorf("store.etcd: %s%s is damaged: %w", prefix, layout.KeyMigration, err)
	}
	return &m, nil
}

// verifyAgain answers a migration of a file already migrated: every
// record of the file (but the TTL ones, which may have ended since) must
// still be in the prefix.
func verifyAgain(ctx context.Context, cli *clientv3.Client, prefix, from string, done *migration, want map[string][sha256.Size]byte, stdout io.Writer) error {
	found, missing, err := etcd.Verify(ctx, cli, prefix, want, true)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s was migrated into etcd prefix %s at %s, but records of it are missing there now: %s (written then: %s)",
			from, prefix, done.Time.Format(time.RFC3339), strings.Join(missing, ", "), done.Written)
	}
	fmt.Fprintf(stdout, "already migrated from %s (sha256 %s) at %s, nothing to do\n", from, done.SHA256, done.Time.Format(time.RFC3339))
	fmt.Fprintf(stdout, "written then: %s\n", done.Written)
	fmt.Fprintf(stdout, "verified: the %d records of %s (TTL ones aside) are in etcd prefix %s\n", found.Total(), from, prefix)
	return nil
}

// resealRecord is the rewrite of a migration: meta/seal_key takes to's
// fingerprint, and the records that hold sealed secrets are re-sealed
// with rs (enroll.Resealer; hashes are copied as they are).
func resealRecord(rs *enroll.Resealer, to *enroll.Sealer) func(layout.Record) (layout.Record, bool, error) {
	return func(rec layout.Record) (layout.Record, bool, error) {
		switch k := rec.Key; {
		case k == layout.KeySealKey:
			rec.Value = []byte(to.Fingerprint())
			return rec, true, nil
		case k == layout.KeyMigration: // the file's own history, not the target's
			return rec, false, nil
		case rs.Same():
			return rec, true, nil
		case strings.HasPrefix(k, layout.Enrollments):
			return rewrite(rec, rs.Enrollment)
		case strings.HasPrefix(k, layout.Activations):
			return rewrite(rec, rs.Activation)
		case strings.HasPrefix(k, layout.Outbox):
			return rewrite(rec, rs.OutboundMessage)
		case strings.HasPrefix(k, layout.MailQueue):
			return rewrite(rec, rs.QueuedMail)
		case strings.HasPrefix(k, layout.APITokenHashes):
			rs.APITokenHash()
		}
		return rec, true, nil
	}
}

// rewrite decodes rec's JSON value as a T, lets fn change it and encodes
// it again.
func rewrite[T any](rec layout.Record, fn func(*T) error) (layout.Record, bool, error) {
	var v T
	if err := json.Unmarshal(rec.Value, &v); err != nil {
		return rec, false, fmt.Errorf("record %s does not decode: %w", rec.Key, err)
	}
	if err := fn(&v); err != nil {
		return rec, false, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return rec, false, fmt.Errorf("encode %s: %w", rec.Key, err)
	}
	rec.Value = b
	return rec, true, nil
}
