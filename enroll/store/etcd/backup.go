package etcd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
)

// A backup is JSON lines: a header, then one line per key (relative to
// the prefix) with its value, all read at the header's revision.
type backupHeader struct {
	Format   string `json:"format"`
	Revision int64  `json:"revision"`
}

type backupRecord struct {
	Key   string `json:"k"`
	Value []byte `json:"v"`
}

const backupFormat = "replyreset-etcd-1"

// Backup writes every key under the prefix as it was at one revision (a
// consistent snapshot while the store stays in use), a page at a time, and
// returns the number of bytes written. The job leases are left out: a
// lease ends with the store that granted it. Restore loads the copy.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	err := s.view(ctx, func(t *tx) error {
		if _, err := t.get(keySchema); err != nil { // fixes the snapshot revision
			return err
		}
		enc := json.NewEncoder(cw)
		if err := enc.Encode(backupHeader{Format: backupFormat, Revision: t.rev}); err != nil {
			return err
		}
		return t.scan("", "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			if strings.HasPrefix(k, leasesPrefix) {
				return true, nil
			}
			return true, enc.Encode(backupRecord{Key: k, Value: kv.Value})
		})
	})
	if err != nil {
		return cw.n, fmt.Errorf("enroll: backup etcd prefix %s: %w", s.prefix, err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// restoreBatch is how many keys one restore transaction writes.
const restoreBatch = 100

// ErrNotEmpty is returned by Restore when the target prefix holds keys.
var ErrNotEmpty = errors.New("enroll: the etcd prefix is not empty")

// readBackup reads a backup Backup wrote, giving each record in turn to
// fn (nil: only read), and returns the header and the records read.
func readBackup(r io.Reader, fn func(backupRecord) error) (backupHeader, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20) // etcd's values stay under 1.5 MiB
	var h backupHeader
	if !sc.Scan() {
		return h, 0, fmt.Errorf("empty backup %w", sc.Err())
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Format != backupFormat {
		return h, 0, fmt.Errorf("not an etcd store backup (format %q)", h.Format)
	}
	n := 0
	for sc.Scan() {
		var rec backupRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Key == "" {
			return h, n, fmt.Errorf("record %d is damaged", n+1)
		}
		n++
		if fn != nil {
			if err := fn(rec); err != nil {
				return h, n, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return h, n, fmt.Errorf("read the backup: %w", err)
	}
	return h, n, nil
}

// CheckBackup reads a backup Backup wrote, without loading it, and
// returns how many keys it holds and the revision it was read at.
func CheckBackup(r io.Reader) (keys int, revision int64, err error) {
	h, n, err := readBackup(r, nil)
	return n, h.Revision, err
}

// Restore loads a backup Backup wrote into prefix, which must be empty,
// and returns the number of keys written. Each key is created if absent,
// so a restore racing another one never overwrites it.
func Restore(ctx context.Context, cli *clientv3.Client, prefix string, r io.Reader) (int, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("enroll: restore into %s: %w", prefix, unavailable(err))
	}
	if resp.Count != 0 {
		return 0, fmt.Errorf("%w: %s holds %d keys", ErrNotEmpty, prefix, resp.Count)
	}
	n := 0
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		resp, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		switch {
		case err != nil:
			return unavailable(err)
		case !resp.Succeeded:
			return fmt.Errorf("%w: keys appeared under %s while restoring", ErrNotEmpty, prefix)
		}
		n += len(ops)
		cmps, ops = cmps[:0], ops[:0]
		return nil
	}
	_, _, err = readBackup(r, func(rec backupRecord) error {
		k := prefix + rec.Key
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		ops = append(ops, clientv3.OpPut(k, string(rec.Value)))
		if len(ops) == restoreBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, fmt.Errorf("enroll: restore into %s: %w", prefix, err)
	}
	return n, nil
}

// Check reads every key under the prefix at one revision and returns
// every problem found, joined: records that do not decode, phone index
// entries whose owner does not own the phone, due-index entries naming a
// message that is not pending.
func (s *Store) Check(ctx context.Context) error {
	var problems []error
	err := s.view(ctx, func(t *tx) error {
		return t.scan("", "", false, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			if p := t.checkKey(k, kv.Value); p != nil {
				problems = append(problems, p)
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("enroll: check etcd prefix %s: %w", s.prefix, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("enroll: etcd prefix %s is inconsistent: %w", s.prefix, errors.Join(problems...))
	}
	return nil
}

// checkKey checks one record, reading what it refers to at the snapshot.
func (t *tx) checkKey(k string, v []byte) error {
	var err error
	switch {
	case strings.HasPrefix(k, enrollmentsPrefix):
		_, err = decode[enroll.Enrollment](k, v)
	case strings.HasPrefix(k, auditPrefix):
		_, err = decode[enroll.Event](k, v)
	case strings.HasPrefix(k, outboxPrefix):
		_, err = decode[enroll.OutboundMessage](k, v)
	case strings.HasPrefix(k, phonesPrefix):
		e, gerr := t.enrollment(string(v))
		if gerr != nil {
			return fmt.Errorf("%s: owner %s: %w", k, v, gerr)
		}
		if !enroll.OwnsPhone(e) || phonesPrefix+e.Phone != k {
			return fmt.Errorf("%s: indexed to %s, which does not own it", k, v)
		}
	case strings.HasPrefix(k, duePrefix):
		id, perr := parseID(k[strings.LastIndexByte(k, '/')+1:])
		if perr != nil {
			return fmt.Errorf("%s: %w", k, perr)
		}
		m, gerr := t.message(id)
		if gerr != nil {
			return fmt.Errorf("%s: %w", k, gerr)
		}
		if !m.Pending() || dueKey(m) != k {
			return fmt.Errorf("%s: message %d is not due so", k, id)
		}
	}
	return err
}
