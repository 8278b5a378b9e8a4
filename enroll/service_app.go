package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StartApp checks the phone like SendCode (nothing is sent to it) and
// returns the authenticator set-up: a TOTP secret made on the first call
// and kept, sealed, in the activation, so reloading the page shows the same
// QR code the app may already have scanned.
func (s *Service) StartApp(ctx context.Context, token, rawPhone string) (AppSetup, error) {
	if !s.set.HasMethod("app") {
		return AppSetup{}, ErrMethodOff
	}
	_, a, err := s.activation(ctx, token)
	if err != nil {
		return AppSetup{}, err
	}
	phone, err := s.enrollablePhone(ctx, a.Username, rawPhone, "app")
	if err != nil {
		return AppSetup{}, err
	}
	var secret string
	err = s.updateActivation(ctx, token, func(act *Activation, _ time.Time) error {
		secret = ""
		if act.Phone != phone {
			// A code sent to the old number must not verify the new one.
			act.CodeHash, act.CodeSealed, act.CodeExpires, act.CodeMethod = "", nil, time.Time{}, ""
			act.Phone = phone
		}
		if act.TOTPSealed != nil {
			plain, err := s.deps.Sealer.Open(act.TOTPSealed, totpPurpose(act.Username))
			if err != nil {
				return fmt.Errorf("enroll: open the stored authenticator secret: %w", err)
			}
			secret = string(plain)
			return nil
		}
		fresh, err := newTOTPSecret(s.set.Issuer, act.Username)
		if err != nil {
			return err
		}
		secret = fresh
		act.TOTPSealed = s.deps.Sealer.Seal([]byte(secret), totpPurpose(act.Username))
		act.LastTOTPStep = 0
		return nil
	})
	if err != nil {
		return AppSetup{}, err
	}
	return appSetup(s.set.Issuer, a.Username, secret)
}

// VerifyApp checks the authenticator code (the current 30-second step or
// one on either side, each step accepted once). A wrong code counts like a
// wrong SMS code; the right one completes the enrollment with the app.
func (s *Service) VerifyApp(ctx context.Context, token, code string) (Page, error) {
	if !s.set.HasMethod("app") {
		return Page{}, ErrMethodOff
	}
	var (
		a      Activation
		answer error
	)
	err := s.updateActivation(ctx, token, func(act *Activation, now time.Time) error {
		answer = nil
		switch {
		case act.LockedUntil.After(now):
			return &LockedError{Until: act.LockedUntil}
		case act.TOTPSealed == nil || act.Phone == "":
			return ErrNoCode
		}
		secret, err := s.deps.Sealer.Open(act.TOTPSealed, totpPurpose(act.Username))
		if err != nil {
			return fmt.Errorf("enroll: open the stored authenticator secret: %w", err)
		}
		if step, ok := VerifyTOTP(string(secret), code, now, act.LastTOTPStep); ok {
			// Recorded now, so the step stays used even if completion
			// fails (phone taken meanwhile) and the user tries again.
			act.LastTOTPStep = step
		} else if act.LastTOTPStep != 0 && replaysStep(string(secret), code, now, act.LastTOTPStep) {
			// The code just accepted, posted again (a double tap): refused,
			// as every used step is, but not counted as a wrong try.
			answer = ErrCodeReplayed
		} else {
			answer = s.wrongTry(act, now)
		}
		a = *act
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	if errors.Is(answer, ErrCodeReplayed) {
		s.deps.Log.Info("enroll: the app code just accepted was posted again", "username", a.Username)
		return Page{}, answer
	}
	if answer != nil {
		s.noteWrongTry(ctx, a, answer)
		return Page{}, answer
	}
	return s.complete(ctx, a, "app")
}
