// Package record holds the logic of stored records that every store
// backend shares (sliding windows, guard blocks), so that bbolt and etcd
// differ only in how they encode and commit a record, never in what a
// record means.
package record
