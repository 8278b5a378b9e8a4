package reset

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// POST /reset/verify: the code. Every try is counted against the account
// before it is checked (GuardStore.Attempt: atomic, however many run at
// once); the 5th wrong one within 10 minutes refuses the account's codes
// for 10 minutes. A name without an enrollment is counted the same and its
// code never matches. The right code makes the reset verified, once the
// account is found allowed self-service again, now.
func (s *Site) postVerify(c echo.Context) error {
	st, err := s.open(c)
	if err != nil {
		return s.ended(c)
	}
	if st.Verified {
		return c.Redirect(http.StatusSeeOther, base)
	}
	code := cleanCode(c.FormValue("code"))
	if code == "" {
		return s.codePage(c, http.StatusUnprocessableEntity, st, &templates.Msg{Key: "reset.code.empty"})
	}
	ctx, now := c.Request().Context(), s.now()
	key := "reset-web:code:" + st.accountKey()
	allowed, until, err := s.d.Store.Attempt(ctx, key, now, codeWindow, codeTries, codeBlock)
	if err != nil {
		return s.failed(c, "count the try", err)
	}
	if !allowed {
		return s.locked(c, until)
	}
	right, err := s.checkCode(ctx, st, code, now)
	if err != nil {
		return s.failed(c, "check the code", err)
	}
	if !right {
		// Audited for every name alike (an unknown one without a
		// username), so that a wrong code costs the same whoever it is for.
		ev := enroll.Event{Username: st.Username, Outcome: "bad_code"}
		if !until.IsZero() {
			ev.Outcome, ev.Detail = "locked", fmt.Sprintf("%d wrong codes", codeTries)
		}
		s.audit(c, ev)
		if !until.IsZero() {
			return s.locked(c, until)
		}
		return s.codePage(c, http.StatusUnprocessableEntity, st, &templates.Msg{Key: "reset.code.wrong"})
	}
	if err := s.d.Store.ClearFailures(ctx, key); err != nil {
		s.d.Log.ErrorContext(ctx, "reset: clear the code tries", "err", err)
	}
	if _, _, answered, err := s.allowed(c, st); answered {
		return err
	}
	s.audit(c, enroll.Event{Username: st.Username, Outcome: "code_ok", Detail: st.Method})
	st.Verified, st.Expires = true, now.Add(verifiedTTL)
	if err := s.keep(c, st); err != nil {
		return s.failed(c, "keep the state", err)
	}
	return c.Redirect(http.StatusSeeOther, base)
}

// checkCode reports whether code is the code of st: the one sent, or the
// authenticator app's now (each time step accepted once for the account).
func (s *Site) checkCode(ctx context.Context, st state, code string, now time.Time) (bool, error) {
	sent := enroll.Equal(s.codeHash(st.ID, code), st.CodeHash)
	// The enrollment is read for every name, the app's or not, known or
	// not: the same work before the answer.
	e, err := s.d.Store.Enrollment(ctx, st.accountKey())
	if st.Method != "app" {
		return sent && st.Username != "", nil
	}
	if err != nil {
		return false, fmt.Errorf("read the enrollment: %w", err)
	}
	secret, err := s.d.Sealer.Open(e.TOTPSealed, "totp:"+e.Username)
	if err != nil {
		return false, fmt.Errorf("open the authenticator secret: %w", err)
	}
	step, ok := enroll.VerifyTOTP(string(secret), code, now, 0)
	if !ok {
		return false, nil
	}
	mark := fmt.Sprintf("reset-web:app:%s:%d", st.ID, step)
	err = s.d.Store.UpdateEnrollment(ctx, e.Username, func(cur *enroll.Enrollment) error {
		if cur.LastTOTPStep >= step {
			return errStepUsed
		}
		cur.LastTOTPStep = step
		return nil
	})
	switch {
	case err == nil:
		if _, err := s.d.Store.Allow(ctx, mark, now, codeTTL, 1); err != nil {
			return false, fmt.Errorf("mark the step: %w", err)
		}
		return true, nil
	case !errors.Is(err, errStepUsed):
		return false, fmt.Errorf("record the authenticator step: %w", err)
	}
	// The step was used: by this very reset (a double tap, racing this
	// request) or by anything else, which must not count.
	return s.usedHere(ctx, mark, now)
}

var errStepUsed = errors.New("reset: this authenticator code was used already")

// usedHere waits a little for the request that took the step to say it
// was this reset's (its mark follows its write).
func (s *Site) usedHere(ctx context.Context, mark string, now time.Time) (bool, error) {
	for range 20 {
		n, err := s.d.Store.BudgetHits(ctx, mark, now.Add(time.Millisecond), codeTTL)
		if err != nil || n > 0 {
			return n > 0, err
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return false, err
		}
	}
	return false, nil
}

// pause waits d, or until ctx is done (its error).
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// allowed finds the account of a verified reset again and asks whether it
// may use self-service now: an enrollment still active, an account
// neither disabled nor expired, and the directory's self-service check
// (privileged accounts, allow and deny groups; a refusal is audited). A
// refusal answers the service-desk page and ends the reset (answered).
func (s *Site) allowed(c echo.Context, st state) (directory.User, enroll.Enrollment, bool, error) {
	ctx := c.Request().Context()
	u, err := s.d.Directory.FindUser(ctx, st.Username)
	if err != nil {
		if errors.Is(err, directory.ErrNotFound) {
			return u, enroll.Enrollment{}, true, s.refused(c, st, "the account is gone from the directory")
		}
		return u, enroll.Enrollment{}, true, s.failed(c, "find the account", err)
	}
	e, err := s.d.Store.Enrollment(ctx, st.Username)
	switch {
	case errors.Is(err, enroll.ErrNotFound) || (err == nil && e.State != enroll.StateActive):
		return u, e, true, s.refused(c, st, "no active enrollment (state "+string(e.State)+")")
	case err != nil:
		return u, e, true, s.failed(c, "read the enrollment", err)
	case u.Disabled || u.Expired:
		return u, e, true, s.refused(c, st, "the account is disabled or expired")
	}
	err = enroll.CheckSelfService(ctx, s.d.Directory, s.d.Store, u, actionWebReset,
		enroll.Event{Time: s.now(), Actor: "web:" + c.RealIP(), SourceIP: c.RealIP()})
	switch {
	case errors.Is(err, directory.ErrNoSelfService):
		s.forget(c)
		return u, e, true, s.serviceDesk(c)
	case err != nil:
		return u, e, true, s.failed(c, "self-service check", err)
	}
	return u, e, false, nil
}

// refused ends a reset the account may not finish, audited with why.
func (s *Site) refused(c echo.Context, st state, why string) error {
	s.audit(c, enroll.Event{Username: st.Username, Outcome: "denied", Detail: why})
	s.forget(c)
	return s.serviceDesk(c)
}

func (s *Site) serviceDesk(c echo.Context) error {
	return s.message(c, http.StatusForbidden, view{Title: templates.Msg{Key: "reset.no_self_service.title"},
		Error: &templates.Msg{Key: "reset.no_self_service.text"}, Next: &templates.Msg{Key: "reset.no_self_service.next"},
		Continue: "/", ContinueText: "error.home"})
}

// locked is the page of an account whose codes are refused until until.
func (s *Site) locked(c echo.Context, until time.Time) error {
	s.forget(c)
	return s.message(c, http.StatusTooManyRequests, view{Title: templates.Msg{Key: "err.locked.title"},
		Error: &templates.Msg{Key: "err.locked.text", Args: map[string]string{"time": s.clock(until)}},
		Next:  &templates.Msg{Key: "reset.locked.next"}})
}

// ended answers a post whose reset the browser no longer holds.
func (s *Site) ended(c echo.Context) error {
	s.forget(c)
	return s.form(c, http.StatusConflict, "", &templates.Msg{Key: "reset.err.ended"})
}
