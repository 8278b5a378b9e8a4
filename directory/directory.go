package directory

import (
	"context"
	"time"
)

// User is one directory account as the gateway needs it.
type User struct {
	DN          string
	Username    string
	DisplayName string
	Mail        string
	Mobile      string
	// Locked reports the computed lock state right now: AD
	// msDS-User-Account-Control-Computed bit 0x10, OpenLDAP
	// pwdAccountLockedTime present and not expired.
	Locked bool
	// LockoutTime is when the current lockout started; zero when not locked.
	LockoutTime time.Time
	// MustChange reports that the password must be changed at next logon
	// (AD pwdLastSet=0, OpenLDAP pwdReset=TRUE).
	MustChange bool
	Disabled   bool
	// Expired: AD accountExpires has passed (OpenLDAP has no account
	// expiry; always false there).
	Expired bool
}

// SetPasswordOptions says what else a password reset does.
type SetPasswordOptions struct {
	MustChange bool // flag "change at next logon"
	Unlock     bool // clear a lockout in the same operation where the dialect allows
	// EnforcePolicy asks the directory to apply the policy a user's own
	// change meets (AD: the policy hints control, so history is checked
	// on a reset). Only for a password the user chose: AD then also
	// applies the minimum password age, which would refuse a second
	// generated RESET within it (a day by default).
	EnforcePolicy bool
}

// Directory is what the rest of the product needs from AD or OpenLDAP.
// Every method honours ctx and returns the typed errors of errors.go.
type Directory interface {
	// FindUser looks a user up by the username attribute.
	FindUser(ctx context.Context, username string) (User, error)
	// FindByMail and FindByMobile look a user up by the configured attributes.
	FindByMail(ctx context.Context, mail string) (User, error)
	FindByMobile(ctx context.Context, mobile string) (User, error)
	// SetPassword replaces the user's password as the service account.
	SetPassword(ctx context.Context, u User, password string, opt SetPasswordOptions) error
	// Unlock clears a lockout without touching the password.
	Unlock(ctx context.Context, u User) error
	// Authenticate binds as the user; errors say why a bind failed
	// (ErrInvalidCredentials, ErrMustChange, ErrLocked, ...). username is
	// the username attribute or, when no user has that username,
	// user@domain (AD userPrincipalName, OpenLDAP mail) or DOMAIN\user.
	Authenticate(ctx context.Context, username, password string) (User, error)
	// Ping checks that the directory answers with the service account.
	Ping(ctx context.Context) error
	Close() error
}
