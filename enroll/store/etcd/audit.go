package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
)

const auditPrefix = "audit/"

// AppendAudit stores ev under the next sequence number, taken from the
// audit counter in the same transaction (a CAS on the counter: concurrent
// appends retry), and returns it. Events are never rewritten.
func (s *Store) AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error) {
	if err := enroll.CheckEvent(ev); err != nil {
		return 0, err
	}
	err := s.withCounter(ctx, "audit", func(t *tx) error {
		seq, err := t.nextID("audit")
		if err != nil {
			return err
		}
		ev.Seq = seq
		val, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		t.put(auditPrefix+idKey(seq), val)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: append audit event %s: %w", ev.Action, err)
	}
	s.observeAudit(ev)
	return ev.Seq, nil
}

// Audit returns the events matching f in sequence order, or newest first.
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

// WalkAudit calls fn with each event matching f, in Audit's order, until fn
// returns false or f.Limit events were given; the trail is read a page at a
// time at one revision, starting at the sequence bound.
func (s *Store) WalkAudit(ctx context.Context, f enroll.AuditFilter, fn func(enroll.Event) bool) error {
	if f.Limit < 0 {
		return enroll.Invalidf("audit limit %d is negative", f.Limit)
	}
	if fn == nil {
		return enroll.Invalidf("nil audit walk function")
	}
	lo, hi := f.AfterSeq, f.BeforeSeq // both exclusive; hi 0 = none
	nothing := lo == math.MaxUint64 || hi == 1 || (hi != 0 && hi <= lo+1)
	var actionBytes []byte
	if f.Action != "" {
		quoted, err := json.Marshal(f.Action)
		if err != nil {
			return enroll.Invalidf("audit action %q: %v", f.Action, err)
		}
		actionBytes = append([]byte(`"action":`), quoted...)
	}
	err := s.view(ctx, func(t *tx) error {
		if nothing {
			return nil
		}
		from := ""
		switch {
		case !f.Newest:
			from = auditPrefix + idKey(lo+1)
		case hi != 0:
			from = auditPrefix + idKey(hi)
		}
		n := 0
		return t.scan(auditPrefix, from, f.Newest, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			seq, err := parseID(k[len(auditPrefix):])
			if err != nil {
				return false, fmt.Errorf("audit key %q: %w", k, err)
			}
			if seq <= lo || (hi != 0 && seq >= hi) {
				return false, nil // past the bound in the direction of travel
			}
			if actionBytes != nil && !bytes.Contains(kv.Value, actionBytes) {
				return true, nil
			}
			ev, err := decode[enroll.Event](k, kv.Value)
			if err != nil {
				return false, err
			}
			if !f.Matches(ev) {
				return true, nil
			}
			n++
			return fn(ev) && (f.Limit == 0 || n < f.Limit), nil
		})
	})
	if err != nil {
		return fmt.Errorf("enroll: read audit trail: %w", err)
	}
	return nil
}
