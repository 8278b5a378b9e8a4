package etcdlab_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// memberClient is a client of member m alone.
func memberClient(t *testing.T, c *etcdlab.Cluster, m *etcdlab.Member) *clientv3.Client {
	t.Helper()
	cfg := c.Config()
	cfg.Endpoints = []string{m.ClientURL}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// The shared cluster serves a write through one member and a linearizable
// read of it through every member.
func TestSharedClusterServesEveryMember(t *testing.T) {
	c := etcdlab.Shared(t)
	if got := len(c.Endpoints()); got != 3 {
		t.Fatalf("%d endpoints, want 3", got)
	}
	prefix := c.Prefix(t)
	if prefix == c.Prefix(t) {
		t.Fatalf("two calls of Prefix gave the same %q", prefix)
	}
	key := prefix + "k"
	if _, err := c.Client(t).Put(ctxT(t, 10*time.Second), key, "v"); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members() {
		resp, err := memberClient(t, c, m).Get(ctxT(t, 10*time.Second), key)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
			t.Fatalf("%s: got %v, want v", m.Name, resp.Kvs)
		}
	}
}
