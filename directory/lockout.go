package directory

import (
	"context"
	"time"
)

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

// AdminDirectory lists the people to alert: members of directory.admin_group,
// nested membership included, with their mail addresses.
type AdminDirectory interface {
	AdminContacts(ctx context.Context) ([]User, error)
}
