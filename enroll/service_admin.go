package enroll

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
)

// The operations of the admin console, the JSON API and the CLI on one
// user. Each is audited with the actor ("admin:jdoe", "api:<token name>",
// "cli:root"), the target, the time and, when the caller put it in ctx
// (WithSource), the source address.

// Admin operation errors, tested with errors.Is.
var (
	// ErrWrongState: the enrollment is not in a state the operation
	// applies to (a *StateError says which).
	ErrWrongState = errors.New("enroll: the enrollment is not in a state this operation applies to")
	// ErrNotLocked: the directory account is not locked; nothing changed.
	ErrNotLocked = errors.New("enroll: the account is not locked")
	// ErrNoUnlock: the directory given to the service cannot unlock.
	ErrNoUnlock = errors.New("enroll: the directory cannot unlock accounts")
)

// StateError says which state refused an operation; it matches
// ErrWrongState.
type StateError struct {
	Username string
	State    State  // the enrollment's state
	Want     string // what the operation needs, e.g. "frozen"
}

func (e *StateError) Error() string {
	return fmt.Sprintf("enroll: the enrollment of %s is %s, not %s", e.Username, e.State, e.Want)
}

func (e *StateError) Is(target error) bool { return target == ErrWrongState }

// DirectoryUnlocker clears a directory lockout (directory.Client has it).
type DirectoryUnlocker interface {
	Unlock(ctx context.Context, u directory.User) error
}

type sourceKey struct{}

// WithSource returns ctx carrying the address the admin acts from (the
// client IP of a console or API request); the audit events of the
// operations run with it record it as Event.SourceIP.
func WithSource(ctx context.Context, sourceIP string) context.Context {
	return context.WithValue(ctx, sourceKey{}, sourceIP)
}

// SourceFrom returns the address WithSource put in ctx, or "".
func SourceFrom(ctx context.Context) string {
	ip, _ := ctx.Value(sourceKey{}).(string)
	return ip
}

// outcomeOf is the audit outcome of an admin operation's error: "ok",
// "denied" for a refusal (bad input, unknown target, wrong state, a number
// that cannot be used), "not_locked", or "error" for a failure.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotLocked):
		return "not_locked"
	case errors.Is(err, ErrNotFound), errors.Is(err, directory.ErrNotFound), errors.Is(err, ErrInvalid),
		errors.Is(err, ErrWrongState), errors.Is(err, ErrPhoneTaken), errors.Is(err, ErrCountryNotAllowed),
		errors.Is(err, ErrAPITokenNameTaken), errors.Is(err, ErrAPITokenOwner), errors.Is(err, ErrAPITokenScope):
		return "denied"
	}
	return "error"
}

// adminEvent is the audit event of an admin operation on username that
// ended with err.
func adminEvent(actor, action, username string, err error) Event {
	ev := Event{Actor: actor, Action: action, Username: username, Outcome: outcomeOf(err)}
	if err != nil {
		ev.Detail = err.Error() // never carries a secret
	}
	return ev
}

// Deactivate turns username's SMS self-service off: the enrollment becomes
// deactivated (its phone leaves the index, so texts from it are answered
// like an unknown number's), the authenticator secret is dropped and a
// pending activation link stops working. A user who had a phone registered
// (active or frozen) is told by SMS. A user with only a pending activation
// is recorded as deactivated. Deactivating again changes nothing and sends
// nothing (audited with outcome "unchanged"). ErrNotFound when the user has
// neither an enrollment nor an activation.
func (s *Service) Deactivate(ctx context.Context, username, actor string) (Enrollment, error) {
	e, prev, linkRemoved, err := s.deactivate(ctx, username)
	ev := adminEvent(actor, "deactivate", username, err)
	if err == nil {
		ev.Username, ev.Phone = e.Username, e.Phone
		switch {
		case prev == StateDeactivated && !linkRemoved:
			ev.Outcome, ev.Detail = "unchanged", "already deactivated"
		case prev == "":
			ev.Detail = "was activated, not enrolled"
		default:
			ev.Detail = "was " + string(prev)
		}
		if linkRemoved {
			ev.Detail += "; pending activation link removed"
		}
	}
	s.audit(ctx, ev)
	if err == nil && OwnsPhone(Enrollment{Phone: e.Phone, State: prev}) {
		s.notice(ctx, actor, e, e.Phone, "sms.deactivated", "deactivated")
	}
	return e, err
}

// deactivate does Deactivate's work. It returns the enrollment, the state
// it had ("" when there was only an activation) and whether a pending
// activation link was removed.
func (s *Service) deactivate(ctx context.Context, username string) (e Enrollment, prev State, linkRemoved bool, err error) {
	if _, err := UsernameKey(username); err != nil {
		return Enrollment{}, "", false, err
	}
	now := s.deps.Now()
	err = s.deps.Store.UpdateEnrollment(ctx, username, func(cur *Enrollment) error {
		prev = cur.State
		if cur.State != StateDeactivated {
			cur.State, cur.UpdatedAt = StateDeactivated, now
			cur.TOTPSealed, cur.LastTOTPStep = nil, 0
		}
		e = *cur
		return nil
	})
	act, actErr := s.deps.Store.ActivationByUser(ctx, username)
	hasActivation := actErr == nil
	if actErr != nil && !errors.Is(actErr, ErrTokenUnknown) && !errors.Is(actErr, ErrNotFound) {
		return Enrollment{}, "", false, fmt.Errorf("enroll: deactivate %s: %w", username, actErr)
	}
	switch {
	case errors.Is(err, ErrNotFound) && hasActivation:
		// Activated, never enrolled: record the decision, so that the
		// list shows it.
		prev = ""
		e = Enrollment{Username: act.Username, Language: act.Language, State: StateDeactivated,
			CreatedAt: now, UpdatedAt: now, Mail: act.Mail}
		if err := s.deps.Store.PutEnrollment(ctx, e); err != nil {
			return Enrollment{}, "", false, fmt.Errorf("enroll: deactivate %s: %w", username, err)
		}
	case errors.Is(err, ErrNotFound):
		return Enrollment{}, "", false, fmt.Errorf("%w: %s has no enrollment and no pending activation", ErrNotFound, username)
	case err != nil:
		return Enrollment{}, "", false, fmt.Errorf("enroll: deactivate %s: %w", username, err)
	}
	if hasActivation {
		if err := s.deps.Store.DeleteActivation(ctx, act.TokenHash); err != nil && !errors.Is(err, ErrTokenUnknown) {
			return Enrollment{}, "", false, fmt.Errorf("enroll: deactivate %s: remove the pending activation: %w", username, err)
		}
		linkRemoved = true
	}
	s.deps.Log.Info("enroll: deactivated", "username", e.Username, "was", prev)
	return e, prev, linkRemoved, nil
}

// Unfreeze makes an enrollment frozen by NOT ME (or by an admin) active
// again, once the helpdesk has checked with the user; a *StateError
// (ErrWrongState) for one that is not frozen.
func (s *Service) Unfreeze(ctx context.Context, username, actor string) (Enrollment, error) {
	e, err := s.updateAdmin(ctx, username, func(cur *Enrollment, now time.Time) error {
		if cur.State != StateFrozen {
			return &StateError{Username: cur.Username, State: cur.State, Want: string(StateFrozen)}
		}
		cur.State, cur.UpdatedAt = StateActive, now
		return nil
	})
	ev := adminEvent(actor, "unfreeze", username, err)
	if err == nil {
		ev.Username, ev.Phone = e.Username, e.Phone
	}
	s.audit(ctx, ev)
	return e, err
}

// updateAdmin changes username's enrollment in one transaction; fn's
// error is returned as it is, a missing enrollment as ErrNotFound.
func (s *Service) updateAdmin(ctx context.Context, username string, fn func(cur *Enrollment, now time.Time) error) (Enrollment, error) {
	if _, err := UsernameKey(username); err != nil {
		return Enrollment{}, err
	}
	var (
		e     Enrollment
		fnErr error
	)
	now := s.deps.Now()
	err := s.deps.Store.UpdateEnrollment(ctx, username, func(cur *Enrollment) error {
		if fnErr = fn(cur, now); fnErr != nil {
			return fnErr
		}
		e = *cur
		return nil
	})
	switch {
	case err == nil:
		return e, nil
	case fnErr != nil:
		return Enrollment{}, fnErr
	case errors.Is(err, ErrNotFound):
		return Enrollment{}, fmt.Errorf("%w: %s has no enrollment", ErrNotFound, username)
	case errors.Is(err, ErrPhoneTaken):
		return Enrollment{}, ErrPhoneTaken
	}
	return Enrollment{}, fmt.Errorf("enroll: update %s: %w", username, err)
}

// ChangePhone replaces the phone of an active or frozen enrollment (a
// *StateError otherwise). The number is normalised and checked like at
// enrollment (a *PhoneError, ErrCountryNotAllowed, ErrPhoneTaken) and taken
// as verified: the admin vouches for it. Both numbers are audited and told
// by SMS (the old one that it no longer resets the password, the new one
// that it now does) and the user's mail gets the phone_changed email. The
// same number again changes nothing (audited "unchanged").
func (s *Service) ChangePhone(ctx context.Context, username, rawPhone, actor string) (Enrollment, error) {
	e, old, err := s.changePhone(ctx, username, rawPhone)
	ev := adminEvent(actor, "change_phone", username, err)
	if err == nil {
		ev.Username, ev.Phone = e.Username, e.Phone
		ev.Detail = "from " + old + " to " + e.Phone
		if old == e.Phone {
			ev.Outcome, ev.Detail = "unchanged", "same number"
		}
	}
	s.audit(ctx, ev)
	if err != nil || old == e.Phone {
		return e, err
	}
	s.deps.Log.Info("enroll: phone changed by an admin", "username", e.Username, "actor", actor)
	s.notifyPhoneChanged(ctx, actor, e, old)
	return e, nil
}

// notifyPhoneChanged tells both numbers by SMS (the old one that it no
// longer resets the password, the new one that it now does) and the
// user's mail, after e's phone changed from old.
func (s *Service) notifyPhoneChanged(ctx context.Context, actor string, e Enrollment, old string) {
	s.notice(ctx, actor, e, old, "sms.phone.changed_away", "phone_changed")
	s.notice(ctx, actor, e, e.Phone, "sms.phone.changed_to", "phone_changed")
	if err := s.mailPhoneChanged(ctx, e, old); err != nil {
		s.deps.Log.Error("enroll: phone_changed email not sent", "username", e.Username, "err", err)
		s.audit(ctx, Event{Actor: actor, Action: "change_phone_notice", Username: e.Username, Outcome: "error",
			Detail: "phone_changed email not sent: " + err.Error()})
	}
}

// changePhone does ChangePhone's work and returns the enrollment and the
// phone it had.
func (s *Service) changePhone(ctx context.Context, username, rawPhone string) (Enrollment, string, error) {
	if _, err := UsernameKey(username); err != nil {
		return Enrollment{}, "", err
	}
	cur, err := s.deps.Store.Enrollment(ctx, username)
	switch {
	case errors.Is(err, ErrNotFound):
		return Enrollment{}, "", fmt.Errorf("%w: %s has no enrollment", ErrNotFound, username)
	case err != nil:
		return Enrollment{}, "", fmt.Errorf("enroll: change phone of %s: %w", username, err)
	case !OwnsPhone(cur):
		return Enrollment{}, "", &StateError{Username: cur.Username, State: cur.State, Want: "active or frozen"}
	}
	phone, err := s.enrollablePhone(ctx, cur.Username, rawPhone, "sms")
	if err != nil {
		return Enrollment{}, "", err
	}
	var old string
	e, err := s.updateAdmin(ctx, username, func(e *Enrollment, now time.Time) error {
		if !OwnsPhone(*e) {
			return &StateError{Username: e.Username, State: e.State, Want: "active or frozen"}
		}
		old = e.Phone
		if e.Phone != phone {
			e.Phone, e.UpdatedAt, e.VerifiedAt = phone, now, now
		}
		return nil
	})
	return e, old, err
}

// notice queues the SMS key to phone about e, unless the number replied
// STOP. A failure is logged and audited ("<action>_notice"), never undone.
func (s *Service) notice(ctx context.Context, actor string, e Enrollment, phone, key, purpose string) {
	lang := e.Language
	if lang == "" {
		lang = s.set.DefaultLanguage
	}
	out, err := s.deps.Store.OptedOut(ctx, phone)
	if err == nil && out {
		s.deps.Log.Info("enroll: notice not sent: the number replied STOP", "username", e.Username, "purpose", purpose)
		return
	}
	if err == nil {
		err = s.queue(ctx, KindSMS, phone, lang, purpose, e.Username,
			s.deps.Messages.Text(lang, key, map[string]string{"username": e.Username}))
	}
	if err != nil {
		s.deps.Log.Error("enroll: notice SMS not queued", "username", e.Username, "purpose", purpose, "err", err)
		s.audit(ctx, Event{Actor: actor, Action: purpose + "_notice", Username: e.Username, Phone: phone,
			Outcome: "error", Detail: "SMS not queued: " + err.Error()})
	}
}

// mailPhoneChanged sends the phone_changed email when mail is on and the
// user has an address (the enrollment's, else the directory's).
func (s *Service) mailPhoneChanged(ctx context.Context, e Enrollment, old string) error {
	if s.deps.Mailer == nil || s.deps.Mails == nil {
		return nil
	}
	name, to := e.Username, e.Mail
	if u, err := s.deps.Directory.FindUser(ctx, e.Username); err == nil {
		name = displayName(u)
		if to == "" {
			to = u.Mail
		}
	}
	if to == "" {
		return nil
	}
	subject, text, html, err := s.deps.Mails.RenderMail(e.Language, templates.MailPhoneChanged, map[string]string{
		"display_name": name,
		"old_phone":    old, // the template masks both
		"new_phone":    e.Phone,
		"time":         templates.FormatDateTime(e.Language, e.UpdatedAt.In(s.set.location())),
	})
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return s.deps.Mailer.Send(ctx, notify.Mail{To: to, Subject: subject, Text: text, HTML: html,
		Kind: templates.MailPhoneChanged, Username: e.Username})
}

// unlocker is the directory as a DirectoryUnlocker, if it is one.
func (s *Service) unlocker() DirectoryUnlocker {
	if s.deps.Unlocker != nil {
		return s.deps.Unlocker
	}
	u, _ := s.deps.Directory.(DirectoryUnlocker)
	return u
}

// UnlockUser clears username's directory lockout without touching the
// password, and returns the account as it now is. An account that is not
// locked gives ErrNotLocked (audited with outcome "not_locked"); an
// unknown one matches both ErrNotFound and directory.ErrNotFound. Audited as
// "unlock".
func (s *Service) UnlockUser(ctx context.Context, username, actor string) (directory.User, error) {
	u, err := s.unlockUser(ctx, username)
	ev := adminEvent(actor, "unlock", username, err)
	if u.Username != "" {
		ev.Username = u.Username
	}
	if err == nil {
		ev.Detail = "locked since " + u.LockoutTime.UTC().Format(time.RFC3339)
		u.Locked, u.LockoutTime = false, time.Time{}
	}
	s.audit(ctx, ev)
	return u, err
}

func (s *Service) unlockUser(ctx context.Context, username string) (directory.User, error) {
	unlocker := s.unlocker()
	if unlocker == nil {
		return directory.User{}, ErrNoUnlock
	}
	if strings.TrimSpace(username) == "" {
		return directory.User{}, Invalidf("username is empty")
	}
	u, err := s.deps.Directory.FindUser(ctx, username)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return directory.User{}, fmt.Errorf("%w: user %q is not in the directory: %w", ErrNotFound, username, err)
	case err != nil:
		return directory.User{}, fmt.Errorf("enroll: look up %q: %w", username, err)
	case !u.Locked:
		return u, fmt.Errorf("%w: %s", ErrNotLocked, u.Username)
	}
	if err := unlocker.Unlock(ctx, u); err != nil {
		return u, fmt.Errorf("enroll: unlock %s: %w", u.Username, err)
	}
	s.deps.Log.Info("enroll: account unlocked by an admin", "username", u.Username)
	return u, nil
}

// RevokeActivation takes back username's pending activation link: it stops
// working at once (its page then says the link is unknown), and nothing
// else changes. Audited as "revoke_activation". ErrNotFound when the user
// has no pending activation.
func (s *Service) RevokeActivation(ctx context.Context, username, actor string) (Activation, error) {
	a, err := s.revokeActivation(ctx, username)
	ev := adminEvent(actor, "revoke_activation", username, err)
	if err == nil {
		ev.Username = a.Username
		ev.Detail = "link sent " + a.CreatedAt.UTC().Format(time.RFC3339) + " by " + a.CreatedBy
	}
	s.audit(ctx, ev)
	return a, err
}

func (s *Service) revokeActivation(ctx context.Context, username string) (Activation, error) {
	if _, err := UsernameKey(username); err != nil {
		return Activation{}, err
	}
	a, err := s.deps.Store.ActivationByUser(ctx, username)
	switch {
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrTokenUnknown):
		return Activation{}, fmt.Errorf("%w: %s has no pending activation", ErrNotFound, username)
	case err != nil:
		return Activation{}, fmt.Errorf("enroll: revoke the activation of %s: %w", username, err)
	}
	switch err := s.deps.Store.DeleteActivation(ctx, a.TokenHash); {
	case errors.Is(err, ErrTokenUnknown):
		return Activation{}, fmt.Errorf("%w: %s has no pending activation", ErrNotFound, username)
	case err != nil:
		return Activation{}, fmt.Errorf("enroll: revoke the activation of %s: %w", username, err)
	}
	s.deps.Log.Info("enroll: activation revoked", "username", a.Username)
	return a, nil
}
