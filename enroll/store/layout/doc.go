// Package layout is the backend-neutral layout of a ReplyReset store: one
// key per record, named by a kind prefix (the etcd store's keys under its
// prefix, enroll/store/etcd/keys.go), and the JSON-lines stream that
// carries them between stores: a header line (format, source, the count of
// records of each kind), then one record per line with its TTL expiry when
// it has one. The etcd store's backup and restore, the bbolt store's
// export and the migration from bbolt to etcd all write and read this one
// stream, through Writer and Read.
package layout
