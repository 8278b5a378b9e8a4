package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/jobs"
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
func openStore(_ context.Context, cfg *Config) (backend, error) {
	switch cfg.Store.Backend {
	case backendEtcd:
		// The etcd store plugs in here: a client from etcdClientConfig(cfg),
		// the store on it, and election.New(election.Config{Client: cli,
		// Prefix: cfg.Store.Etcd.Prefix}) as the Leader.
		return backend{}, errors.New("store.backend: etcd: this build cannot open an etcd store yet; use bolt")
	case backendBolt, "":
		s, err := bolt.Open(dataFile(cfg))
		if err != nil {
			return backend{}, err
		}
		return backend{Store: s, Leader: jobs.NewSingleNode(""), Close: func() { s.Close() }}, nil
	}
	return backend{}, fmt.Errorf("store.backend: %q is neither bolt nor etcd", cfg.Store.Backend)
}

// etcdClientConfig is the etcd client configuration of store.etcd.
func etcdClientConfig(cfg *Config) (clientv3.Config, error) {
	e := cfg.Store.Etcd
	tc, err := e.TLSConfig()
	if err != nil {
		return clientv3.Config{}, err
	}
	return clientv3.Config{Endpoints: e.Endpoints, DialTimeout: e.DialTimeout, TLS: tc,
		Username: e.Username, Password: e.Password}, nil
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
