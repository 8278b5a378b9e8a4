package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/jobs/election"
)

// sealKeyTimeout bounds recording or reading the sealing key's fingerprint
// at start.
const sealKeyTimeout = 10 * time.Second

// backend is an opened store and the leader election that goes with it.
type backend struct {
	Store enroll.Store
	// Leader elects the node that runs the jobs: the node itself with
	// bolt (one process holds the data file), an etcd election with etcd.
	Leader jobs.Leader
	// Close closes the store (and the client it runs on).
	Close func()
}

// openStore opens the store store.backend names, with its leader. It is
// the one place a backend is chosen.
func openStore(ctx context.Context, cfg *Config) (backend, error) {
	switch cfg.Store.Backend {
	case backendEtcd:
		return openEtcd(ctx, cfg)
	case backendBolt, "":
		s, err := bolt.Open(dataFile(cfg))
		if err != nil {
			return backend{}, err
		}
		return backend{Store: s, Leader: jobs.NewSingleNode(""), Close: func() { s.Close() }}, nil
	}
	return backend{}, fmt.Errorf("store.backend: %q is neither bolt nor etcd", cfg.Store.Backend)
}

// openEtcd connects to the cluster of store.etcd and opens the store under
// its prefix, with the etcd election of that prefix as the leader.
func openEtcd(ctx context.Context, cfg *Config) (backend, error) {
	ec, err := etcdConfig(cfg)
	if err != nil {
		return backend{}, err
	}
	s, err := etcd.Open(ctx, ec)
	if err != nil {
		return backend{}, fmt.Errorf("store.etcd: %w", err)
	}
	l, err := election.New(election.Config{Client: s.Client(), Prefix: s.Prefix(), Log: slog.Default()})
	if err != nil {
		s.Close()
		return backend{}, fmt.Errorf("store.etcd: %w", err)
	}
	return backend{Store: s, Leader: l, Close: func() { s.Close() }}, nil
}

// etcdConfig is the etcd store configuration of store.etcd.
func etcdConfig(cfg *Config) (etcd.Config, error) {
	e := cfg.Store.Etcd
	tc, err := e.TLSConfig()
	if err != nil {
		return etcd.Config{}, err
	}
	return etcd.Config{Endpoints: e.Endpoints, Prefix: e.Prefix, TLS: tc, Username: e.Username,
		Password: e.Password, DialTimeout: e.DialTimeout, Log: slog.Default()}, nil
}

// openSealedStore opens the store (openStore) and the sealing key of
// store.key_file, creating the key file (0600) when it is missing, and
// checks that the store's secrets are sealed with that key: the store
// records the key's fingerprint the first time (a new store, or a data
// file from before fingerprints), and a key whose fingerprint is not the
// recorded one is refused, with both fingerprints and the key file named,
// before anything is written. A key file created by this call is removed
// again when it is refused.
func openSealedStore(ctx context.Context, cfg *Config) (backend, *enroll.Sealer, error) {
	b, err := openStore(ctx, cfg)
	if err != nil {
		return backend{}, nil, err
	}
	path := cfg.keyFile()
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	sealer, err := enroll.LoadOrCreateKey(path)
	if err != nil {
		b.Close()
		return backend{}, nil, fmt.Errorf("store.key_file: %w", err)
	}
	if err := checkSealKey(ctx, b.Store, sealer, path); err != nil {
		b.Close()
		if created {
			os.Remove(path) // a key made just now that the store refuses
		}
		return backend{}, nil, err
	}
	return b, sealer, nil
}

// checkSealKey records sealer's fingerprint in store when it has none and
// fails when the store names another key.
func checkSealKey(ctx context.Context, store enroll.SealKeyStore, sealer *enroll.Sealer, path string) error {
	ctx, cancel := context.WithTimeout(ctx, sealKeyTimeout)
	defer cancel()
	mine := sealer.Fingerprint()
	recorded, err := store.SealKey(ctx, mine)
	if err != nil {
		return fmt.Errorf("store.key_file: %w", err)
	}
	if recorded != mine {
		return fmt.Errorf("store.key_file: %s is not the key the store's secrets are sealed with: "+
			"its fingerprint is %s, the store's is %s; start every node with the same key file (copy it from a node that runs), "+
			"or restore the key file that goes with this data", path, mine, recorded)
	}
	return nil
}

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
