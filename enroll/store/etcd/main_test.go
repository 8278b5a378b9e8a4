package etcd_test

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// TestMain stops the shared etcd cluster after the tests (etcdlab.Main).
func TestMain(m *testing.M) { etcdlab.Main(m) }

// cluster returns a client of the shared three-member test cluster and a
// key prefix of t's own.
func cluster(t testing.TB) (*clientv3.Client, string) {
	c := etcdlab.Shared(t)
	return c.Client(t), c.Prefix(t)
}
