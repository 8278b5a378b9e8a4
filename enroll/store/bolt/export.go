package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll/store/layout"
)

// Export writes every record of the data file to w as a layout stream
// (enroll/store/layout: the etcd store's keys and values), all read in
// one read transaction, so the copy is consistent even while the store is
// in use, and returns the count of each kind written. The job leases are
// left out (layout.Live). The records are read twice in that transaction:
// once for the header's counts, once to write them.
func (s *Store) Export(ctx context.Context, w io.Writer) (layout.Counts, error) {
	counts := layout.Counts{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		counts = layout.Counts{}
		if err := exportRecords(ctx, tx, func(r layout.Record) error { counts.Add(r.Key); return nil }); err != nil {
			return err
		}
		sw, err := layout.NewWriter(w, layout.Header{Source: "bolt:" + s.path, Time: time.Now().UTC(), Counts: counts})
		if err != nil {
			return err
		}
		return exportRecords(ctx, tx, sw.Write)
	})
	if err != nil {
		return counts, fmt.Errorf("enroll: export %s: %w", s.path, err)
	}
	return counts, nil
}

// An exporter turns one bucket entry into its layout key and value; ok
// false leaves it out (a window that does not decode counts as absent in
// the store too).
type exporter func(k, v []byte) (key string, val []byte, ok bool, err error)

// exports maps each bucket but meta and leases to its layout kind.
var exports = []struct {
	bucket []byte
	conv   exporter
}{
	{bucketEnrollments, same(layout.Enrollments)},
	{bucketPhones, same(layout.Phones)},
	{bucketAudit, byID(layout.Audit)},
	{bucketMessages, timeValue(layout.Messages)},
	{bucketOptOut, timeValue(layout.OptOut)},
	{bucketRateLimit, func(k, v []byte) (string, []byte, bool, error) {
		w, ok := decodeHits(v)
		return jsonValue(layout.RateLimit+string(k), w, ok)
	}},
	{bucketGuard, func(k, v []byte) (string, []byte, bool, error) {
		g, ok := decodeGuard(v)
		return jsonValue(layout.Guard+string(k), g, ok)
	}},
	{bucketSessions, same(layout.Sessions)},
	{bucketActivations, same(layout.Activations)},
	{bucketActivationUsers, same(layout.ActivationUsers)},
	{bucketEndedLinks, same(layout.EndedLinks)},
	{bucketOutbox, byID(layout.Outbox)},
	{bucketOutboxDue, func(k, _ []byte) (string, []byte, bool, error) {
		if len(k) != dueKeyLen {
			return badKey(bucketOutboxDue, k)
		}
		return fmt.Sprintf("%s%d/%s/%s", layout.OutboxDue, k[0], layout.OrderedKey(bytesU64(k[1:9])),
			layout.IDKey(bytesU64(k[9:]))), nil, true, nil
	}},
	{bucketOutboxProvider, idValue(layout.OutboxProvider)},
	{bucketOutboxRedact, idValue(layout.OutboxRedact)},
	{bucketMailQueue, byID(layout.MailQueue)},
	{bucketMailDue, func(k, _ []byte) (string, []byte, bool, error) {
		if len(k) != 16 {
			return badKey(bucketMailDue, k)
		}
		return layout.MailDue + layout.OrderedKey(bytesU64(k[:8])) + "/" + layout.IDKey(bytesU64(k[8:])), nil, true, nil
	}},
	{bucketLockouts, func(k, v []byte) (string, []byte, bool, error) {
		if len(k) <= 8 || len(v) != 8 {
			return badKey(bucketLockouts, k)
		}
		return layout.Lockouts + layout.OrderedKey(bytesU64(k[:8])) + "/" + string(k[8:]), layout.NanoValue(bytesNano(v)), true, nil
	}},
	{bucketMonitor, same(layout.Monitor)},
	{bucketSMSChecks, same(layout.SMSChecks)},
	{bucketSMSChecksDue, func(k, _ []byte) (string, []byte, bool, error) {
		if len(k) <= 8 {
			return badKey(bucketSMSChecksDue, k)
		}
		return layout.SMSChecksDue + layout.OrderedKey(bytesU64(k[:8])) + "/" + string(k[8:]), nil, true, nil
	}},
	{bucketReminders, func(k, v []byte) (string, []byte, bool, error) {
		if len(k) <= 10 || len(v) != 8 {
			return badKey(bucketReminders, k)
		}
		return fmt.Sprintf("%s%s/%03d/%s", layout.Reminders, layout.OrderedKey(bytesU64(k[:8])),
			binary.BigEndian.Uint16(k[8:10]), k[10:]), layout.NanoValue(bytesNano(v)), true, nil
	}},
	{bucketAPITokens, same(layout.APITokens)},
	{bucketAPITokenHashes, same(layout.APITokenHashes)},
	{bucketAPITokenNames, same(layout.APITokenNames)},
}

// seqs are the buckets whose sequence is a layout counter (meta/seq/<name>).
var seqs = []struct {
	bucket []byte
	name   string
}{{bucketAudit, "audit"}, {bucketOutbox, "outbox"}, {bucketMailQueue, "mail"}}

// exportRecords gives fn every record of tx in the layout: the meta
// records first, then each bucket in key order. A bucket a file of an
// older replyreset lacks holds nothing.
func exportRecords(ctx context.Context, tx *bbolt.Tx, fn func(layout.Record) error) error {
	meta := tx.Bucket(bucketMeta)
	if err := fn(layout.NewRecord(layout.KeySchema, []byte(layout.SchemaVersion))); err != nil {
		return err
	}
	if v := meta.Get(keySealKey); v != nil {
		if err := fn(layout.NewRecord(layout.KeySealKey, v)); err != nil {
			return err
		}
	}
	for _, sq := range seqs {
		if b := tx.Bucket(sq.bucket); b != nil && b.Sequence() > 0 {
			if err := fn(layout.NewRecord(layout.SeqPrefix+sq.name, strconv.AppendUint(nil, b.Sequence(), 10))); err != nil {
				return err
			}
		}
	}
	i := 0
	for _, e := range exports {
		b := tx.Bucket(e.bucket)
		if b == nil {
			continue
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			key, val, ok, err := e.conv(k, v)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := fn(layout.NewRecord(key, val)); err != nil {
				return err
			}
		}
	}
	return nil
}

func same(prefix string) exporter {
	return func(k, v []byte) (string, []byte, bool, error) { return prefix + string(k), v, true, nil }
}

// byID is a bucket keyed by big-endian ID.
func byID(prefix string) exporter {
	return func(k, v []byte) (string, []byte, bool, error) {
		if len(k) != 8 {
			return badKey([]byte(prefix), k)
		}
		return prefix + layout.IDKey(bytesU64(k)), v, true, nil
	}
}

// timeValue is a bucket of big-endian Unix ns values.
func timeValue(prefix string) exporter {
	return func(k, v []byte) (string, []byte, bool, error) {
		if len(v) != 8 {
			return badKey([]byte(prefix), k)
		}
		return prefix + string(k), layout.NanoValue(bytesNano(v)), true, nil
	}
}

// idValue is a bucket of big-endian ID values.
func idValue(prefix string) exporter {
	return func(k, v []byte) (string, []byte, bool, error) {
		if len(v) != 8 {
			return badKey([]byte(prefix), k)
		}
		return prefix + string(k), strconv.AppendUint(nil, bytesU64(v), 10), true, nil
	}
}

func jsonValue(key string, v any, ok bool) (string, []byte, bool, error) {
	if !ok {
		return "", nil, false, nil
	}
	b, err := json.Marshal(v)
	return key, b, err == nil, err
}

func badKey(bucket, k []byte) (string, []byte, bool, error) {
	return "", nil, false, fmt.Errorf("bucket %s: the entry %x is damaged (its key or value has the wrong length)", bucket, k)
}
