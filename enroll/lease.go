package enroll

import (
	"context"
	"time"
)

// LeaseStore keeps the leases that stop two processes (two nodes, or two
// runs in one process) from running one singleton job at once: the
// lockout watch, the expiry reminders, the SMS password expiry. A lease is
// a name held by one holder until an expiry time; the holder renews it
// while its job runs and releases it when the job stops, and a holder that
// dies loses it when it expires. Implementations must pass the lease part
// of storetest.
//
// Names and holders are opaque, non-empty keys of at most 512 bytes,
// compared exactly; every "now" comes from the caller and must not be
// zero; bad input gives an error wrapping ErrInvalid, a done ctx gives
// ctx.Err(), a closed store ErrClosed, and none of these changes anything.
type LeaseStore interface {
	// AcquireLease gives holder the lease name until now+ttl when it is
	// free, expired (its expiry is at or before now) or already holder's
	// (a renewal), and reports true; it reports false, changing nothing,
	// when another holder holds it unexpired. Check-and-set is atomic: of
	// any number of concurrent calls by different holders for a free
	// lease exactly one gets true. ttl must be positive.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease ends the lease name if holder holds it (expired or
	// not); a lease another holder holds, or none, is left as it is.
	ReleaseLease(ctx context.Context, name, holder string) error
}
