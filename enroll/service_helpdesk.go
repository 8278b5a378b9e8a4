package enroll

import (
	"context"
	"errors"
	"fmt"

	"github.com/replyreset/replyreset/directory"
)

// EnrollInPerson is the helpdesk enrolling a user who stands in front of
// it: the phone is taken as verified. The user must exist in the directory;
// the phone is normalised and checked like on the enrollment page; a
// pending activation link stops working; the act is audited with actor and
// the user gets the confirmation SMS (and email when mail is on).
func (s *Service) EnrollInPerson(ctx context.Context, username, rawPhone, lang, actor string) (Enrollment, error) {
	user, err := s.deps.Directory.FindUser(ctx, username)
	if err != nil {
		if errors.Is(err, directory.ErrNotFound) {
			return Enrollment{}, fmt.Errorf("enroll: user %q is not in the directory: %w", username, err)
		}
		return Enrollment{}, fmt.Errorf("enroll: look up %q: %w", username, err)
	}
	if err := s.checkSelfService(ctx, user, "enroll_in_person", actor); err != nil {
		return Enrollment{}, err
	}
	phone, err := s.enrollablePhone(ctx, user.Username, rawPhone, "sms")
	if err != nil {
		return Enrollment{}, err
	}
	if lang == "" {
		lang = s.set.DefaultLanguage
	} else if lang = normalizeLanguage(lang); lang == "" {
		return Enrollment{}, fmt.Errorf("%w: language must be en or fr", ErrInvalid)
	}
	now := s.deps.Now()
	e := Enrollment{Username: user.Username, Phone: phone, Language: lang, State: StateActive, Method: "helpdesk",
		CreatedAt: now, UpdatedAt: now, VerifiedAt: now, Mail: user.Mail}
	old, err := s.deps.Store.Enrollment(ctx, user.Username)
	switch {
	case err == nil:
		e.CreatedAt = old.CreatedAt
	case !errors.Is(err, ErrNotFound):
		return Enrollment{}, fmt.Errorf("enroll: %s: %w", user.Username, err)
	}
	if err := s.deps.Store.PutEnrollment(ctx, e); err != nil {
		return Enrollment{}, err
	}
	if a, err := s.deps.Store.ActivationByUser(ctx, user.Username); err == nil {
		if err := s.deps.Store.DeleteActivation(ctx, a.TokenHash); err != nil && !errors.Is(err, ErrTokenUnknown) {
			s.deps.Log.Error("enroll: pending activation not removed", "username", user.Username, "err", err)
		}
	}
	s.audit(ctx, Event{Actor: actor, Action: "enroll", Username: e.Username, Phone: e.Phone, Outcome: "ok",
		Detail: "in person (helpdesk)"})
	s.notifyEnrolled(ctx, e, actor, displayName(user))
	return e, nil
}
