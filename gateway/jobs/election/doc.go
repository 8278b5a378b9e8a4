// Package election is the jobs.Leader of a cluster: the nodes elect one
// leader through etcd (go.etcd.io/etcd/client/v3/concurrency), and each
// term's election key fences the leader's writes.
package election
