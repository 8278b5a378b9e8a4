// Package ldaplab is the project's integration-test harness: it runs a real
// Samba AD DC and a real OpenLDAP slapd with ppolicy on 127.0.0.1, once per
// test process, and offers the fixtures tests need (users, binds, lockouts).
//
// It is imported only by _test.go files and the bench program, never by
// product code. Each server is started at most once per process (Samba,
// OpenLDAP) and stopped by StopAll, which every TestMain calls after m.Run.
// Servers also die with the test process (process group, parent-death
// signal, and Samba's --maximum-runtime as a last resort).
//
// Samba's LDAP ports are fixed (389/636/3268/3269), so each test binary must
// run in its own network namespace: `make test` runs
// `go test -exec scripts/netns-exec.sh`. Samba provisioning (about 10 s) is
// done once per machine into a cache directory ($REPLYRESET_LAB_CACHE, or
// replyreset-lab-cache under os.TempDir()) guarded by a file lock; each
// process restores its own copy of that template in about 0.1 s.
//
// Failure policy: with REPLYRESET_INTEGRATION=1 (set by `make test`) or CI
// set, a server that cannot start is a test failure with the precise reason.
// Otherwise (a plain `go test ./...`) no server is started: the tests that
// need one skip, and Main, every such package's TestMain, prints after the
// run one line naming them and how to run them; nothing is skipped silently.
package ldaplab
