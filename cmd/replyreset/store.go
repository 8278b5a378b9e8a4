package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// sealKeyTimeout bounds recording or reading the sealing key's fingerprint
// at start.
const sealKeyTimeout = 10 * time.Second

// openStore opens the store store.backend names and returns it with the
// function that closes it. It is the one place a backend is chosen.
func openStore(_ context.Context, cfg *Config) (enroll.Store, func(), error) {
	switch cfg.Store.Backend {
	case backendEtcd:
		return nil, nil, errors.New("store.backend: etcd: this build cannot open an etcd store yet; use bolt")
	case backendBolt, "":
		s, err := bolt.Open(dataFile(cfg))
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
	return nil, nil, fmt.Errorf("store.backend: %q is neither bolt nor etcd", cfg.Store.Backend)
}

// openSealedStore opens the store (openStore) and the sealing key of
// store.key_file, creating the key file (0600) when it is missing, and
// checks that the store's secrets are sealed with that key: the store
// records the key's fingerprint the first time (a new store, or a data
// file from before fingerprints), and a key whose fingerprint is not the
// recorded one is refused, with both fingerprints and the key file named,
// before anything is written. A key file created by this call is removed
// again when it is refused.
func openSealedStore(ctx context.Context, cfg *Config) (enroll.Store, *enroll.Sealer, func(), error) {
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	path := cfg.keyFile()
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	sealer, err := enroll.LoadOrCreateKey(path)
	if err != nil {
		closeStore()
		return nil, nil, nil, fmt.Errorf("store.key_file: %w", err)
	}
	if err := checkSealKey(ctx, store, sealer, path); err != nil {
		closeStore()
		if created {
			os.Remove(path) // a key made just now that the store refuses
		}
		return nil, nil, nil, err
	}
	return store, sealer, closeStore, nil
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
