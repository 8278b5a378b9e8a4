package etcd

import (
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// pageSize is how many keys one range request reads: a listing never loads
// a whole prefix in one response.
const pageSize = 500

// scan calls fn with the keys (relative to the store's prefix) and values
// under prefix, in key order (descending with desc), at the tx's snapshot,
// one page at a time, until fn returns false or an error. from, when not
// empty, is where an ascending scan starts (inclusive) or a descending one
// ends below (exclusive). The keys read are not compared at commit: a scan
// in an update must recheck (tx.get) each key it writes.
func (t *tx) scan(prefix, from string, desc bool, fn func(key string, kv *mvccpb.KeyValue) (bool, error)) error {
	full := t.s.prefix + prefix
	lo, hi := full, clientv3.GetPrefixRangeEnd(full)
	if from != "" {
		if desc {
			hi = t.s.prefix + from
		} else {
			lo = t.s.prefix + from
		}
	}
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(hi), clientv3.WithLimit(pageSize)}
		if desc {
			opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
		}
		if t.rev != 0 {
			opts = append(opts, clientv3.WithRev(t.rev))
		}
		resp, err := t.s.kvGet(t.ctx, lo, opts...)
		if err != nil {
			return err
		}
		if t.rev == 0 {
			t.rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := t.ctx.Err(); err != nil {
				return err
			}
			more, err := fn(strings.TrimPrefix(string(kv.Key), t.s.prefix), kv)
			if err != nil || !more {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		last := string(resp.Kvs[len(resp.Kvs)-1].Key)
		if desc {
			hi = last
		} else {
			lo = last + "\x00"
		}
	}
}
