package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// The outbox: one key per message, and index keys written in the same
// transaction as the message (keys.go).
const (
	outboxPrefix   = "outbox/"
	duePrefix      = "outbox_due/"
	providerPrefix = "outbox_provider/"
	redactPrefix   = "outbox_redact/"
)

// dueKey is m's key in the due index: priority, then next attempt, then
// ID, so that DueMessages reads each priority only up to now.
func dueKey(m enroll.OutboundMessage) string {
	return fmt.Sprintf("%s%d/%s/%s", duePrefix, m.Priority, timeKey(m.NextAttempt), idKey(m.ID))
}

// EnqueueMessage stores m under the next ID, which it returns (m.ID is
// ignored), and indexes it, in one transaction.
func (s *Store) EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error) {
	if err := enroll.CheckMessage(m); err != nil {
		return 0, err
	}
	var id uint64
	var done *tx
	err := s.withCounter(ctx, "outbox", func(t *tx) error {
		var err error
		id, err = t.insertMessage(m)
		done = t
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enroll: enqueue %s message: %w", m.Purpose, err)
	}
	s.msgs.keep(id, done)
	m.ID = id
	s.observeMessage(m)
	return id, nil
}

// insertMessage stores m, checked, under the next ID and indexes it.
func (t *tx) insertMessage(m enroll.OutboundMessage) (uint64, error) {
	id, err := t.nextID("outbox")
	if err != nil {
		return 0, err
	}
	m.ID = id
	if err := t.reindexMessage(nil, m); err != nil {
		return 0, err
	}
	val, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	t.put(outboxPrefix+idKey(id), val)
	return id, nil
}

// reindexMessage moves m's index keys from what old (nil for a new
// message) needed to what m needs. A provider ID indexed to another
// message is refused with ErrInvalid.
func (t *tx) reindexMessage(old *enroll.OutboundMessage, m enroll.OutboundMessage) error {
	if old != nil && old.Pending() && (!m.Pending() || dueKey(*old) != dueKey(m)) {
		t.del(dueKey(*old))
	}
	if m.Pending() && (old == nil || !old.Pending() || dueKey(*old) != dueKey(m)) {
		t.put(dueKey(m), nil)
	}
	if old != nil && old.ProviderID == m.ProviderID {
		return nil
	}
	id := strconv.FormatUint(m.ID, 10)
	if old != nil && old.ProviderID != "" {
		v, err := t.get(providerPrefix + old.ProviderID)
		if err != nil {
			return err
		}
		if string(v) == id {
			t.del(providerPrefix + old.ProviderID)
		}
	}
	if m.ProviderID == "" {
		return nil
	}
	if t.attempt == 0 {
		// A provider ID is recorded once, when the provider has just
		// given it: assumed unindexed, which the commit's compare checks
		// (a conflict runs the update again on a real read). One round
		// trip less for each message sent.
		t.assume(providerPrefix+m.ProviderID, nil, 0)
	}
	owner, err := t.get(providerPrefix + m.ProviderID)
	if err != nil {
		return err
	}
	if owner != nil && string(owner) != id {
		return enroll.Invalidf("provider ID %s already belongs to message %s", m.ProviderID, owner)
	}
	t.put(providerPrefix+m.ProviderID, []byte(id))
	return nil
}

// message reads message id, or ErrNotFound.
func (t *tx) message(id uint64) (enroll.OutboundMessage, error) {
	v, err := t.get(outboxPrefix + idKey(id))
	if err != nil {
		return enroll.OutboundMessage{}, err
	}
	if v == nil {
		return enroll.OutboundMessage{}, enroll.ErrNotFound
	}
	return decode[enroll.OutboundMessage]("outbound message", v)
}

// DueMessages returns up to limit pending messages whose NextAttempt is not
// after now, by priority, then ID: it reads the due index of every
// priority up to now and no further, the first page of each in one read
// (scanRanges).
func (s *Store) DueMessages(ctx context.Context, now time.Time, limit int) ([]enroll.OutboundMessage, error) {
	if err := enroll.CheckNow(now); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, enroll.Invalidf("due messages: limit %d is not positive", limit)
	}
	cut := timeKey(now)
	rs := make([]keyRange, 0, enroll.PriorityLow-enroll.PriorityHigh+1)
	for p := enroll.PriorityHigh; p <= enroll.PriorityLow; p++ {
		prefix := fmt.Sprintf("%s%d/", duePrefix, p)
		// "0" sorts after "/": the range ends after every key at cut and
		// before any later one (timeKey is fixed-width hex).
		rs = append(rs, keyRange{lo: prefix, hi: prefix + cut + "0"})
	}
	var out []enroll.OutboundMessage
	err := s.view(ctx, func(t *tx) error {
		due := make([][]uint64, len(rs)) // per priority
		found, counted := 0, 0           // IDs in the priorities before the one read
		err := t.scanRanges(rs, func(i int, k string, _ *mvccpb.KeyValue) (bool, error) {
			for ; counted < i; counted++ {
				found += len(due[counted])
			}
			if found >= limit {
				return false, nil // the higher priorities fill the batch
			}
			at, idPart, ok := strings.Cut(k[len(rs[i].lo):], "/")
			if !ok {
				return false, fmt.Errorf("outbox due index: corrupt key %q", k)
			}
			if at > cut {
				return false, nil
			}
			id, err := parseID(idPart)
			due[i] = append(due[i], id)
			return true, err
		})
		if err != nil {
			return err
		}
		var ids []uint64
		for _, d := range due {
			slices.Sort(d) // the index orders by time; the contract wants IDs
			ids = append(ids, d[:min(len(d), limit-len(ids))]...)
		}
		out = make([]enroll.OutboundMessage, 0, len(ids))
		for _, id := range ids {
			m, err := t.message(id)
			if err != nil {
				return fmt.Errorf("outbox due index names message %d: %w", id, err)
			}
			out = append(out, m)
			s.msgs.seen(id, t) // the outbox claims it next
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: due messages: %w", err)
	}
	return out, nil
}

// UpdateMessage lets fn change message id and writes it back with its
// index keys: a CAS on the message's revision, fn run again on the new
// state after a conflict. See OutboxStore.
func (s *Store) UpdateMessage(ctx context.Context, id uint64, fn func(*enroll.OutboundMessage) error) error {
	if fn == nil {
		return enroll.Invalidf("update message: nil function")
	}
	var updated enroll.OutboundMessage
	var done *tx
	key := outboxPrefix + idKey(id)
	err := s.update(ctx, func(t *tx) error {
		if c, ok := s.msgs.take(id); ok && t.attempt == 0 {
			t.assume(key, c.val, c.rev)
		}
		old, err := t.message(id)
		if err != nil {
			return t.guessed(key, err)
		}
		m, err := record.UpdateMessage(old, fn)
		if err != nil {
			return t.guessed(key, err) // fn decided on the guess: not before a real read
		}
		if err := t.reindexMessage(&old, m); err != nil {
			return t.guessed(key, err)
		}
		val, err := json.Marshal(m)
		if err != nil {
			return err
		}
		updated, done = m, t
		t.put(key, val)
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: update message %d: %w", id, err)
	}
	s.msgs.keep(id, done)
	s.observeMessage(updated)
	return nil
}

// MessageByProviderID returns the message the provider knows as
// providerID, or ErrNotFound.
func (s *Store) MessageByProviderID(ctx context.Context, providerID string) (enroll.OutboundMessage, error) {
	if err := enroll.CheckKey("provider ID", providerID); err != nil {
		return enroll.OutboundMessage{}, err
	}
	var m enroll.OutboundMessage
	err := s.view(ctx, func(t *tx) error {
		v, err := t.get(providerPrefix + providerID)
		if err != nil {
			return err
		}
		if v == nil {
			return enroll.ErrNotFound
		}
		id, err := parseID(string(v))
		if err != nil {
			return fmt.Errorf("provider index of %s: %w", providerID, err)
		}
		m, err = t.message(id)
		return err
	})
	if err != nil {
		return enroll.OutboundMessage{}, fmt.Errorf("enroll: message by provider ID %s: %w", providerID, err)
	}
	return m, nil
}

// Messages lists the messages matching f, newest first, a page at a time.
func (s *Store) Messages(ctx context.Context, f enroll.OutboxFilter) ([]enroll.OutboundMessage, error) {
	if f.To != "" {
		if err := enroll.CheckPhone(f.To); err != nil {
			return nil, err
		}
	}
	if f.Limit < 0 {
		return nil, enroll.Invalidf("messages: limit %d is negative", f.Limit)
	}
	var out []enroll.OutboundMessage
	err := s.view(ctx, func(t *tx) error {
		return t.scan(outboxPrefix, "", true, func(k string, kv *mvccpb.KeyValue) (bool, error) {
			m, err := decode[enroll.OutboundMessage](k, kv.Value)
			if err != nil {
				return false, err
			}
			if (f.To != "" && m.To != f.To) || (f.Username != "" && !strings.EqualFold(m.Username, f.Username)) {
				return true, nil
			}
			out = append(out, m)
			return f.Limit == 0 || len(out) < f.Limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: list messages: %w", err)
	}
	return out, nil
}

// EnqueueRedaction queues the blanking of provider message sid once: the
// redaction index key is created if absent in the transaction that
// inserts the message.
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
	err := s.withCounter(ctx, "outbox", func(t *tx) error {
		old, err := t.get(redactPrefix + sid)
		if err != nil {
			return err
		}
		if old != nil {
			id, created = 0, false
			id, err = parseID(string(old))
			return err
		}
		if id, err = t.insertMessage(m); err != nil {
			return err
		}
		created = true
		t.put(redactPrefix+sid, strconv.AppendUint(nil, id, 10))
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("enroll: queue the redaction of %s: %w", sid, err)
	}
	return id, created, nil
}

// msgCache remembers the value and revision of the outbox messages this
// store last wrote or read, so that the next UpdateMessage of one (the
// release of a held message after its enqueue, the outbox's claim after
// DueMessages) assumes it instead of reading it: the commit's compare on
// the message's revision checks the guess, a wrong one is a conflict, and
// an update whose fn refuses a guessed state runs again on a real read.
// An entry is used once. Bounded: past msgCacheMax entries it starts afresh.
type msgCache struct {
	mu   sync.Mutex
	vals map[uint64]cachedSeq
}

const msgCacheMax = 256

// take returns and forgets the entry of message id.
func (c *msgCache) take(id uint64) (cachedSeq, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vals[id]
	delete(c.vals, id)
	return v, ok
}

func (c *msgCache) put(id uint64, v cachedSeq) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vals == nil || len(c.vals) >= msgCacheMax {
		c.vals = map[uint64]cachedSeq{}
	}
	c.vals[id] = v
}

// keep caches message id as t, committed, wrote it.
func (c *msgCache) keep(id uint64, t *tx) {
	if w, ok := t.puts[outboxPrefix+idKey(id)]; ok && w.val != nil && t.committed != 0 {
		c.put(id, cachedSeq{val: w.val, rev: t.committed})
	}
}

// seen caches message id as t read it.
func (c *msgCache) seen(id uint64, t *tx) {
	k := outboxPrefix + idKey(id)
	if rev, ok := t.reads[k]; ok && rev != 0 && !t.assumed[k] {
		c.put(id, cachedSeq{val: t.vals[k], rev: rev})
	}
}

// Waking the workers of other nodes: a watch on the due index.

// Queues WatchDue knows: the outbox of messages and the mail queue.
const (
	QueueOutbox = "outbox"
	QueueMail   = "mail"
)

// watchRetry is how long WatchDue waits before it watches again after the
// watch ended with an error (the cluster lost its quorum, the revision was
// compacted, the client closed).
const watchRetry = time.Second

// WatchDue calls wake each time any node (this store or another on the same
// prefix) writes an entry of queue's due index (QueueOutbox or QueueMail):
// a message or mail queued or put back for a later attempt. It watches
// until ctx ends, restarting the watch after an error or a compaction,
// and returns at once: the watch runs in its own goroutine. wake must not
// block. An unknown queue watches nothing.
func (s *Store) WatchDue(ctx context.Context, queue string, wake func()) {
	var prefix string
	switch queue {
	case QueueOutbox:
		prefix = duePrefix
	case QueueMail:
		prefix = mailDuePrefix
	default:
		return
	}
	go s.watchDue(ctx, s.prefix+prefix, wake)
}

func (s *Store) watchDue(ctx context.Context, key string, wake func()) {
	for ctx.Err() == nil {
		// The watch's own context: leader-required so that a member cut
		// from the quorum ends the watch instead of keeping it silent.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range s.cli.Watch(wctx, key, clientv3.WithPrefix(), clientv3.WithFilterDelete()) {
			if resp.Err() != nil || resp.Canceled {
				break
			}
			if len(resp.Events) > 0 {
				wake()
			}
		}
		cancel()
		// After a break anything may have been queued unseen: one wake
		// costs one pass.
		wake()
		t := time.NewTimer(watchRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
