package etcd_test

import (
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// cluster is a stand-in until etcdlab lands: the etcd started by hand on
// 127.0.0.1:23790.
func cluster(t testing.TB) (*clientv3.Client, string) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:23790"}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, fmt.Sprintf("/test/%d/", time.Now().UnixNano())
}
