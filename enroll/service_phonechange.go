package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// The safe phone change (DESIGN, "Safer SMS credentials"): on the public
// enrollment site, with no activation link, a user whose enrollment is
// active signs in with the directory password, types the new number and
// confirms the code sent to it; the enrollment then takes the new number,
// and the old number and the mail address are told.
//
// The change in progress is an Activation (the code machinery of the
// enrollment: hashed code, code_ttl, resend_after, max_attempts, lockout),
// stored under Sealer.Hash("phone-change", token): a phone-change token
// opens nothing on /enroll/, whose tokens hash with "token". The token
// lives in the browser's cookie only.

// Authenticator checks a user's directory password (directory.Client).
type Authenticator interface {
	// Authenticate binds as the user: username, UPN or DOMAIN\user.
	Authenticate(ctx context.Context, login, password string) (directory.User, error)
}

// phoneChangeTTL bounds a phone change from sign-in to the right code.
const phoneChangeTTL = time.Hour

// phoneChangeActor is the audit actor of a change the user made.
const phoneChangeActor = "self"

// Phone change errors, tested with errors.Is. A wrong password and an
// unknown user give the same ErrBadLogin, so the answer names no user.
var (
	ErrBadLogin       = errors.New("enroll: wrong username or password")
	ErrNotActive      = errors.New("enroll: no active enrollment: the phone can only be changed on an active enrollment")
	ErrSamePhone      = errors.New("enroll: this number is already the registered one")
	ErrPhoneChangeOff = errors.New("enroll: the directory given to the service cannot check passwords")
)

// PhoneChange is what the phone change pages show.
type PhoneChange struct {
	Username     string
	DisplayName  string
	Language     string
	Current      string   // the registered number (E.164)
	NewPhone     string   // the number being verified ("" before one was typed)
	Methods      []string // how the code may be sent: sms, voice
	CodeExpires  time.Time
	ResendAt     time.Time
	AttemptsLeft int
	LockedUntil  time.Time
	ExpiresAt    time.Time // the end of the sign-in
}

// authenticator is the Authenticator of the phone change, if there is one.
func (s *Service) authenticator() Authenticator {
	if s.deps.Authenticator != nil {
		return s.deps.Authenticator
	}
	a, _ := s.deps.Directory.(Authenticator)
	return a
}

func (s *Service) phoneChangeHash(token string) string {
	return s.deps.Sealer.Hash("phone-change", token)
}

// StartPhoneChange checks login and password against the directory and
// that the user's enrollment is active, and returns the token of a new
// phone change (replacing any pending activation of the user). Errors:
// ErrBadLogin for a wrong password, an unknown user or a locked account
// alike (a locked account's error also wraps directory.ErrLocked); the
// directory's ErrMustChange, ErrDisabled, ErrAccountExpired or
// ErrPasswordExpired, which it gives only for the right password, for an
// account that cannot sign in; ErrNotActive.
// Every attempt is audited ("phone_change_login"), never with the password.
func (s *Service) StartPhoneChange(ctx context.Context, login, password string) (string, PhoneChange, error) {
	token, pc, outcome, err := s.startPhoneChange(ctx, login, password)
	ev := Event{Actor: phoneChangeActor, Action: "phone_change_login", Username: pc.Username, Outcome: outcome}
	if err != nil && outcome != "bad_credentials" {
		ev.Detail = err.Error()
	}
	s.audit(ctx, ev)
	return token, pc, err
}

func (s *Service) startPhoneChange(ctx context.Context, login, password string) (string, PhoneChange, string, error) {
	auth := s.authenticator()
	if auth == nil {
		return "", PhoneChange{}, "error", ErrPhoneChangeOff
	}
	u, err := auth.Authenticate(ctx, login, password)
	pc := PhoneChange{Username: u.Username}
	switch {
	case errors.Is(err, directory.ErrUnavailable), errors.Is(err, directory.ErrTLS):
		return "", pc, "error", fmt.Errorf("enroll: check the password: %w", err)
	case errors.Is(err, directory.ErrInvalidCredentials), errors.Is(err, directory.ErrNotFound),
		errors.Is(err, directory.ErrAmbiguous), errors.Is(err, directory.ErrInvalidInput):
		return "", pc, "bad_credentials", ErrBadLogin
	case errors.Is(err, directory.ErrLocked):
		// The directory says so whatever the password (AD data 775,
		// ppolicy accountLocked): answered as a wrong password, which it
		// may be, so that a locked account and an unknown name look alike.
		return "", pc, "locked", fmt.Errorf("%w: %w", ErrBadLogin, err)
	case errors.Is(err, directory.ErrMustChange):
		return "", pc, "must_change", err
	case errors.Is(err, directory.ErrDisabled),
		errors.Is(err, directory.ErrAccountExpired), errors.Is(err, directory.ErrPasswordExpired):
		return "", pc, "account_unusable", err
	case err != nil:
		return "", pc, "error", fmt.Errorf("enroll: check the password: %w", err)
	}
	e, err := s.deps.Store.Enrollment(ctx, u.Username)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && e.State != StateActive):
		return "", pc, "not_active", ErrNotActive
	case err != nil:
		return "", pc, "error", fmt.Errorf("enroll: phone change of %s: %w", u.Username, err)
	}
	if err := s.checkSelfService(ctx, u, "phone_change", phoneChangeActor); err != nil {
		return "", pc, selfServiceOutcome(err), err
	}
	now := s.deps.Now()
	token := newToken()
	a := Activation{TokenHash: s.phoneChangeHash(token), Username: e.Username, Mail: e.Mail, Language: e.Language,
		CreatedBy: phoneChangeActor, CreatedAt: now, ExpiresAt: now.Add(phoneChangeTTL)}
	if a.Language == "" {
		a.Language = s.set.DefaultLanguage
	}
	if err := s.deps.Store.PutActivation(ctx, a); err != nil {
		return "", pc, "error", fmt.Errorf("enroll: phone change of %s: %w", e.Username, err)
	}
	s.deps.Log.Info("enroll: phone change started", "username", e.Username)
	return token, s.phoneChangePage(a, e.Phone, displayName(u)), "ok", nil
}

// phoneChange returns the live phone change of token and the user's
// enrollment, which must still be active.
func (s *Service) phoneChange(ctx context.Context, token string) (Activation, Enrollment, error) {
	if !wellFormedToken(token) {
		return Activation{}, Enrollment{}, ErrTokenUnknown
	}
	a, err := s.deps.Store.ActivationByToken(ctx, s.phoneChangeHash(token))
	switch {
	case errors.Is(err, ErrTokenUnknown) || errors.Is(err, ErrNotFound):
		return Activation{}, Enrollment{}, ErrTokenUnknown
	case err != nil:
		return Activation{}, Enrollment{}, fmt.Errorf("enroll: read the phone change: %w", err)
	case a.Expired(s.deps.Now()):
		return Activation{}, Enrollment{}, ErrTokenExpired
	}
	e, err := s.deps.Store.Enrollment(ctx, a.Username)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && e.State != StateActive):
		return Activation{}, Enrollment{}, ErrNotActive
	case err != nil:
		return Activation{}, Enrollment{}, fmt.Errorf("enroll: phone change of %s: %w", a.Username, err)
	}
	return a, e, nil
}

// OpenPhoneChange returns the state of token's phone change:
// ErrTokenUnknown, ErrTokenExpired, or ErrNotActive when the enrollment
// was deactivated or frozen since the sign-in.
func (s *Service) OpenPhoneChange(ctx context.Context, token string) (PhoneChange, error) {
	a, e, err := s.phoneChange(ctx, token)
	if err != nil {
		return PhoneChange{}, err
	}
	return s.phoneChangePage(a, e.Phone, s.displayNameOf(ctx, a.Username)), nil
}

// SendPhoneChangeCode checks the new number like an enrollment's (a
// *PhoneError, ErrCountryNotAllowed, ErrPhoneTaken, the line type for
// SMS), and ErrSamePhone for the registered one, then sends it a code by
// SMS or voice call, with the enrollment's rules (resend_after, lockout).
func (s *Service) SendPhoneChangeCode(ctx context.Context, token, rawPhone, method string) (PhoneChange, error) {
	if err := s.checkCodeMethod(method); err != nil {
		return PhoneChange{}, err
	}
	a, e, err := s.phoneChange(ctx, token)
	if err != nil {
		return PhoneChange{}, err
	}
	phone, err := s.enrollablePhone(ctx, a.Username, rawPhone, method)
	if err != nil {
		return PhoneChange{}, err
	}
	if phone == e.Phone {
		return PhoneChange{}, ErrSamePhone
	}
	p, err := s.sendCode(ctx, a.TokenHash, phone, method, true)
	if err != nil {
		return PhoneChange{}, err
	}
	if a, err = s.deps.Store.ActivationByToken(ctx, a.TokenHash); err != nil {
		return PhoneChange{}, fmt.Errorf("enroll: read the phone change: %w", err)
	}
	return s.phoneChangePage(a, e.Phone, p.DisplayName), nil
}

// VerifyPhoneChange checks the code sent to the new number (wrong codes
// count as on the enrollment page: *WrongCodeError, then *LockedError).
// The right code is used up, the active enrollment takes the new number
// (ErrPhoneTaken if another enrollment took it meanwhile; ErrNotActive if
// it is no longer active), the phone change ends, and both numbers and the
// mail address are told. Audited as "change_phone" by "self".
func (s *Service) VerifyPhoneChange(ctx context.Context, token, code string) (Enrollment, error) {
	a, _, err := s.phoneChange(ctx, token)
	if err != nil {
		return Enrollment{}, err
	}
	var answer error
	err = s.updateActivationHash(ctx, a.TokenHash, func(act *Activation, now time.Time) error {
		var err error
		if answer, err = s.tryCode(act, now, code); err != nil {
			return err
		}
		if answer == nil {
			act.CodeHash, act.CodeSealed, act.CodeExpires = "", nil, time.Time{} // single use
		}
		a = *act
		return nil // a wrong try must be stored, so it is not fn's error
	})
	if err != nil {
		return Enrollment{}, err
	}
	if answer != nil {
		var locked *LockedError
		if errors.As(answer, &locked) {
			s.audit(ctx, Event{Actor: phoneChangeActor, Action: "change_phone", Username: a.Username, Phone: a.Phone,
				Outcome: "denied", Detail: "too many wrong codes"})
		}
		return Enrollment{}, answer
	}
	if err := s.checkActivationUser(ctx, a, "phone_change"); err != nil {
		return Enrollment{}, err
	}
	e, old, err := s.selfChangePhone(ctx, a)
	ev := adminEvent(phoneChangeActor, "change_phone", a.Username, err)
	ev.Phone = a.Phone
	if err == nil {
		ev.Detail = "from " + old + " to " + e.Phone + " (directory password and a code sent to the new number)"
	}
	s.audit(ctx, ev)
	if err != nil {
		return Enrollment{}, err
	}
	if err := s.deps.Store.DeleteActivation(ctx, a.TokenHash); err != nil && !errors.Is(err, ErrTokenUnknown) {
		s.deps.Log.Error("enroll: ended phone change not removed", "username", a.Username, "err", err)
	}
	s.deps.Log.Info("enroll: phone changed by the user", "username", e.Username)
	s.notifyPhoneChanged(ctx, phoneChangeActor, e, old)
	return e, nil
}

// selfChangePhone gives the active enrollment of a.Username the verified
// number a.Phone and returns it with the number it had.
func (s *Service) selfChangePhone(ctx context.Context, a Activation) (Enrollment, string, error) {
	var old string
	e, err := s.updateAdmin(ctx, a.Username, func(cur *Enrollment, now time.Time) error {
		if cur.State != StateActive {
			return ErrNotActive
		}
		old = cur.Phone
		cur.Phone, cur.UpdatedAt, cur.VerifiedAt = a.Phone, now, now
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		err = ErrNotActive
	}
	return e, old, err
}

// EndPhoneChange forgets token's phone change (the user signs out).
func (s *Service) EndPhoneChange(ctx context.Context, token string) error {
	if !wellFormedToken(token) {
		return nil
	}
	err := s.deps.Store.DeleteActivation(ctx, s.phoneChangeHash(token))
	if err != nil && !errors.Is(err, ErrTokenUnknown) {
		return fmt.Errorf("enroll: end the phone change: %w", err)
	}
	return nil
}

func (s *Service) phoneChangePage(a Activation, current, name string) PhoneChange {
	now := s.deps.Now()
	p := PhoneChange{Username: a.Username, DisplayName: name, Language: a.Language, Current: current,
		NewPhone: a.Phone, ExpiresAt: a.ExpiresAt, AttemptsLeft: max(0, s.set.MaxAttempts-a.CodeAttempts)}
	for _, m := range s.set.Methods {
		if m == "sms" || m == "voice" {
			p.Methods = append(p.Methods, m)
		}
	}
	if a.LockedUntil.After(now) {
		p.LockedUntil = a.LockedUntil
	}
	if !a.CodeSentAt.IsZero() {
		p.ResendAt = a.CodeSentAt.Add(s.set.ResendAfter)
	}
	if a.CodeHash != "" && now.Before(a.CodeExpires) {
		p.CodeExpires = a.CodeExpires
	}
	return p
}

// displayNameOf is the user's display name, or the username when the
// directory cannot say.
func (s *Service) displayNameOf(ctx context.Context, username string) string {
	if u, err := s.deps.Directory.FindUser(ctx, username); err == nil {
		return displayName(u)
	}
	return username
}
