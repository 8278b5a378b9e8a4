package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The lockout monitor's directory half: ScanLockouts finds the accounts
// locked right now that changed since the caller's cursor. The dialect
// parts are in lockout_ad.go (uSNChanged) and lockout_openldap.go
// (pwdAccountLockedTime).

// LockoutEvent is one lockout: an account and the moment it locked. The
// pair (Username, LockedAt) identifies the event; a later lockout of the
// same account is a new event.
type LockoutEvent struct {
	User     User      // the account, as FindUser returns it (Locked is true)
	LockedAt time.Time // AD lockoutTime, OpenLDAP pwdAccountLockedTime
}

// ScanStats describe one poll, for logs, metrics and benchmarks.
type ScanStats struct {
	Full        bool          // a full sweep rather than an incremental scan
	EntriesRead int           // user entries the directory returned
	Took        time.Duration // wall time of the poll
}

// LockoutScanner finds accounts locked right now (computed state: an
// expired lockout is not one) that changed since cursor. The cursor is
// opaque: the caller keeps the one returned and passes it to the next call,
// also across restarts. A nil cursor, or full, asks for a full sweep. The
// caller dedupes events by (Username, LockedAt): a scanner may report an
// event again, never miss one.
type LockoutScanner interface {
	ScanLockouts(ctx context.Context, cursor []byte, full bool) (events []LockoutEvent, next []byte, stats ScanStats, err error)
}

var _ LockoutScanner = (*Client)(nil)

// scanPageSize is the page size of the paged searches (RFC 2696). AD's
// MaxPageSize is 1000 by default; 500 stays well under every server's limit.
const scanPageSize = 500

// cursorVersion is the version of the cursor's JSON form. A cursor of
// another version, dialect or server is not trusted: the next scan is a
// full sweep.
const cursorVersion = 1

// scanCursor is the opaque cursor, as JSON (it is kept in the data file
// across restarts, so the encoding is stable and readable).
type scanCursor struct {
	V       int    `json:"v"`
	Dialect string `json:"dialect"`

	// AD: the DC's dsServiceName and its RootDSE highestCommittedUSN, read
	// before the last search. USNs are per DC, so a cursor from another DC
	// (after a failover) means a full sweep.
	DSA string `json:"dsa,omitempty"`
	USN int64  `json:"usn,omitempty"`

	// OpenLDAP: the next scan asks for lock times at or after Since, less
	// the values listed in Seen (already read, still within the window).
	Since time.Time  `json:"since,omitzero"`
	Seen  []lockSeen `json:"seen,omitempty"`
}

// decodeCursor parses raw; ok is false for nil, garbage, or a cursor of
// another version or dialect.
func decodeCursor(raw []byte, dialect string) (scanCursor, bool) {
	if len(raw) == 0 {
		return scanCursor{}, false
	}
	var c scanCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.V != cursorVersion || c.Dialect != dialect {
		return scanCursor{}, false
	}
	return c, true
}

// scanResult is what one dialect scan produces.
type scanResult struct {
	events []LockoutEvent
	next   scanCursor
	full   bool
	read   int
	// truncated: the server's size limit cut the search short.
	truncated bool
}

// ScanLockouts implements LockoutScanner. A nil or unusable cursor, or
// full, makes a full sweep; otherwise only the entries changed since the
// cursor are read. Only accounts locked right now (the computed state, see
// User.Locked) are reported, each with the full User as FindUser returns it
// and the time the lockout started. On error the caller's cursor comes
// back unchanged.
func (c *Client) ScanLockouts(ctx context.Context, cursor []byte, full bool) ([]LockoutEvent, []byte, ScanStats, error) {
	start := time.Now()
	r, err := c.scanLockouts(ctx, cursor, full)
	stats := ScanStats{Full: r.full, EntriesRead: r.read, Took: time.Since(start)}
	if err != nil {
		return nil, cursor, stats, err
	}
	next, err := json.Marshal(r.next)
	if err != nil {
		return nil, cursor, stats, fmt.Errorf("lockout scan: encode cursor: %w", err)
	}
	return r.events, next, stats, nil
}

// scanLockouts runs one scan (see ScanLockouts) on a pooled connection.
func (c *Client) scanLockouts(ctx context.Context, cursor []byte, full bool) (scanResult, error) {
	prev, ok := decodeCursor(cursor, c.cfg.Dialect)
	if !ok {
		full = true
	}
	var r scanResult
	err := c.run(ctx, "scan_lockouts", func(conn *ldap.Conn) error {
		r = scanResult{full: full} // pool.do may run this twice
		switch d := c.dialect.(type) {
		case *adDialect:
			return c.scanAD(ctx, conn, d, prev, &r)
		case *openldapDialect:
			return c.scanOpenLDAP(ctx, conn, d, prev, &r)
		}
		return fmt.Errorf("lockout scan: dialect %q: %w", c.cfg.Dialect, ErrUnavailable)
	})
	return r, err
}

// pagedSearch runs a subtree search under the base DN one page at a time,
// each page bounded by ctx and the configured timeout, and hands every
// entry to each. It returns the number of entries read, and truncated when
// the server's size limit for the service account cut the search short
// (slapd's default olcSizeLimit of 500 also caps a paged search in total):
// the entries read so far have been handed over, and a warning names the
// fix.
func (c *Client) pagedSearch(ctx context.Context, conn *ldap.Conn, op, filter string, attrs []string, each func(*ldap.Entry)) (n int, truncated bool, err error) {
	n, truncated, err = c.pagedSearchIn(ctx, conn, op, c.cfg.BaseDN, 0, filter, attrs, each)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return n, false, fmt.Errorf("%s: base DN %q does not exist: %w", op, c.cfg.BaseDN, ErrUnavailable)
	}
	if truncated {
		c.warnSizeLimit(op, n)
	}
	return n, truncated, err
}

// sizeLimitFix is how to lift a server's size limit for the service account.
const sizeLimitFix = "lift it for the service account (OpenLDAP: olcLimits: dn.exact=\"<bind_dn>\" size.prtotal=unlimited)"

func (c *Client) warnSizeLimit(op string, n int) {
	c.log.Warn("directory size limit cut a search short; "+sizeLimitFix, "op", op, "entries", n, "bind_dn", c.cfg.BindDN)
}

// pagedSearchIn is pagedSearch under base, asking for at most sizeLimit
// entries (0: no limit of ours). limited reports that the search stopped
// before its end: at sizeLimit, or at the server's own limit (n tells which).
// A missing base is classified as ErrNotFound, with the server's
// noSuchObject in the chain.
func (c *Client) pagedSearchIn(ctx context.Context, conn *ldap.Conn, op, base string, sizeLimit int, filter string, attrs []string, each func(*ldap.Entry)) (n int, limited bool, err error) {
	paging := ldap.NewControlPaging(scanPageSize)
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		sizeLimit, int(c.cfg.Timeout/time.Second), false, filter, attrs, []ldap.Control{paging})
	for {
		var res *ldap.SearchResult
		err := withCtx(ctx, conn, c.cfg.Timeout, func() error {
			var err error
			res, err = conn.Search(req)
			return err
		})
		limited := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && res != nil
		if err != nil && !limited {
			return n, false, classify(op, err)
		}
		for _, e := range res.Entries {
			n++
			each(e)
		}
		if limited {
			return n, true, nil
		}
		ctrl, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if ctrl == nil || len(ctrl.Cookie) == 0 {
			return n, false, nil
		}
		if sizeLimit > 0 && n >= sizeLimit {
			// The server did not stop at the size limit (some count it per
			// page): end the paged search (RFC 2696: size 0) and stop.
			paging.PagingSize = 0
			paging.SetCookie(ctrl.Cookie)
			_ = withCtx(ctx, conn, c.cfg.Timeout, func() error { _, err := conn.Search(req); return err })
			return n, true, nil
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

// readBaseEntry reads one entry with base scope; a missing entry, or one
// that does not match filter, is (nil, nil).
func (c *Client) readBaseEntry(ctx context.Context, conn *ldap.Conn, op, dn, filter string, attrs []string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(c.cfg.Timeout/time.Second), false,
		filter, attrs, nil)
	var res *ldap.SearchResult
	err := withCtx(ctx, conn, c.cfg.Timeout, func() error {
		var err error
		res, err = conn.Search(req)
		return err
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(op, err)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return res.Entries[0], nil
}
