// Package bolt is the enroll.Store kept in one bbolt data file on the
// local disk: the only package that imports go.etcd.io/bbolt.
package bolt
