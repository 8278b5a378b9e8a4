package enroll

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// AppendAudit stores ev under the bucket's next sequence number, which it
// returns; the Seq ev carries in is ignored. Events are never rewritten.
func (s *BoltStore) AppendAudit(ctx context.Context, ev Event) (uint64, error) {
	if err := checkEvent(ev); err != nil {
		return 0, err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		ev.Seq = seq
		val, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		return b.Put(u64Bytes(seq), val)
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: append audit event %s: %w", ev.Action, err)
	}
	return ev.Seq, nil
}

// Audit returns the events matching f in sequence order. Username matches
// case-insensitively, like enrollments; Action matches exactly.
func (s *BoltStore) Audit(ctx context.Context, f AuditFilter) ([]Event, error) {
	if f.Limit < 0 {
		return nil, invalidf("audit limit %d is negative", f.Limit)
	}
	if f.AfterSeq == math.MaxUint64 {
		return nil, nil
	}
	var out []Event
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		i := 0
		for k, v := c.Seek(u64Bytes(f.AfterSeq + 1)); k != nil; k, v = c.Next() {
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %d: %w", bytesU64(k), err)
			}
			if !f.matches(ev) {
				continue
			}
			out = append(out, ev)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: read audit trail: %w", err)
	}
	return out, nil
}

// matches applies every field of f except AfterSeq and Limit, which Audit
// handles with the cursor.
func (f AuditFilter) matches(ev Event) bool {
	switch {
	case f.Username != "" && !strings.EqualFold(f.Username, ev.Username):
		return false
	case f.Action != "" && f.Action != ev.Action:
		return false
	case !f.Since.IsZero() && ev.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !ev.Time.Before(f.Until):
		return false
	}
	return true
}
