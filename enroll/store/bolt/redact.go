package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/enroll"
)

// bucketOutboxRedact indexes the redaction jobs by the SID they blank:
//
//	outbox_redact  target SID → ID of the KindRedact message
//
// so that a message is redacted once however many final reports name it.
var bucketOutboxRedact = []byte("outbox_redact")

// EnqueueRedaction queues, at high priority, the blanking of the body of
// provider message sid, unless one was queued before for sid: the check
// and the insert share one transaction, so a message is redacted once.
// purpose and username say, for people, what the message was. It returns
// the redaction's ID and whether it was queued now.
func (s *Store) EnqueueRedaction(ctx context.Context, sid, purpose, username string, now time.Time) (uint64, bool, error) {
	if err := enroll.CheckNow(now); err != nil {
		return 0, false, err
	}
	m := enroll.OutboundMessage{Kind: enroll.KindRedact, Target: sid, Purpose: purpose, Username: username,
		Priority: enroll.PriorityHigh, Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now}
	if err := enroll.CheckMessage(m); err != nil {
		return 0, false, err
	}
	var id uint64
	created := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		idx := tx.Bucket(bucketOutboxRedact)
		if old := idx.Get([]byte(sid)); old != nil {
			id, created = bytesU64(old), false
			return nil
		}
		seq, err := insertMessage(tx, m)
		if err != nil {
			return err
		}
		id, created = seq, true
		return idx.Put([]byte(sid), u64Bytes(seq))
	})
	if err != nil {
		return 0, false, fmt.Errorf("enroll: queue the redaction of %s: %w", sid, err)
	}
	return id, created, nil
}
