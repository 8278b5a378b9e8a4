package layout

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/record"
)

// The kinds of record, each the prefix of its keys. The values are those
// of enroll/store/etcd/keys.go; an ordered time in a key (<t>) is
// TimeKey, an ID (<id>, <seq>) IDKey, a time in a value decimal Unix ns.
const (
	Meta            = "meta/"             // schema, seal_key, seq/<name>
	Enrollments     = "enrollments/"      // <user> → Enrollment
	Phones          = "phones/"           // <e164> → user
	Audit           = "audit/"            // <seq> → Event
	Messages        = "messages/"         // <sid> → expiry; TTL
	OptOut          = "optout/"           // <e164> → time of the STOP
	RateLimit       = "ratelimit/"        // <key> → record.Window; TTL
	Guard           = "guard/"            // <key> → record.Guard; TTL
	Leases          = "leases/"           // <name>: job leases, never carried
	Leader          = "leader/"           // the etcd election, never carried
	Sessions        = "sessions/"         // <key> → AdminSession; TTL
	Activations     = "activations/"      // <hash> → Activation
	ActivationUsers = "activation_users/" // <user> → token hash
	EndedLinks      = "ended_links/"      // <hash> → EndedLink
	Outbox          = "outbox/"           // <id> → OutboundMessage
	OutboxDue       = "outbox_due/"       // <p>/<t>/<id> → empty
	OutboxProvider  = "outbox_provider/"  // <sid> → decimal ID
	OutboxRedact    = "outbox_redact/"    // <sid> → decimal ID
	MailQueue       = "mail_queue/"       // <id> → QueuedMail
	MailDue         = "mail_due/"         // <t>/<id> → empty
	Lockouts        = "lockouts/"         // <t>/<user> → time recorded
	Monitor         = "monitor/"          // <name> → opaque state
	SMSChecks       = "sms_checks/"       // <user> → SMSPasswordCheck
	SMSChecksDue    = "sms_checks_due/"   // <t>/<user> → empty
	Reminders       = "reminders/"        // <t>/<stage>/<user> → time sent
	APITokens       = "api_tokens/"       // <id> → token record with its hash
	APITokenHashes  = "api_token_hashes/" // <hash> → ID
	APITokenNames   = "api_token_names/"  // <name> → ID

	KeySchema  = Meta + "schema"   // the layout's version
	KeySealKey = Meta + "seal_key" // the sealing key's fingerprint
	SeqPrefix  = Meta + "seq/"     // <name> → decimal last ID given (audit, outbox, mail)
	// KeyMigration records the migration that filled the store (replyreset
	// migrate: the source file, its SHA-256, when, the counts written).
	KeyMigration = Meta + "migration"
)

// SchemaVersion is the version of this layout, the value of KeySchema.
const SchemaVersion = "1"

// Kind is the kind of key: its first segment ("enrollments", "meta").
func Kind(key string) string {
	k, _, _ := strings.Cut(key, "/")
	return k
}

// Live reports whether key belongs to a running cluster and is never
// carried by a stream: the job leases and the leader election.
func Live(key string) bool {
	return strings.HasPrefix(key, Leases) || strings.HasPrefix(key, Leader)
}

// IDKey is the zero-padded decimal of an ID, which sorts as the number.
func IDKey(id uint64) string { return fmt.Sprintf("%020d", id) }

// UnixNano is t in Unix nanoseconds, clamped to int64 so that a far-future
// expiry stays far in the future instead of wrapping.
func UnixNano(t time.Time) int64 {
	switch {
	case t.After(maxTime):
		return math.MaxInt64
	case t.Before(minTime):
		return math.MinInt64
	}
	return t.UnixNano()
}

var (
	maxTime = time.Unix(0, math.MaxInt64)
	minTime = time.Unix(0, math.MinInt64)
)

// Ordered is Unix ns with the sign bit flipped: unsigned order is time
// order, times before 1970 first.
func Ordered(ns int64) uint64 { return uint64(ns) ^ (1 << 63) }

// OrderedKey is an Ordered time as 16 hex digits, which sort bytewise.
func OrderedKey(o uint64) string { return fmt.Sprintf("%016x", o) }

// TimeKey is t as it stands in a key (OrderedKey).
func TimeKey(t time.Time) string { return OrderedKey(Ordered(UnixNano(t))) }

// NanoValue is a time in a value: decimal Unix ns.
func NanoValue(ns int64) []byte { return strconv.AppendInt(nil, ns, 10) }

// ParseNano decodes a NanoValue.
func ParseNano(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// Expiry is when the record under key ends by itself (Unix ns), for the
// kinds that live on a TTL (an etcd lease): a message SID's expiry, a
// window's last hit plus its window, a guard's block or window, a
// session's ExpiresAt. ttl is false for the other kinds, and for a value
// that does not decode (it is copied as it is, without a TTL).
func Expiry(key string, v []byte) (ns int64, ttl bool) {
	switch {
	case strings.HasPrefix(key, Messages):
		return ParseNano(v)
	case strings.HasPrefix(key, RateLimit):
		var w record.Window
		if json.Unmarshal(v, &w) != nil {
			return 0, false
		}
		return windowEnd(w), true
	case strings.HasPrefix(key, Guard):
		var g record.Guard
		if json.Unmarshal(v, &g) != nil {
			return 0, false
		}
		return max(windowEnd(g.Window), g.Until), true
	case strings.HasPrefix(key, Sessions):
		var s enroll.AdminSession
		if json.Unmarshal(v, &s) != nil {
			return 0, false
		}
		return UnixNano(s.ExpiresAt), true
	}
	return 0, false
}

// windowEnd is when the last hit of w leaves its window (MinInt64 when
// it has none: the record has ended).
func windowEnd(w record.Window) int64 {
	if len(w.Hits) == 0 {
		return math.MinInt64
	}
	last := w.Hits[len(w.Hits)-1]
	if last > math.MaxInt64-w.Window {
		return math.MaxInt64
	}
	return last + w.Window
}
