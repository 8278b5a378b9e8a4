package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/enroll/store/layout"
	"github.com/replyreset/replyreset/enroll/store/layout/layouttest"
)

// migrationSource is a bbolt data file filled with the layouttest
// fixture (a record of every kind through the store's API), with its
// key file next to it, as a stopped serve leaves them.
type migrationSourceFile struct {
	path, keyFile string
	sealer        *enroll.Sealer
	fx            *layouttest.Fixture
}

func newMigrationSource(t *testing.T) migrationSourceFile {
	t.Helper()
	dir := t.TempDir()
	src := migrationSourceFile{path: filepath.Join(dir, "replyreset.db"), keyFile: filepath.Join(dir, "replyreset.key")}
	var err error
	if src.sealer, err = enroll.LoadOrCreateKey(src.keyFile); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(src.path)
	if err != nil {
		t.Fatal(err)
	}
	// A minute ago: the fixture's one-second message mark has ended by
	// the time it is migrated, the others run for an hour or more.
	src.fx = layouttest.Fill(t, s, src.sealer, time.Now().Add(-time.Minute).Truncate(time.Millisecond))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return src
}

// etcdTarget is an etcd configuration on a prefix of the shared cluster
// of t's own, sealed with keyFile ("" for its data_dir's), and a client.
func etcdTarget(t *testing.T, keyFile string) (configFile, string, *clientv3.Client) {
	t.Helper()
	cluster := etcdlab.Shared(t)
	prefix := cluster.Prefix(t)
	return writeEtcdConfig(t, offlineConfig(), cluster, prefix, keyFile), prefix, cluster.Client(t)
}

// prefixKVs is every key under prefix (relative) with its value.
func prefixKVs(t *testing.T, cli *clientv3.Client, prefix string) map[string]string {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	kvs := map[string]string{}
	for _, kv := range resp.Kvs {
		kvs[strings.TrimPrefix(string(kv.Key), prefix)] = string(kv.Value)
	}
	return kvs
}

// checkTarget opens the migrated store as serve does and reads the
// fixture back through its API, secrets opening with sealer.
func checkTarget(t *testing.T, dst configFile, src migrationSourceFile, sealer *enroll.Sealer) {
	t.Helper()
	st, release := openTestStore(t, dst)
	defer release()
	src.fx.Check(t, st, sealer)
}

// wantMigrated checks the report of a first migration: counts of every
// kind read and written, the ended mark left out, all verified.
func wantMigrated(t *testing.T, r cliResult, src migrationSourceFile, prefix string) {
	t.Helper()
	wantContains(t, r, r.stdout, "read from "+src.path+" (sha256 ", "written into etcd prefix "+prefix+": ",
		"not copied, their TTL had ended: messages 1", "verified: ")
	for _, k := range layouttest.Kinds {
		wantContains(t, r, r.stdout, " "+k+" ")
	}
	if strings.Contains(r.stdout, "leases") {
		t.Errorf("the job lease was counted as copied:\n%v", r)
	}
}

// TestMigrateCopiesEveryRecord (issue 17 item 6): `replyreset migrate
// -from DATAFILE` copies a data file holding a record of every kind into
// the configured etcd prefix; the counts of each kind read and written
// are printed and verified, and every record reads back through the etcd
// store's API as the bbolt store had it (same key file: nothing
// re-sealed); the migration is audited there, and the source file is
// left byte for byte as it was.
func TestMigrateCopiesEveryRecord(t *testing.T) {
	src := newMigrationSource(t)
	before, err := os.ReadFile(src.path)
	if err != nil {
		t.Fatal(err)
	}
	dst, prefix, cli := etcdTarget(t, src.keyFile)
	r := mustRun(t, "migrate", "-from", src.path, "-config", dst.Path) // flags after the arguments
	t.Logf("migrate:\n%s%s", r.stdout, r.stderr)
	wantMigrated(t, r, src, prefix)
	wantContains(t, r, r.stdout, "nothing to re-seal")
	if after, _ := os.ReadFile(src.path); !bytes.Equal(after, before) {
		t.Error("migrate changed the source data file")
	}
	kvs := prefixKVs(t, cli, prefix)
	for k := range kvs {
		if layout.Live(k) {
			t.Errorf("the live key %s was copied", k)
		}
	}
	if _, ok := kvs[layout.KeyMigration]; !ok {
		t.Errorf("no %s marker after the migration", layout.KeyMigration)
	}
	wantLeases(t, cli, prefix)
	events := auditEvents(t, dst)
	if last := events[len(events)-1]; last.Action != "migrate" || !strings.Contains(last.Detail, src.path) {
		t.Errorf("the last audit event is %+v, want the migration's", last)
	}
	checkTarget(t, dst, src, src.sealer)
}

// TestMigrateReseals: with store.key_file another key than the data
// file's, every sealed secret is opened with the old key and sealed with
// the new one (the pending code's hash recomputed), the target records
// the new key's fingerprint, and neither the old fingerprint nor a
// secret the old key opens is anywhere under the prefix; the keyed
// hashes that cannot move (activation links, API tokens) are reported.
func TestMigrateReseals(t *testing.T) {
	src := newMigrationSource(t)
	newKey := filepath.Join(t.TempDir(), "etcd.key")
	to, err := enroll.LoadOrCreateKey(newKey)
	if err != nil {
		t.Fatal(err)
	}
	dst, prefix, cli := etcdTarget(t, newKey)
	r := mustRun(t, "migrate", "-config", dst.Path, "-from", src.path, "-key", src.keyFile)
	t.Logf("migrate:\n%s%s", r.stdout, r.stderr)
	wantMigrated(t, r, src, prefix)
	wantContains(t, r, r.stdout, "re-sealed with "+newKey+" (key fingerprint "+to.Fingerprint()+")")
	wantContains(t, r, r.stderr, "were issued under the old key")
	checkTarget(t, dst, src, to)

	kvs := prefixKVs(t, cli, prefix)
	if got := kvs[layout.KeySealKey]; got != to.Fingerprint() {
		t.Errorf("%s = %q, want the new key's %s", layout.KeySealKey, got, to.Fingerprint())
	}
	for k, v := range kvs {
		if strings.Contains(v, src.sealer.Fingerprint()) {
			t.Errorf("%s holds the old key's fingerprint", k)
		}
	}
	e, err := readEnrollment(t, dst, "adupont")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.sealer.Open(e.TOTPSealed, "totp:adupont"); err == nil {
		t.Error("the old key still opens the migrated TOTP secret")
	}
}

func readEnrollment(t *testing.T, f configFile, username string) (enroll.Enrollment, error) {
	t.Helper()
	st, release := openTestStore(t, f)
	defer release()
	return st.Enrollment(t.Context(), username)
}

// TestMigrateIsIdempotent: migrating the same file again finds the
// migration marker, verifies that the file's records are all there and
// writes nothing ("already migrated from ..., nothing to do").
func TestMigrateIsIdempotent(t *testing.T) {
	src := newMigrationSource(t)
	dst, prefix, cli := etcdTarget(t, src.keyFile)
	mustRun(t, "migrate", "-config", dst.Path, "-from", src.path)
	before := prefixKVs(t, cli, prefix)
	rev := prefixRevision(t, cli, prefix)

	r := mustRun(t, "migrate", "-from", src.path, "-config", dst.Path)
	t.Logf("again:\n%s", r.stdout)
	wantContains(t, r, r.stdout, "already migrated from "+src.path+" (sha256 ", "nothing to do", "written then: ",
		"verified: the ", "are in etcd prefix "+prefix)
	if after := prefixKVs(t, cli, prefix); len(after) != len(before) || prefixRevision(t, cli, prefix) != rev {
		t.Errorf("the second migration wrote: %d keys at revision %d, were %d at %d", len(after), prefixRevision(t, cli, prefix), len(before), rev)
	}
	checkTarget(t, dst, src, src.sealer)
}

// prefixRevision is the highest ModRevision under prefix.
func prefixRevision(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var rev int64
	for _, kv := range resp.Kvs {
		rev = max(rev, kv.ModRevision)
	}
	return rev
}

// TestMigrateRefusesANonEmptyTarget: a prefix that holds records is
// refused, naming it and its key count, and nothing is written; with
// -force its records are replaced by the file's, and the live keys
// (leases/, leader/) are left exactly as they were.
func TestMigrateRefusesANonEmptyTarget(t *testing.T) {
	src := newMigrationSource(t)
	dst, prefix, cli := etcdTarget(t, src.keyFile)
	st, release := openTestStore(t, dst)
	now := time.Now()
	if err := st.PutEnrollment(t.Context(), enroll.Enrollment{Username: "zother", Phone: "+12015550188", Language: "en",
		State: enroll.StateActive, Method: "sms", CreatedAt: now, UpdatedAt: now, VerifiedAt: now}); err != nil {
		t.Fatal(err)
	}
	release()
	for _, k := range []string{"leader/694d9ab1e7c3", "leases/outbox"} {
		if _, err := cli.Put(t.Context(), prefix+k, "a running node's"); err != nil {
			t.Fatal(err)
		}
	}
	before := prefixKVs(t, cli, prefix)

	r := runCLI(t, "migrate", "-config", dst.Path, "-from", src.path)
	wantCode(t, r, 1)
	t.Logf("refused: %s", r.stderr)
	wantContains(t, r, r.stderr, prefix+" holds ", " keys; nothing was migrated", "-force")
	if after := prefixKVs(t, cli, prefix); len(after) != len(before) {
		t.Errorf("a refused migration changed the prefix: %d keys, were %d", len(after), len(before))
	}

	live := map[string]int64{}
	resp, err := cli.Get(t.Context(), prefix+"lea", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		live[string(kv.Key)] = kv.ModRevision
	}
	r = mustRun(t, "migrate", "-config", dst.Path, "-from", src.path, "-force")
	t.Logf("forced:\n%s", r.stdout)
	wantMigrated(t, r, src, prefix)
	resp, err = cli.Get(t.Context(), prefix+"lea", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != len(live) || len(live) != 2 {
		t.Errorf("after -force %d live keys, want the 2 there before", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		if live[string(kv.Key)] != kv.ModRevision {
			t.Errorf("-force touched %s", kv.Key)
		}
	}
	if _, err := readEnrollment(t, dst, "zother"); err == nil {
		t.Error("-force kept a record the data file does not have")
	}
	checkTarget(t, dst, src, src.sealer)
}

// TestMigrateRefusesABadSource: a missing file, a file that is not a
// bbolt data file, a file a running store holds and a key that is not
// the file's are each refused with their own clear error, and nothing
// is written to the prefix, nor store.key_file created.
func TestMigrateRefusesABadSource(t *testing.T) {
	src := newMigrationSource(t)
	dst, prefix, cli := etcdTarget(t, "") // data_dir/replyreset.key, not there yet
	junk := filepath.Join(t.TempDir(), "notes.db")
	writeFile(t, junk, strings.Repeat("not a bbolt file\n", 500))
	otherKey := filepath.Join(t.TempDir(), "other.key")
	if _, err := enroll.LoadOrCreateKey(otherKey); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "replyreset.db")
	cases := []struct {
		name  string
		flags []string
		want  string
		hold  bool
	}{
		{"missing", []string{"-from", missing}, "-from " + missing + ": there is no such data file", false},
		{"not bbolt", []string{"-from", junk, "-key", src.keyFile}, "-from " + junk + " is not a replyreset data file: ", false},
		{"locked", []string{"-from", src.path}, "-from " + src.path + " is locked by a running replyreset (serve holds the bbolt file lock", true},
		{"wrong key", []string{"-from", src.path, "-key", otherKey}, "-key " + otherKey + " is not the key of this data file", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hold {
				held, err := bolt.Open(src.path)
				if err != nil {
					t.Fatal(err)
				}
				defer held.Close()
			}
			r := runCLI(t, append([]string{"migrate", "-config", dst.Path}, tc.flags...)...)
			wantCode(t, r, 1)
			t.Logf("%s: %s", tc.name, r.stderr)
			wantContains(t, r, r.stderr, tc.want)
			if kvs := prefixKVs(t, cli, prefix); len(kvs) != 0 {
				t.Errorf("a refused migration wrote %d keys under %s", len(kvs), prefix)
			}
			if _, err := os.Stat(filepath.Join(dst.DataDir, "replyreset.key")); err == nil {
				t.Error("a refused migration created store.key_file")
			}
		})
	}
	// The good file then migrates, and store.key_file is created for it.
	r := mustRun(t, "migrate", "-config", dst.Path, "-from", src.path)
	keyFile := filepath.Join(dst.DataDir, "replyreset.key")
	wantContains(t, r, r.stdout, "created the key file "+keyFile)
	to, err := enroll.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, r, r.stdout, "re-sealed with "+keyFile+" (key fingerprint "+to.Fingerprint()+")")
	checkTarget(t, dst, src, to)
}

// wantLeases checks that the migrated TTL records (dedupe marks,
// rate-limit windows, guard blocks, sessions) are on etcd leases that
// outlive their remaining life, and the other records on none.
func wantLeases(t *testing.T, cli *clientv3.Client, prefix string) {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), prefix)
		exp, ttl := layout.Expiry(k, kv.Value)
		if !ttl {
			if kv.Lease != 0 {
				t.Errorf("%s is on lease %x, its kind has no TTL", k, kv.Lease)
			}
			continue
		}
		l, err := cli.TimeToLive(t.Context(), clientv3.LeaseID(kv.Lease))
		if err != nil || kv.Lease == 0 {
			t.Errorf("%s: lease %x, %v; want a TTL lease", k, kv.Lease, err)
			continue
		}
		if left := time.Until(time.Unix(0, exp)); time.Duration(l.TTL)*time.Second < left {
			t.Errorf("%s: its lease has %ds left, the record %s", k, l.TTL, left)
		}
	}
}
