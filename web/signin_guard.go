package web

import (
	"context"
	"errors"
	"time"
)

// LoginGuard counts sign-in attempts before they are tried and blocks
// their keys for a while (enroll.GuardStore).
type LoginGuard interface {
	Attempt(ctx context.Context, key string, now time.Time, window time.Duration, limit int, block time.Duration) (bool, time.Time, error)
	RefundAttempt(ctx context.Context, key string, at, now time.Time) error
	Blocked(ctx context.Context, key string, now time.Time) (time.Time, bool, error)
	ClearFailures(ctx context.Context, key string) error
}

// The sign-in guard of the admin console and the phone change (DESIGN:
// after 5 failures, 10 minutes of refusal). Per account, an attempt is
// counted before its password is tried: the 5th within 10 minutes blocks
// the account for 10 minutes, and attempts beyond are refused unseen by
// the directory, however many run at once. Per client address nothing is
// ever refused (behind a proxy, every admin shares one): past
// addressSlowAfter attempts within 10 minutes, each sign-in from the
// address waits addressDelay before its password is tried, for 10 minutes.
const (
	loginFailLimit   = 5
	loginFailWindow  = 10 * time.Minute
	loginBlock       = 10 * time.Minute
	addressSlowAfter = 20
	addressDelay     = 2 * time.Second
)

// signInAttempt is one sign-in the guard let through, counted as a failure
// until its outcome says otherwise.
type signInAttempt struct {
	g       LoginGuard
	now     func() time.Time
	account string
	address string // "" when the address was slowed down: not counted
	at      time.Time
	// blocks is the end of the account's block this attempt started, if
	// it was the last one allowed.
	blocks time.Time
}

// beginSignIn counts a sign-in for the account and address keys before
// its password is tried. A refused attempt returns nil and the end of the
// account's block; the directory must not be asked.
func beginSignIn(ctx context.Context, g LoginGuard, now func() time.Time, account, address string) (*signInAttempt, time.Time, error) {
	at := now()
	ok, until, err := g.Attempt(ctx, account, at, loginFailWindow, loginFailLimit, loginBlock)
	if err != nil || !ok {
		return nil, until, err
	}
	a := &signInAttempt{g: g, now: now, account: account, address: address, at: at, blocks: until}
	ok, _, err = g.Attempt(ctx, address, at, loginFailWindow, addressSlowAfter, loginBlock)
	if err != nil {
		a.address = ""
		return nil, time.Time{}, errors.Join(err, a.notTried(ctx))
	}
	if !ok {
		a.address = ""
		t := time.NewTimer(addressDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return a, time.Time{}, nil
}

// passwordRight: the directory took the password (whatever it then said
// of the account): the account's failures are forgotten and the address's
// attempt is taken back.
func (a *signInAttempt) passwordRight(ctx context.Context) error {
	err := a.g.ClearFailures(ctx, a.account)
	if a.address != "" {
		err = errors.Join(err, a.g.RefundAttempt(ctx, a.address, a.at, a.now()))
	}
	return err
}

// notTried: the directory gave no answer about the password: the attempt
// is taken back from both keys.
func (a *signInAttempt) notTried(ctx context.Context) error {
	err := a.g.RefundAttempt(ctx, a.account, a.at, a.now())
	if a.address != "" {
		err = errors.Join(err, a.g.RefundAttempt(ctx, a.address, a.at, a.now()))
	}
	return err
}

// failedSignInFloor is the least time a failed sign-in (admin console,
// phone change) takes to answer. A wrong password for a real account costs
// the directory more (AD counts the bad password) than a name nobody has,
// even with the decoy bind, and a locked account answers at once; answering
// all of them no sooner than this hides the difference, and slows guessing
// a little more.
const failedSignInFloor = 200 * time.Millisecond

// waitFloor returns once failedSignInFloor has passed since start.
func waitFloor(ctx context.Context, start time.Time) {
	if d := failedSignInFloor - time.Since(start); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}
