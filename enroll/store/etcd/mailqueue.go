package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

const (
	mailPrefix    = "mail_queue/"
	mailDuePrefix = "mail_due/"
)

// mailDueKey is m's key in the due index: next attempt, then ID.
func mailDueKey(m enroll.QueuedMail) string {
	return mailDuePrefix + timeKey(m.NextAttempt) + "/" + idKey(m.ID)
}

// EnqueueMail stores m under the next ID and indexes it.
func (s *Store) EnqueueMail(ctx context.Context, m enroll.QueuedMail) (uint64, error) {
	if err := enroll.CheckQueuedMail(m); err != nil {
		return 0, err
	}
	err := s.withCounter(ctx, "mail", func(t *tx) error {
		id, err := t.nextID("mail")
		if err != nil {
			return err
		}
		m.ID = id
		return t.putMail(nil, m)
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: enqueue %s mail: %w", m.Kind, err)
	}
	return m.ID, nil
}

// putMail writes m and moves its due-index key from what old needed.
func (t *tx) putMail(old *enroll.QueuedMail, m enroll.QueuedMail) error {
	if old != nil && old.Pending() && (!m.Pending() || mailDueKey(*old) != mailDueKey(m)) {
		t.del(mailDueKey(*old))
	}
	if m.Pending() {
		t.put(mailDueKey(m), nil)
	}
	val, err := json.Marshal(m)
	if err != nil {
		return err
	}
	t.put(mailPrefix+idKey(m.ID), val)
	return nil
}

func (t *tx) mail(id uint64) (enroll.QueuedMail, error) {
	v, err := t.get(mailPrefix + idKey(id))
	if err != nil {
		return enroll.QueuedMail{}, err
	}
	if v == nil {
		return enroll.QueuedMail{}, enroll.ErrNotFound
	}
	return decode[enroll.QueuedMail]("queued mail", v)
}

// DueMail returns up to limit pending mails due at now, earliest first.
func (s *Store) DueMail(ctx context.Context, now time.Time, limit int) ([]enroll.QueuedMail, error) {
	if err := enroll.CheckNow(now); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, enroll.Invalidf("due mail: limit %d is not positive", limit)
	}
	cut := timeKey(now)
	var out []enroll.QueuedMail
	err := s.view(ctx, func(t *tx) error {
		var ids []uint64
		err := t.scan(mailDuePrefix, "", false, func(k string, _ *mvccpb.KeyValue) (bool, error) {
			at, idPart, ok := strings.Cut(k[len(mailDuePrefix):], "/")
			if !ok {
				return false, fmt.Errorf("mail due index: corrupt key %q", k)
			}
			if at > cut {
				return false, nil
			}
			id, err := parseID(idPart)
			ids = append(ids, id)
			return len(ids) < limit, err
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			m, err := t.mail(id)
			if err != nil {
				return fmt.Errorf("mail due index names mail %d: %w", id, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: due mail: %w", err)
	}
	return out, nil
}

// UpdateMail lets fn change mail id: a CAS on its key.
func (s *Store) UpdateMail(ctx context.Context, id uint64, fn func(*enroll.QueuedMail) error) error {
	if fn == nil {
		return enroll.Invalidf("update mail: nil function")
	}
	err := s.update(ctx, func(t *tx) error {
		old, err := t.mail(id)
		if err != nil {
			return err
		}
		m, err := record.UpdateMail(old, fn)
		if err != nil {
			return err
		}
		return t.putMail(&old, m)
	})
	if err != nil {
		return fmt.Errorf("enroll: update mail %d: %w", id, err)
	}
	return nil
}

// QueuedMails lists up to limit mails (0: all), newest first.
func (s *Store) QueuedMails(ctx context.Context, limit int) ([]enroll.QueuedMail, error) {
	if limit < 0 {
		return nil, enroll.Invalidf("queued mails: limit %d is negative", limit)
	}
	var out []enroll.QueuedMail
	err := s.view(ctx, func(t *tx) error {
		return t.scan(mailPrefix, "", true, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			m, err := decode[enroll.QueuedMail](k, kv.Value)
			out = append(out, m)
			return err == nil && (limit == 0 || len(out) < limit), err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list queued mails: %w", err)
	}
	return out, nil
}
