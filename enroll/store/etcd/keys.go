package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/replyreset/replyreset/enroll/store/layout"
)

// Key layout, relative to the store's prefix (the backend-neutral one of
// enroll/store/layout, which names each kind). One key per record, values
// JSON (the domain types' own JSON) unless said otherwise; every value is
// far below etcd's 1.5 MiB request limit (the largest, a queued mail, is
// bounded at 256 KiB by enroll.CheckQueuedMail).
//
//	meta/schema              schema version
//	meta/seal_key            the sealing key's fingerprint (SealKey)
//	meta/seq/<name>          decimal counter of the last ID given (audit, outbox, mail)
//	enrollments/<user>       Enrollment (lower-cased username)
//	phones/<e164>            lower-cased username of the active or frozen owner
//	audit/<seq>              Event (seq: 20 zero-padded digits)
//	messages/<sid>           decimal expiry (Unix ns), on a TTL lease
//	optout/<e164>            decimal time of the STOP (Unix ns)
//	ratelimit/<key>          hitList (ratelimit.go), on a TTL lease
//	guard/<key>              guardEntry (guard.go), on a TTL lease
//	leases/<name>            jobLease (leases.go), on the store's session lease
//	sessions/<key>           AdminSession, on a TTL lease
//	activations/<hash>       Activation
//	activation_users/<user>  token hash of the user's current activation
//	ended_links/<hash>       EndedLink
//	outbox/<id>              OutboundMessage (id: 20 digits)
//	outbox_due/<p>/<t>/<id>  empty: pending messages by priority, next attempt (t: ordered time)
//	outbox_provider/<sid>    decimal ID of the message the provider knows as sid
//	outbox_redact/<sid>      decimal ID of the redaction of sid
//	mail_queue/<id>          QueuedMail
//	mail_due/<t>/<id>        empty: pending mails by next attempt
//	lockouts/<t>/<user>      decimal time recorded (t: the lockout time)
//	monitor/<name>           opaque lockout-monitor state
//	sms_checks/<user>        SMSPasswordCheck
//	sms_checks_due/<t>/<user> empty: entries by Due
//	reminders/<t>/<stage>/<user> decimal time sent (t: the password's expiry)
//	api_tokens/<id>          API token record
//	api_token_hashes/<hash>  token ID
//	api_token_names/<name>   ID of the live token of that (lower-cased) name
const (
	keySchema = layout.KeySchema
	seqPrefix = layout.SeqPrefix
)

// The encodings of IDs and times in keys and values are layout's.
var (
	idKey     = layout.IDKey
	unixNano  = layout.UnixNano
	timeKey   = layout.TimeKey
	parseNano = layout.ParseNano
)

func parseID(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

func nanoVal(t time.Time) []byte { return layout.NanoValue(unixNano(t)) }

// decode unmarshals the JSON record v stored under key.
func decode[T any](key string, v []byte) (T, error) {
	var r T
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("decode %s: %w", key, err)
	}
	return r, nil
}

// seqCache remembers the counters (meta/seq/...) as this store last wrote
// them, so that taking the next ID costs no read while this node is the
// only writer: nextID assumes the cached value, and the commit's compare
// on the counter's revision catches another writer (a conflict, then a
// real read).
type seqCache struct {
	mu    sync.Mutex
	vals  map[string]cachedSeq
	turns map[string]chan struct{} // one writer of a counter at a time in this process
}

// withCounter runs update fn holding this process's turn on counter name:
// writers of one counter in one process take turns instead of conflicting
// (each would otherwise guess the same cached value and all but one retry
// with reads). Writers in other processes still meet at the commit's
// compare.
func (s *Store) withCounter(ctx context.Context, name string, fn func(*tx) error) error {
	c := &s.seqs
	c.mu.Lock()
	if c.turns == nil {
		c.turns = map[string]chan struct{}{}
	}
	turn, ok := c.turns[name]
	if !ok {
		turn = make(chan struct{}, 1)
		c.turns[name] = turn
	}
	c.mu.Unlock()
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-turn }()
	return s.update(ctx, fn)
}

type cachedSeq struct {
	val []byte
	rev int64
}

func (c *seqCache) load(key string) (cachedSeq, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vals[key]
	return v, ok
}

// settle updates the cache after t's commit: the counters it wrote are
// cached at the commit's revision; those it assumed wrongly are dropped.
func (c *seqCache) settle(t *tx, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range t.order {
		if !strings.HasPrefix(k, seqPrefix) {
			continue
		}
		if err == nil {
			if c.vals == nil {
				c.vals = map[string]cachedSeq{}
			}
			c.vals[k] = cachedSeq{val: t.puts[k].val, rev: t.committed}
		} else {
			delete(c.vals, k)
		}
	}
}

// nextID increments the counter name in t and returns the new ID.
func (t *tx) nextID(name string) (uint64, error) {
	k := seqPrefix + name
	if c, ok := t.s.seqs.load(k); ok && t.attempt == 0 {
		t.assume(k, c.val, c.rev)
	}
	v, err := t.get(k)
	if err != nil {
		return 0, err
	}
	var n uint64
	if v != nil {
		if n, err = parseID(string(v)); err != nil {
			return 0, fmt.Errorf("counter %s is corrupt: %w", name, err)
		}
	}
	n++
	t.put(k, strconv.AppendUint(nil, n, 10))
	return n, nil
}
