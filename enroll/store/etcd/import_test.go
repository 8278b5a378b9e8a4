package etcd_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/layout"
	"github.com/replyreset/replyreset/enroll/store/layout/layouttest"
)

// TestImport: a layout stream goes into a prefix a fresh store opened
// (meta/schema only) in transactions under etcd's request limit (values
// of 200 KiB and one of 1.2 MiB, more keys than one transaction takes),
// TTL records on leases of their remaining life and ended ones counted,
// never the live keys; Verify reads them all back. A second import is
// refused naming the prefix and its key count, and with Replace it
// replaces the records but leaves the live keys as they were.
func TestImport(t *testing.T) {
	cli, prefix := cluster(t)
	ctx := t.Context()
	s, err := etcd.New(ctx, cli, etcd.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	now := time.Now()
	var recs []layout.Record
	add := func(k string, v []byte) { recs = append(recs, layout.NewRecord(k, v)) }
	add(layout.KeySchema, []byte(layout.SchemaVersion))
	for i := range 12 {
		add(fmt.Sprintf("%sbig-%02d", layout.Monitor, i), bytes.Repeat([]byte{'a' + byte(i)}, 200<<10))
	}
	add(layout.Monitor+"huge", bytes.Repeat([]byte{'z'}, 1200<<10))
	for i := range 250 {
		add(fmt.Sprintf("%s+1201555%04d", layout.OptOut, i), layout.NanoValue(now.UnixNano()))
	}
	add(layout.Messages+"SMlive", layout.NanoValue(now.Add(time.Hour).UnixNano()))
	add(layout.Messages+"SMdead", layout.NanoValue(now.Add(-time.Second).UnixNano()))
	add(layout.Leases+"outbox", []byte(`{"holder":"elsewhere"}`))
	add(layout.Leader+"694d9ab1e7c3", []byte("node-1"))
	stream, counts := layouttest.Stream(t, recs)

	res, err := etcd.Import(ctx, cli, prefix, bytes.NewReader(stream), etcd.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read %s; written %s; expired %s; skipped %s", res.Read, res.Written, res.Expired, res.Skipped)
	want := layout.Counts{"monitor": 13, "optout": 250, "messages": 1}
	if !res.Written.Equal(want) || !res.Expired.Equal(layout.Counts{"messages": 1}) ||
		!res.Skipped.Equal(layout.Counts{"leases": 1, "leader": 1}) || !res.Read.Equal(counts) {
		t.Errorf("written %s (want %s), expired %s, skipped %s, read %s", res.Written, want, res.Expired, res.Skipped, res.Read)
	}
	found, bad, err := etcd.Verify(ctx, cli, prefix, res.Values, false)
	if err != nil || !found.Equal(want) || len(bad) != 0 {
		t.Errorf("Verify = %s, %v, %v; want %s", found, bad, err, want)
	}
	for _, k := range []string{layout.Leases + "outbox", layout.Leader + "694d9ab1e7c3", layout.Messages + "SMdead"} {
		if resp, err := cli.Get(ctx, prefix+k); err != nil || len(resp.Kvs) != 0 {
			t.Errorf("%s was written (%v)", k, err)
		}
	}
	resp, err := cli.Get(ctx, prefix+layout.Messages+"SMlive")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("the live mark: %v, %v; want it on a lease", resp, err)
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil || time.Duration(ttl.TTL)*time.Second < 59*time.Minute {
		t.Errorf("the live mark's lease: %+v, %v; want an hour or more", ttl, err)
	}

	// Again: refused, nothing written.
	_, err = etcd.Import(ctx, cli, prefix, bytes.NewReader(stream), etcd.ImportOptions{})
	if !errors.Is(err, etcd.ErrNotEmpty) || !strings.Contains(err.Error(), prefix+" holds 265 keys") {
		t.Errorf("a second import = %v, want ErrNotEmpty naming %s and its 265 keys", err, prefix)
	}
	// Replace: the records go, the live keys stay.
	if _, err := cli.Put(ctx, prefix+layout.Leader+"abc", "running"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+layout.Enrollments+"zother", "{}"); err != nil {
		t.Fatal(err)
	}
	res, err = etcd.Import(ctx, cli, prefix, bytes.NewReader(stream), etcd.ImportOptions{Replace: true})
	if err != nil || !res.Written.Equal(want) {
		t.Fatalf("Import with Replace = %s, %v", res.Written, err)
	}
	if resp, err := cli.Get(ctx, prefix+layout.Leader+"abc"); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("Replace deleted the leader key (%v)", err)
	}
	if resp, err := cli.Get(ctx, prefix+layout.Enrollments, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Errorf("Replace kept a record the stream does not have (%v)", err)
	}
	if _, err := etcd.New(ctx, cli, etcd.Options{Prefix: prefix}); err != nil {
		t.Errorf("the imported prefix does not open: %v", err)
	}
}
