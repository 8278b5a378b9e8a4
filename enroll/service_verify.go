package enroll

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
)

// SendCode checks the number typed on the page and sends it a 6-digit code
// by SMS or voice call. The same number typed again gets the same code while
// it is valid; another number gets a new one. Every send waits resend_after
// after the previous one, and nothing is sent while the activation is
// locked or to a number that cannot be enrolled.
func (s *Service) SendCode(ctx context.Context, token, rawPhone, method string) (Page, error) {
	if err := s.checkCodeMethod(method); err != nil {
		return Page{}, err
	}
	hash, a, err := s.activation(ctx, token)
	if err != nil {
		return Page{}, err
	}
	phone, err := s.enrollablePhone(ctx, a.Username, rawPhone, method)
	if err != nil {
		return Page{}, err
	}
	return s.sendCode(ctx, hash, phone, method, true)
}

// Resend sends the current code again (a new one if it has expired or died)
// to the number being verified, by SMS or voice call, once resend_after has
// passed since the last send.
func (s *Service) Resend(ctx context.Context, token, method string) (Page, error) {
	if err := s.checkCodeMethod(method); err != nil {
		return Page{}, err
	}
	hash, a, err := s.activation(ctx, token)
	if err != nil {
		return Page{}, err
	}
	if a.Phone == "" {
		return Page{}, ErrNoCode
	}
	// The number may have been enrolled by someone else since the first send.
	phone, err := s.enrollablePhone(ctx, a.Username, a.Phone, method)
	if err != nil {
		return Page{}, err
	}
	return s.sendCode(ctx, hash, phone, method, false)
}

func (s *Service) checkCodeMethod(method string) error {
	if method != "sms" && method != "voice" {
		return fmt.Errorf("%w: method must be sms or voice, not %q", ErrInvalid, method)
	}
	if !s.set.HasMethod(method) {
		return ErrMethodOff
	}
	return nil
}

// enrollablePhone normalises raw and checks that username may enroll it: a
// country allowed, no other user's enrollment owning it, and, for any use
// but "voice", a line that may receive SMS (checkLine). It runs before
// anything is sent, so no message goes to a number that cannot be enrolled.
func (s *Service) enrollablePhone(ctx context.Context, username, raw, use string) (string, error) {
	phone, err := NormalizePhone(raw, s.set.DefaultRegion)
	if err != nil {
		return "", err
	}
	if len(s.set.AllowedCountries) > 0 {
		country := PhoneCountry(phone)
		if country == "" || !slices.ContainsFunc(s.set.AllowedCountries, func(c string) bool {
			return strings.EqualFold(c, country)
		}) {
			return "", ErrCountryNotAllowed
		}
	}
	owner, err := s.deps.Store.EnrollmentByPhone(ctx, phone)
	switch {
	case err == nil && !strings.EqualFold(owner.Username, username):
		return "", ErrPhoneTaken
	case err != nil && !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("enroll: check phone owner: %w", err)
	}
	if err := s.checkLine(ctx, username, phone, use); err != nil {
		return "", err
	}
	return phone, nil
}

// sendTimeout bounds the work a send must finish once started: recording
// the send and queueing the message. It runs on a context detached from
// the request's (context.WithoutCancel), so a browser that gives up on the
// request (a double tap, a closed tab) cannot leave a send recorded but
// never queued.
const sendTimeout = 15 * time.Second

// sendCode records a send to phone (the live code for that number, or a
// new one) in the activation stored under hash and queues it. With
// sameIsRepeat (the phone form), the same number and method asked for
// again within resend_after, while the code lives, is the same request (a
// double tap, a form posted twice): it gets the same page and nothing is
// sent again. Resend asks for another send on purpose, so it waits.
func (s *Service) sendCode(ctx context.Context, hash, phone, method string, sameIsRepeat bool) (Page, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	var (
		a        Activation
		code     string
		repeated bool
		before   time.Time // CodeSentAt before this send, to undo it
	)
	err := s.updateActivationHash(ctx, hash, func(act *Activation, now time.Time) error {
		repeated, before = false, act.CodeSentAt
		if act.LockedUntil.After(now) {
			return &LockedError{Until: act.LockedUntil}
		}
		if !act.CodeSentAt.IsZero() {
			if at := act.CodeSentAt.Add(s.set.ResendAfter); now.Before(at) {
				if sameIsRepeat && act.Phone == phone && act.CodeMethod == method && act.CodeHash != "" && now.Before(act.CodeExpires) {
					repeated = true
					a = *act
					return nil
				}
				return &ResendError{At: at}
			}
		}
		if act.Phone == phone && act.CodeHash != "" && now.Before(act.CodeExpires) {
			plain, err := s.deps.Sealer.Open(act.CodeSealed, codePurpose(act.TokenHash))
			if err != nil {
				return fmt.Errorf("enroll: open the stored code: %w", err)
			}
			code = string(plain)
		} else {
			code = newCode()
			act.Phone = phone
			act.CodeHash = s.deps.Sealer.Hash("code", code)
			act.CodeSealed = s.deps.Sealer.Seal([]byte(code), codePurpose(act.TokenHash))
			act.CodeExpires = now.Add(s.set.CodeTTL)
			act.CodeAttempts = 0
		}
		act.CodeSentAt = now
		act.CodeMethod = method
		a = *act
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	if repeated {
		s.deps.Log.Info("enroll: the same code asked for again at once; not sent twice", "username", a.Username, "method", method)
		return s.page(ctx, a), nil
	}
	kind, key, args := KindSMS, "sms.code", map[string]string{
		"code":    code,
		"minutes": strconv.Itoa(ceilMinutes(a.CodeExpires.Sub(a.CodeSentAt))),
	}
	if method == "voice" {
		kind, key, args = KindCall, "voice.code", map[string]string{"digits": spokenDigits(code)}
	}
	body := s.deps.Messages.Text(a.Language, key, args)
	if err := s.queue(ctx, kind, phone, a.Language, "code", a.Username, body); err != nil {
		// Not sent: the user may ask again at once.
		sentAt := a.CodeSentAt
		if uerr := s.updateActivationHash(ctx, hash, func(act *Activation, _ time.Time) error {
			if act.CodeSentAt.Equal(sentAt) {
				act.CodeSentAt = before
			}
			return nil
		}); uerr != nil {
			s.deps.Log.Error("enroll: undoing a send that was not queued", "username", a.Username, "err", uerr)
		}
		return Page{}, err
	}
	s.deps.Log.Info("enroll: code queued", "username", a.Username, "method", method)
	return s.page(ctx, a), nil
}

// codePurpose seals a code to its activation, so it opens nowhere else.
func codePurpose(tokenHash string) string { return "code:" + tokenHash }

func ceilMinutes(d time.Duration) int {
	return max(1, int((d+time.Minute-1)/time.Minute))
}

// VerifyCode checks the code the user typed. A wrong code counts against
// max_attempts; the last allowed wrong try kills the code and starts a
// lockout_for refusal. The right code completes the enrollment.
func (s *Service) VerifyCode(ctx context.Context, token, code string) (Page, error) {
	var (
		a      Activation
		answer error
	)
	err := s.updateActivation(ctx, token, func(act *Activation, now time.Time) error {
		var err error
		if answer, err = s.tryCode(act, now, code); err != nil {
			return err
		}
		a = *act
		return nil // a wrong try must be stored, so it is not fn's error
	})
	if err != nil {
		return Page{}, err
	}
	if answer != nil {
		s.noteWrongTry(ctx, a, answer)
		return Page{}, answer
	}
	method := a.CodeMethod
	if method == "" {
		method = "sms"
	}
	return s.complete(ctx, a, method)
}

// tryCode checks code against act's live code: an error when no code can
// be tried (lockout, none sent, expired), else the answer to a wrong code
// (wrongTry), nil for the right one.
func (s *Service) tryCode(act *Activation, now time.Time, code string) (answer, err error) {
	switch {
	case act.LockedUntil.After(now):
		return nil, &LockedError{Until: act.LockedUntil}
	case act.CodeHash == "" || act.Phone == "":
		return nil, ErrNoCode
	case !now.Before(act.CodeExpires):
		return nil, ErrCodeExpired
	}
	if !s.codeMatches(code, act.CodeHash) {
		return s.wrongTry(act, now), nil
	}
	return nil, nil
}

// wrongTry counts a wrong code (SMS, call or app) in act and returns the
// answer: tries left, or the lockout that the last try starts, which also
// kills the live code.
func (s *Service) wrongTry(act *Activation, now time.Time) error {
	act.CodeAttempts++
	if act.CodeAttempts < s.set.MaxAttempts {
		return &WrongCodeError{AttemptsLeft: s.set.MaxAttempts - act.CodeAttempts}
	}
	act.CodeHash, act.CodeSealed, act.CodeExpires = "", nil, time.Time{}
	act.CodeAttempts = 0
	act.LockedUntil = now.Add(s.set.LockoutFor)
	return &LockedError{Until: act.LockedUntil}
}

// noteWrongTry records a lockout in the audit trail; single wrong tries
// are only logged.
func (s *Service) noteWrongTry(ctx context.Context, a Activation, answer error) {
	var locked *LockedError
	if errors.As(answer, &locked) {
		s.deps.Log.Warn("enroll: too many wrong codes; activation locked", "username", a.Username, "until", locked.Until)
		s.audit(ctx, Event{Actor: "user:" + a.Username, Action: "enroll_locked", Username: a.Username,
			Phone: a.Phone, Outcome: "denied", Detail: "too many wrong codes"})
		return
	}
	s.deps.Log.Info("enroll: wrong code", "username", a.Username)
}

// complete turns the verified activation a into an active enrollment,
// deleting the activation in the same transaction (the token then stops
// working), and tells the user by SMS and email. Once the code is right it
// runs to the end whatever becomes of the request (sendTimeout).
func (s *Service) complete(ctx context.Context, a Activation, method string) (Page, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	if err := s.checkActivationUser(ctx, a, "enroll"); err != nil {
		return Page{}, err
	}
	now := s.deps.Now()
	e := Enrollment{
		Username:   a.Username,
		Phone:      a.Phone,
		Language:   a.Language,
		State:      StateActive,
		Method:     method,
		CreatedAt:  now,
		UpdatedAt:  now,
		VerifiedAt: now,
		Mail:       a.Mail,
	}
	if e.Language == "" {
		e.Language = s.set.DefaultLanguage
	}
	if method == "app" {
		e.TOTPSealed, e.LastTOTPStep = a.TOTPSealed, a.LastTOTPStep
	}
	old, err := s.deps.Store.Enrollment(ctx, a.Username)
	switch {
	case err == nil && !old.CreatedAt.IsZero():
		e.CreatedAt = old.CreatedAt
	case err != nil && !errors.Is(err, ErrNotFound):
		return Page{}, fmt.Errorf("enroll: complete %s: %w", a.Username, err)
	}
	switch err := s.deps.Store.CompleteActivation(ctx, a.TokenHash, e); {
	case errors.Is(err, ErrTokenUnknown) || errors.Is(err, ErrNotFound):
		return Page{}, s.endedLink(ctx, a.TokenHash) // completed (or replaced) meanwhile: a double submit
	case errors.Is(err, ErrPhoneTaken):
		return Page{}, ErrPhoneTaken
	case err != nil:
		return Page{}, fmt.Errorf("enroll: complete %s: %w", a.Username, err)
	}
	actor := "user:" + a.Username
	s.audit(ctx, Event{Actor: actor, Action: "enroll", Username: a.Username, Phone: e.Phone,
		Outcome: "ok", Detail: "method=" + method})
	s.deps.Log.Info("enroll: enrolled", "username", a.Username, "method", method)

	p := s.page(ctx, Activation{Username: a.Username, Language: e.Language, ExpiresAt: a.ExpiresAt})
	p.Step, p.Phone = StepDone, e.Phone
	s.notifyEnrolled(ctx, e, actor, p.DisplayName)
	return p, nil
}

// notifyEnrolled queues the confirmation SMS and sends the "enrolled"
// email. The enrollment stands whatever happens here: a failed notice is
// logged and audited, never undone.
func (s *Service) notifyEnrolled(ctx context.Context, e Enrollment, actor, displayName string) {
	body := s.deps.Messages.Text(e.Language, "sms.enrolled", nil)
	if err := s.queue(ctx, KindSMS, e.Phone, e.Language, "enrolled", e.Username, body); err != nil {
		s.deps.Log.Error("enroll: confirmation SMS not queued", "username", e.Username, "err", err)
		s.audit(ctx, Event{Actor: actor, Action: "enroll_notice", Username: e.Username, Outcome: "error",
			Detail: "confirmation SMS not queued: " + err.Error()})
	}
	if err := s.mailEnrolled(ctx, e, displayName); err != nil {
		s.deps.Log.Error("enroll: enrolled email not sent", "username", e.Username, "err", err)
		s.audit(ctx, Event{Actor: actor, Action: "enroll_notice", Username: e.Username, Outcome: "error",
			Detail: "enrolled email not sent: " + err.Error()})
	}
}

// mailEnrolled sends the "enrolled" email when mail is on and the user has
// an address.
func (s *Service) mailEnrolled(ctx context.Context, e Enrollment, name string) error {
	if s.deps.Mailer == nil || s.deps.Mails == nil || e.Mail == "" {
		return nil
	}
	subject, text, html, err := s.deps.Mails.RenderMail(e.Language, "enrolled", map[string]string{
		"display_name": name,
		"phone":        e.Phone, // the template masks it
		"method":       e.Method,
		"time":         templates.FormatDateTime(e.Language, e.VerifiedAt.In(s.set.location())),
	})
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return s.deps.Mailer.Send(ctx, notify.Mail{To: e.Mail, Subject: subject, Text: text, HTML: html,
		Kind: templates.MailEnrolled, Username: e.Username})
}
