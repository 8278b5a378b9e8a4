package directory

import (
	"context"
	"fmt"
	"strconv"

	"github.com/go-ldap/ldap/v3"
)

// Active Directory lockout scan.
//
// lockoutTime is a replicated attribute, so a lockout gives the user object
// a new uSNChanged (checked on Samba: a bad bind that does not lock leaves
// uSNChanged alone, badPwdCount is not replicated; the locking one bumps
// it). The incremental scan asks for the users with a lockout time changed
// after the cursor's USN; a full sweep asks for every user with a lockout
// time. Both keep only the entries whose constructed
// msDS-User-Account-Control-Computed has UF_LOCKOUT: lockoutTime stays set
// after the lockout duration until the next good logon, and the computed
// attribute cannot be filtered on, only requested by name.
//
// The cursor is the RootDSE highestCommittedUSN read before the search, on
// the same connection: a change committed while the search runs has a
// higher USN and is read by the next scan, so none is missed.

// readUSN reads the DC's identity and highestCommittedUSN from the RootDSE.
func (c *Client) readUSN(ctx context.Context, conn *ldap.Conn) (dsa string, usn int64, err error) {
	e, err := c.readBaseEntry(ctx, conn, "lockout scan: read RootDSE", "", "(objectClass=*)",
		[]string{"highestCommittedUSN", "dsServiceName"})
	if err != nil {
		return "", 0, err
	}
	if e == nil {
		return "", 0, fmt.Errorf("lockout scan: no RootDSE: %w", ErrUnavailable)
	}
	usn, err = strconv.ParseInt(e.GetAttributeValue("highestCommittedUSN"), 10, 64)
	if err != nil || usn <= 0 {
		return "", 0, fmt.Errorf("lockout scan: RootDSE highestCommittedUSN %q is not a USN (is this Active Directory?): %w",
			e.GetAttributeValue("highestCommittedUSN"), ErrUnavailable)
	}
	return e.GetAttributeValue("dsServiceName"), usn, nil
}

func (c *Client) scanAD(ctx context.Context, conn *ldap.Conn, d *adDialect, prev scanCursor, r *scanResult) error {
	dsa, usn, err := c.readUSN(ctx, conn)
	if err != nil {
		return err
	}
	// Another DC (failover), or a DC restored from backup whose USNs went
	// back: the old USN means nothing here.
	if prev.DSA != dsa || prev.USN <= 0 || prev.USN > usn {
		r.full = true
	}
	r.next = scanCursor{V: cursorVersion, Dialect: DialectAD, DSA: dsa, USN: usn}
	if !r.full && prev.USN == usn {
		return nil // nothing at all changed on this DC: no search needed
	}
	var fromUSN int64
	if !r.full {
		fromUSN = prev.USN + 1
	}
	now := c.now()
	r.read, r.truncated, err = c.pagedSearch(ctx, conn, "lockout scan", adLockoutFilter(c.cfg.EffectiveUserFilter(), fromUSN, usn),
		d.attributes(), func(e *ldap.Entry) {
			if u := d.user(conn, e, now); u.Locked {
				r.events = append(r.events, LockoutEvent{User: u, LockedAt: u.LockoutTime})
			}
		})
	if r.truncated && !r.full {
		// Read it all again next time rather than miss the rest.
		r.next.USN = prev.USN
	}
	return err
}
