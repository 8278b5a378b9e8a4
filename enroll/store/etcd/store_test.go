package etcd_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/storetest"
)

// suite runs the conformance suite on prefixes of one cluster: each
// directory the suite hands out names its own prefix under base.
type suite struct {
	cli  *clientv3.Client
	base string
}

func (s suite) prefix(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return s.base + hex.EncodeToString(sum[:8]) + "/"
}

func (s suite) open(t *testing.T, dir string) enroll.Store {
	t.Helper()
	st, err := etcd.New(t.Context(), s.cli, etcd.Options{Prefix: s.prefix(dir)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (s suite) restore(t *testing.T, dir string, backup []byte) {
	t.Helper()
	if _, err := etcd.Restore(t.Context(), s.cli, s.prefix(dir), bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
}

func TestEtcdStoreConformance(t *testing.T) {
	cli, base := cluster(t)
	s := suite{cli: cli, base: base}
	storetest.Run(t, s.open, s.restore)
}
