package enroll

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"
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

// The authenticator app parameters: RFC 6238 with the defaults every app
// understands (Google and Microsoft Authenticator ignore anything else).
const (
	totpPeriod     = 30 // seconds per time step
	totpSecretSize = 20 // bytes: the HMAC-SHA1 block the RFC recommends
	totpSkew       = 1  // steps accepted on either side of now (clock drift)
	qrSize         = 256
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// totpPurpose is the Sealer purpose of a user's TOTP secret: the secret
// (base32, as the app shows it) is sealed in Activation.TOTPSealed and then
// Enrollment.TOTPSealed for "totp:"+Username.
func totpPurpose(username string) string { return "totp:" + username }

// newTOTPSecret returns a fresh random secret in unpadded base32.
func newTOTPSecret(issuer, username string) (string, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: username,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", fmt.Errorf("enroll: make authenticator secret: %w", err)
	}
	return key.Secret(), nil
}

// appSetup builds the otpauth:// URI (label "issuer:username") and its QR
// code for secret.
func appSetup(issuer, username, secret string) (AppSetup, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return AppSetup{}, errors.New("enroll: authenticator secret is not base32")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: username,
		Period:      totpPeriod,
		Secret:      raw,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return AppSetup{}, fmt.Errorf("enroll: authenticator URI: %w", err)
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, qrSize)
	if err != nil {
		return AppSetup{}, fmt.Errorf("enroll: QR code: %w", err)
	}
	return AppSetup{URI: key.URL(), Secret: key.Secret(), QRPNG: png}, nil
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return -1 // before 1970: no valid step; refuse rather than wrap
	}
	return s / totpPeriod
}

// VerifyTOTP checks an authenticator code against secret (base32) at now,
// accepting the current time step and one on either side, and refusing any
// step at or before lastStep, so that a code seen once (over a shoulder, in
// a log of the SMS) is never accepted again. It returns the step the code
// matched; store it as the new lastStep.
func VerifyTOTP(secret, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	code = cleanCode(code)
	if len(code) != codeDigits {
		return 0, false
	}
	cur := totpStep(now)
	if cur < 0 {
		return 0, false
	}
	// Every candidate is computed and compared, so the time taken does not
	// tell which step (if any) matched.
	var matched int64
	found := false
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		st := cur + d
		if st < 0 || st <= lastStep {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(st), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			matched, found = st, true
		}
	}
	return matched, found
}

// replaysStep reports whether code is the code of step, the step last
// accepted, and that step is still within the window VerifyTOTP accepts
// at now: the same code posted twice in a row.
func replaysStep(secret, code string, now time.Time, step int64) bool {
	code = cleanCode(code)
	if cur := totpStep(now); len(code) != codeDigits || step < 0 || cur-step > totpSkew || step-cur > totpSkew {
		return false
	}
	want, err := hotp.GenerateCodeCustom(secret, uint64(step), totpOpts)
	return err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1
}
