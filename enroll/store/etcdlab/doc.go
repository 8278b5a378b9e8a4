// Package etcdlab is the project's real-etcd test harness: it runs etcd
// server v3.6.16 clusters of three members on 127.0.0.1 (one shared cluster
// per test process, private ones for fault tests) and offers the faults the
// tests need (kill, pause, restart a member), TLS and authentication.
//
// It is imported only by _test.go files and the bench program, never by
// product code. The server binary is not in the module: it is built once per
// machine from the Go module proxy into a cache outside the repository
// (Binary; `make etcd`, which `make test` runs before the tests, because the
// test binaries run in a network namespace where the proxy is unreachable).
//
// Failure policy, as in directory/ldaplab: with REPLYRESET_INTEGRATION=1 or
// CI set, a cluster that cannot start fails the test with the reason and the
// end of the member's log. Otherwise no server is started: the tests skip
// through ldaplab.Skip, and Main, the TestMain of packages using the lab,
// prints one line naming them and how to run them.
package etcdlab
