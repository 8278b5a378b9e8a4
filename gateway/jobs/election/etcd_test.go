package election_test

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// The tests run on the shared real etcd cluster of enroll/store/etcdlab
// (three members on loopback), each under a prefix of its own; the fault
// tests start a private one.

func TestMain(m *testing.M) { etcdlab.Main(m) }

// clientConfig is a client configuration of the shared cluster.
func clientConfig(t testing.TB) clientv3.Config {
	t.Helper()
	return etcdlab.Shared(t).Config()
}

// newClient is a client of its own (a node), closed when the test ends.
func newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	return etcdlab.Shared(t).Client(t)
}

// prefix is a key prefix no other test uses.
func prefix(t testing.TB) string {
	t.Helper()
	return etcdlab.Shared(t).Prefix(t)
}
