package enroll

import (
	"context"
	"time"
)

// LockoutRetention is how long a handled lockout event is remembered. An
// event whose lockout time is this old is no longer news: RecordLockout
// never reports it as first, and PurgeLockouts removes it.
const LockoutRetention = 30 * 24 * time.Hour

// LockoutStore keeps what the lockout monitor must not forget across
// restarts: the lockout events already handled, so each is alerted once,
// and the monitor's opaque state (the directory scan cursor, the storm
// window). Implementations must pass the lockout part of storetest.
//
// Usernames match case-insensitively; every "now" comes from the caller
// and must not be zero; bad input gives an error wrapping ErrInvalid, a
// done ctx gives ctx.Err(), a closed store ErrClosed, and none of these
// changes anything.
type LockoutStore interface {
	// RecordLockout records the event (username, lockedAt) and reports
	// whether it is new. Check-and-insert is atomic: of any number of
	// concurrent calls for one event exactly one gets true. Events are
	// told apart by the exact lockedAt, so a later lockout of the same
	// account is a new event. An event whose lockedAt is LockoutRetention
	// or more before now is never first, and is not recorded.
	RecordLockout(ctx context.Context, username string, lockedAt, now time.Time) (first bool, err error)
	// PurgeLockouts forgets the events whose lockedAt is LockoutRetention
	// or more before now and returns how many it removed.
	PurgeLockouts(ctx context.Context, now time.Time) (int, error)

	// MonitorCursor returns the state stored under name (a copy), or nil
	// when there is none.
	MonitorCursor(ctx context.Context, name string) ([]byte, error)
	// SetMonitorCursor stores cursor under name, replacing what was there;
	// a nil or empty cursor deletes it.
	SetMonitorCursor(ctx context.Context, name string, cursor []byte) error
}
