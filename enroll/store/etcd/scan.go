package etcd

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
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
	return t.pages(lo, hi, desc, nil, fn)
}

// keyRange is the keys from lo (inclusive) to hi (exclusive), relative to
// the store's prefix.
type keyRange struct{ lo, hi string }

// scanRanges calls fn with the keys and values of each range in turn, in
// ascending key order, at the tx's snapshot, until fn returns false (which
// ends that range) or an error (which ends all). The first page of every
// range comes in one read-only transaction: one linearizable read at one
// revision, where a scan per range would make one each. A range with more
// than a page is paged on at that revision, as scan does.
func (t *tx) scanRanges(rs []keyRange, fn func(i int, key string, kv *mvccpb.KeyValue) (bool, error)) error {
	ops := make([]clientv3.Op, len(rs))
	for i, r := range rs {
		ops[i] = clientv3.OpGet(t.s.prefix+r.lo, t.rangeOpts(t.s.prefix+r.hi, false)...)
	}
	resp, err := retried(t.s, t.ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return t.s.cli.Txn(ctx).Then(ops...).Commit()
	})
	if err != nil {
		return err
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	for i, r := range rs {
		first := resp.Responses[i].GetResponseRange()
		if first == nil {
			return fmt.Errorf("etcd answered range %d of %d with no range response", i+1, len(rs))
		}
		err := t.pages(t.s.prefix+r.lo, t.s.prefix+r.hi, false, first,
			func(k string, kv *mvccpb.KeyValue) (bool, error) { return fn(i, k, kv) })
		if err != nil {
			return err
		}
	}
	return nil
}

// rangeOpts are the options of one page of keys up to hi (absolute).
func (t *tx) rangeOpts(hi string, desc bool) []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithRange(hi), clientv3.WithLimit(pageSize)}
	if desc {
		opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	}
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	return opts
}

// pages calls fn with the keys in [lo, hi) (absolute), a page at a time:
// first, when not nil, is the first page, already read; the others are
// read here.
func (t *tx) pages(lo, hi string, desc bool, first *etcdserverpb.RangeResponse, fn func(key string, kv *mvccpb.KeyValue) (bool, error)) error {
	for {
		page := first
		first = nil
		if page == nil {
			resp, err := t.s.kvGet(t.ctx, lo, t.rangeOpts(hi, desc)...)
			if err != nil {
				return err
			}
			if t.rev == 0 {
				t.rev = resp.Header.Revision
			}
			page = (*etcdserverpb.RangeResponse)(resp)
		}
		kvs, more := page.Kvs, page.More
		for _, kv := range kvs {
			if err := t.ctx.Err(); err != nil {
				return err
			}
			goOn, err := fn(strings.TrimPrefix(string(kv.Key), t.s.prefix), kv)
			if err != nil || !goOn {
				return err
			}
		}
		if !more || len(kvs) == 0 {
			return nil
		}
		last := string(kvs[len(kvs)-1].Key)
		if desc {
			hi = last
		} else {
			lo = last + "\x00"
		}
	}
}
