package etcdlab

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// enableAuth adds the root user with a random password, gives it the root
// role and turns authentication on (Options.Auth).
func (c *Cluster) enableAuth() error {
	cfg := c.Config() // no credentials yet
	cli, err := clientv3.New(cfg)
	if err != nil {
		return fmt.Errorf("etcdlab: enable auth: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	password := rand.Text()
	if _, err := cli.UserAdd(ctx, "root", password); err != nil {
		return fmt.Errorf("etcdlab: enable auth: add user root: %w", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		return fmt.Errorf("etcdlab: enable auth: grant root role: %w", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcdlab: enable auth: %w", err)
	}
	c.Username, c.Password = "root", password
	return nil
}
