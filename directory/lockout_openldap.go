package directory

import (
	"context"
	"slices"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// OpenLDAP (ppolicy) lockout scan.
//
// Why pwdAccountLockedTime>=T, not modifyTimestamp or syncrepl:
//
//   - pwdAccountLockedTime is the event itself: ppolicy writes it, with the
//     server's clock, when the account locks, and replaces it on the next
//     lockout. A filter on it returns the lockouts and nothing else.
//     modifyTimestamp also moves on every failed bind (ppolicy records
//     pwdFailureTime), every good bind that clears failures, every password
//     change and every profile edit, so an incremental scan by
//     modifyTimestamp reads entries that did not lock, and slapd indexes
//     modifyTimestamp only if the operator asked for it.
//   - The filter also carries (pwdAccountLockedTime=*): with the presence
//     index every ppolicy deployment has (the lab's slapd too), slapd starts
//     from the entries that carry a lock time at all (locked now, or an
//     expired lock not yet cleared by a good bind), never from all users, so
//     a poll with no change costs a few index lookups whatever the size of
//     the directory.
//   - syncrepl (RFC 4533) would push changes, but it needs the syncprov
//     overlay on the server, which a password-reset gateway cannot assume
//     (the operator would have to add it, and it keeps a session log); it
//     needs a persistent connection outside the pool; and its cookie is
//     replica state, not a lockout. Polling needs nothing but read access.
//
// Time. The lock time comes from the server's clock. OpenLDAP publishes no
// current time in its RootDSE, and cn=Monitor (monitorTimestamp) exists
// only where back-monitor is configured and readable, which is not the
// default (the lab's slapd has none). So the cursor does not need the
// server's time: the next scan asks for lock times at or after the
// gateway's time less olScanMargin (10 minutes, wide enough for clock skew
// between gateway and server and for a lockout written while the previous
// search ran), and excludes, exactly, every (entry, lock time) value it has
// already read within that window. An entry inside the window is thus read
// once, not on every poll, and a new lockout of the same entry has a new
// value and is read again. A gateway clock more than the margin ahead of
// the server would miss lockouts until the next full sweep, which the
// caller runs periodically.
//
// A permanent lock (000001010000Z, "until an administrator unlocks") is
// older than any window: it is found by the entry's modifyTimestamp instead
// (failed binds on a locked account do not modify the entry), and reported
// with that time as LockedAt. Lock state is computed as FindUser does: a
// lock time older than the policy's pwdLockoutDuration has expired (the
// attribute stays until the next good bind) and is not reported.
//
// Size limit. slapd's default olcSizeLimit (500) also caps a paged search
// in total for an ordinary account such as the gateway's. A full sweep
// with more lock times than that reports the first 500 (and logs how to
// lift the limit); an incremental scan that hits it keeps its window and
// excludes what it read, so the following scans read the rest, batch by
// batch, instead of failing forever.

// olScanMargin is how far before the gateway's clock the next scan starts.
const olScanMargin = 10 * time.Minute

// olMaxSeen bounds the values a cursor excludes (and so the filter's size,
// about 100 bytes a value). Past it, the oldest are dropped and may be read
// again, which the contract allows (the caller dedupes); it takes a lockout
// storm of more than this many accounts within olScanMargin.
const olMaxSeen = 5000

type seenAt struct {
	lockSeen
	at time.Time
}

func (c *Client) scanOpenLDAP(ctx context.Context, conn *ldap.Conn, d *openldapDialect, prev scanCursor, r *scanResult) error {
	now := c.now()
	since := now.Add(-olScanMargin).Truncate(time.Second).UTC()
	if prev.Since.IsZero() {
		r.full = true
	}
	var filter string
	var seen []seenAt // values read: carried over, then this search's
	if r.full {
		filter = openldapLockoutFilter(c.cfg.EffectiveUserFilter(), time.Time{}, nil)
	} else {
		filter = openldapLockoutFilter(c.cfg.EffectiveUserFilter(), prev.Since, prev.Seen)
		for _, s := range prev.Seen {
			if at, err := parseGeneralizedTime(s.Value); err == nil {
				seen = append(seen, seenAt{s, at})
			}
		}
	}
	attrs := append(d.attributes(), "modifyTimestamp")
	read, truncated, err := c.pagedSearch(ctx, conn, "lockout scan", filter, attrs, func(e *ldap.Entry) {
		u := d.user(conn, e, now)
		s := lockSeen{DN: e.DN, Attr: attrLockedTime, Value: e.GetAttributeValue(attrLockedTime)}
		at, perr := parseGeneralizedTime(s.Value)
		if s.Value == permanentLockout || perr != nil {
			s.Attr, s.Value = "modifyTimestamp", e.GetAttributeValue("modifyTimestamp")
			at, perr = parseGeneralizedTime(s.Value)
		}
		if perr == nil {
			seen = append(seen, seenAt{s, at})
		}
		if u.Locked {
			r.events = append(r.events, LockoutEvent{User: u, LockedAt: at})
		}
	})
	r.read, r.truncated = read, truncated
	if err != nil {
		return err
	}
	if truncated && !r.full {
		// The server's size limit cut the search short: do not move the
		// window; what was read is excluded next time, so each scan reads
		// the next batch.
		since = prev.Since
	}
	seen = slices.DeleteFunc(seen, func(s seenAt) bool { return s.at.Before(since) })
	if len(seen) > olMaxSeen {
		slices.SortFunc(seen, func(a, b seenAt) int { return b.at.Compare(a.at) }) // newest first
		seen = seen[:olMaxSeen]
	}
	r.next = scanCursor{V: cursorVersion, Dialect: DialectOpenLDAP, Since: since}
	for _, s := range seen {
		r.next.Seen = append(r.next.Seen, s.lockSeen)
	}
	return nil
}
