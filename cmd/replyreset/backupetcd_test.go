package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// writeEtcdConfig is writeConfig(c) with store.backend etcd on cluster,
// under prefix, sealed with keyFile ("" for data_dir's).
func writeEtcdConfig(t *testing.T, c testConfig, cluster *etcdlab.Cluster, prefix, keyFile string) configFile {
	t.Helper()
	f := writeConfig(t, c)
	appendEtcdStore(t, f, cluster, prefix, keyFile)
	return f
}

// appendEtcdStore adds to f's file store.backend etcd on cluster, under
// prefix, sealed with keyFile ("" for data_dir's).
func appendEtcdStore(t *testing.T, f configFile, cluster *etcdlab.Cluster, prefix, keyFile string) {
	t.Helper()
	eps := make([]string, 0, len(cluster.Endpoints()))
	for _, ep := range cluster.Endpoints() {
		eps = append(eps, q(ep))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "store:\n  backend: etcd\n")
	if keyFile != "" {
		fmt.Fprintf(&b, "  key_file: %s\n", q(keyFile))
	}
	fmt.Fprintf(&b, "  etcd:\n    endpoints: [%s]\n    prefix: %s\n", strings.Join(eps, ", "), q(prefix))
	appendFile(t, f.Path, b.String())
}

// withoutAction is events less those of action.
func withoutAction(events []enroll.Event, action string) []enroll.Event {
	var out []enroll.Event
	for _, ev := range events {
		if ev.Action != action {
			out = append(out, ev)
		}
	}
	return out
}

// TestBackupAndRestoreEtcd (issue 17 item 6): with store.backend etcd,
// backup writes a consistent copy of the prefix (JSON lines) and restore
// loads it into another, empty prefix: the same enrollments and audit
// trail, the restore audited there; a prefix that holds keys is refused,
// naming it and its key count, and nothing is written.
func TestBackupAndRestoreEtcd(t *testing.T) {
	cluster := etcdlab.Shared(t)
	src := writeEtcdConfig(t, offlineConfig(), cluster, cluster.Prefix(t), "")
	keyFile := filepath.Join(src.DataDir, "replyreset.key")
	st, release := openTestStore(t, src) // creates the key file and the store
	now := time.Now().UTC().Truncate(time.Second)
	for i, name := range []string{"adupont", "bmartin", "cnguyen"} {
		e := enroll.Enrollment{Username: name, Phone: fmt.Sprintf("+1201555017%d", i), Language: []string{"en", "fr"}[i%2],
			State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now}
		if err := st.PutEnrollment(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendAudit(t.Context(), enroll.Event{Time: now, Actor: "cli:test", Action: "enroll",
			Username: name, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	release()

	dest := filepath.Join(t.TempDir(), "replyreset-etcd.jsonl")
	r := mustRun(t, "backup", "-config", src.Path, "-o", dest)
	wantContains(t, r, r.stdout, "backup written to "+dest)
	wantContains(t, r, r.stdout, "keys of etcd prefix")
	t.Logf("backup: %s", r.stdout)
	if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v; want mode 0600", err)
	}

	targetPrefix := cluster.Prefix(t)
	dst := writeEtcdConfig(t, offlineConfig(), cluster, targetPrefix, keyFile)
	r = mustRun(t, "restore", "-config", dst.Path, "-i", dest)
	wantContains(t, r, r.stdout, "into etcd prefix "+targetPrefix+" from "+dest)

	if got, want := listEnrollments(t, dst), listEnrollments(t, src); len(want) != 3 || !reflect.DeepEqual(got, want) {
		t.Errorf("restored enrollments:\n%+v\nwant the backed-up ones:\n%+v", got, want)
	}
	got, want := auditEvents(t, dst), auditEvents(t, src)
	if restores := len(got) - len(withoutAction(got, "restore")); restores != 1 {
		t.Errorf("the restored prefix has %d restore events, want 1: %+v", restores, got)
	}
	if g, w := withoutAction(got, "restore"), withoutAction(want, "backup"); len(w) != 3 || !reflect.DeepEqual(g, w) {
		t.Errorf("restored audit trail:\n%+v\nwant the backed-up one:\n%+v", g, w)
	}

	// Into a prefix that holds keys (the one just restored): refused.
	before := auditEvents(t, dst)
	r = runCLI(t, "restore", "-config", dst.Path, "-i", dest)
	wantCode(t, r, 1)
	t.Logf("refused: %s", r.stderr)
	wantContains(t, r, r.stderr, targetPrefix+" holds ")
	wantContains(t, r, r.stderr, "nothing was restored")
	wantContains(t, r, r.stderr, "etcdctl del --prefix "+targetPrefix)
	if after := auditEvents(t, dst); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused restore changed the audit trail: %+v, was %+v", after, before)
	}
}
