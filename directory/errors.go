package directory

import (
	"errors"
)

// Sentinel errors. Callers test them with errors.Is; every error that leaves
// this package wraps exactly one of them, except ErrPartial, which also
// carries the kind of the follow-up change that failed.
var (
	ErrNotFound           = errors.New("directory: user not found")
	ErrAmbiguous          = errors.New("directory: more than one entry matches")
	ErrPolicy             = errors.New("directory: password rejected by policy")
	ErrUnavailable        = errors.New("directory: unavailable")
	ErrInsufficientRights = errors.New("directory: insufficient access rights")
	ErrTLS                = errors.New("directory: TLS failure")
	ErrInvalidCredentials = errors.New("directory: invalid credentials")
	// ErrServiceCredentials: the directory refused the service account's
	// password (bind_dn, bind_password); always with ErrUnavailable, never
	// with ErrInvalidCredentials (a user's).
	ErrServiceCredentials = errors.New("invalid credentials for bind_dn")
	ErrMustChange         = errors.New("directory: password must be changed")
	ErrLocked             = errors.New("directory: account locked")
	ErrDisabled           = errors.New("directory: account disabled")
	ErrAccountExpired     = errors.New("directory: account expired")
	ErrPasswordExpired    = errors.New("directory: password expired")

	// ErrInvalidInput: the caller's value cannot be used as asked (an empty
	// or unprintable query, a DN that is not one or lies outside base_dn).
	ErrInvalidInput = errors.New("directory: invalid input")
	// ErrTooMany: a list is larger than the gateway lists at once, or the
	// server's size limit for the service account cut it short.
	ErrTooMany = errors.New("directory: too many entries to list")
)

// PolicyError carries the server's reason for refusing a password.
type PolicyError struct {
	Reason string // the server's own text, e.g. "the password is too short"
}

func (e *PolicyError) Error() string { return "directory: password rejected by policy: " + e.Reason }

// Is makes errors.Is(err, ErrPolicy) true for a *PolicyError.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }

// ErrPartial means the password was set but a follow-up change (a flag, an
// unlock) failed: the new password is in force and must reach the user.
var ErrPartial = errors.New("directory: password set, but a follow-up change failed")
