package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// AppendAudit stores ev under the bucket's next sequence number, which it
// returns; the Seq ev carries in is ignored. Events are never rewritten.
func (s *Store) AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error) {
	if err := enroll.CheckEvent(ev); err != nil {
		return 0, err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
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
	s.observeAudit(ev)
	return ev.Seq, nil
}

// Audit returns the events matching f in sequence order, or newest first
// with f.Newest. Username matches case-insensitively, like enrollments;
// Action matches exactly.
func (s *Store) Audit(ctx context.Context, f enroll.AuditFilter) ([]enroll.Event, error) {
	var out []enroll.Event
	err := s.WalkAudit(ctx, f, func(ev enroll.Event) bool {
		out = append(out, ev)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WalkAudit calls fn with each event matching f, in Audit's order, until
// fn returns false or f.Limit events were given. The sequence bounds
// (AfterSeq, BeforeSeq) position the cursor, so a page of a long trail
// costs only what it reads.
func (s *Store) WalkAudit(ctx context.Context, f enroll.AuditFilter, fn func(enroll.Event) bool) error {
	if f.Limit < 0 {
		return enroll.Invalidf("audit limit %d is negative", f.Limit)
	}
	if fn == nil {
		return enroll.Invalidf("nil audit walk function")
	}
	lo, hi := f.AfterSeq, f.BeforeSeq // both exclusive; hi 0 = none
	if lo == math.MaxUint64 || hi == 1 || (hi != 0 && hi <= lo+1) {
		return s.begin(ctx) // nothing can match, but a closed store still says so
	}
	// An action filter is tried on the stored JSON before decoding, which
	// costs most of a scan: json.Marshal writes the key and value exactly
	// so, and inside a string value every quote is escaped, so the bytes
	// cannot occur there. Decoded events are still matched in full.
	var actionBytes []byte
	if f.Action != "" {
		quoted, err := json.Marshal(f.Action)
		if err != nil {
			return enroll.Invalidf("audit action %q: %v", f.Action, err)
		}
		actionBytes = append([]byte(`"action":`), quoted...)
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		step := c.Next
		switch {
		case !f.Newest:
			k, v = c.Seek(u64Bytes(lo + 1))
		case hi == 0:
			k, v = c.Last()
			step = c.Prev
		default:
			step = c.Prev
			if k, _ = c.Seek(u64Bytes(hi)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		i, n := 0, 0
		for ; k != nil; k, v = step() {
			seq := bytesU64(k)
			if seq <= lo || (hi != 0 && seq >= hi) {
				break // past the bound in the direction of travel
			}
			i++
			if err := errIfDone(ctx, i); err != nil {
				return err
			}
			if actionBytes != nil && !bytes.Contains(v, actionBytes) {
				continue
			}
			var ev enroll.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %d: %w", seq, err)
			}
			if !f.Matches(ev) {
				continue
			}
			n++
			if !fn(ev) || (f.Limit > 0 && n == f.Limit) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: read audit trail: %w", err)
	}
	return nil
}
