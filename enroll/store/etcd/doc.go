// Package etcd is the enroll.Store kept under one key prefix of an etcd cluster, shared by every node of a highly available deployment.
package etcd
