package election_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd these tests run against. Until enroll/store/etcdlab lands this
// is the one named by REPLYRESET_TEST_ETCD (a client URL); without it the
// tests fail: they need a real etcd.
func endpoints(t testing.TB) []string {
	t.Helper()
	ep := os.Getenv("REPLYRESET_TEST_ETCD")
	if ep == "" {
		t.Fatal("REPLYRESET_TEST_ETCD is not set: these tests need a real etcd (a client URL)")
	}
	return strings.Split(ep, ",")
}

// newClient is a client of its own (a node), closed when the test ends.
func newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(t), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// prefix is a key prefix no other test uses.
func prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "/test-election/" + hex.EncodeToString(b) + "/"
}
