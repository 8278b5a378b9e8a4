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

// Activate looks username up in the directory, stores a new activation
// (replacing any older one, whose link then stops working) and mails the
// user the link PublicURL/enroll/<token>. Only the token's hash is stored;
// the token exists in clear only in the email (sealed while it waits in
// the mail queue). If the email cannot be sent (or queued) the new
// activation is removed and the previous one, if any, restored.
func (s *Service) Activate(ctx context.Context, username, actor string) (ActivationResult, error) {
	res, outcome, err := s.activate(ctx, username, actor)
	ev := Event{Actor: actor, Action: "activate", Username: username, Outcome: outcome}
	if err != nil {
		ev.Detail = err.Error() // errors here never carry the token
	}
	s.audit(ctx, ev)
	return res, err
}

func (s *Service) activate(ctx context.Context, username, actor string) (ActivationResult, string, error) {
	if s.deps.Mailer == nil || s.deps.Mails == nil {
		return ActivationResult{}, "denied", ErrMailOff
	}
	user, err := s.deps.Directory.FindUser(ctx, username)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return ActivationResult{}, "denied", fmt.Errorf("enroll: user %q is not in the directory: %w", username, err)
	case err != nil:
		return ActivationResult{}, "error", fmt.Errorf("enroll: look up user %q in the directory: %w", username, err)
	case strings.TrimSpace(user.Mail) == "":
		return ActivationResult{}, "denied", ErrNoMail
	}
	if err := s.checkSelfService(ctx, user, "activate", actor); err != nil {
		return ActivationResult{}, selfServiceOutcome(err), err
	}
	if user.Username != "" {
		username = user.Username // the directory's spelling
	}
	lang, chosen := s.set.DefaultLanguage, false
	old, err := s.deps.Store.Enrollment(ctx, username)
	switch {
	case err == nil && old.Language != "":
		lang, chosen = old.Language, true
	case err != nil && !errors.Is(err, ErrNotFound):
		return ActivationResult{}, "error", fmt.Errorf("enroll: activate %s: %w", username, err)
	}

	now := s.deps.Now()
	token := newToken()
	a := Activation{
		TokenHash: s.deps.Sealer.Hash("token", token),
		Username:  username,
		Mail:      user.Mail,
		Language:  lang,
		// The language of an earlier enrollment is the user's.
		LanguageChosen: chosen,
		CreatedBy:      actor,
		CreatedAt:      now,
		ExpiresAt:      now.Add(s.set.ActivationTTL),
	}
	subject, text, html, err := s.deps.Mails.RenderMail(lang, "activation", map[string]string{
		"display_name": displayName(user),
		"username":     username,
		"link":         strings.TrimRight(s.set.PublicURL, "/") + "/enroll/" + token,
		"expires":      templates.FormatDateTime(lang, a.ExpiresAt.In(s.set.location())),
		"helpdesk":     s.set.Helpdesk,
	})
	if err != nil {
		return ActivationResult{}, "error", fmt.Errorf("enroll: render activation email: %w", err)
	}

	previous, err := s.deps.Store.ActivationByUser(ctx, username)
	hadPrevious := err == nil
	if err != nil && !errors.Is(err, ErrTokenUnknown) && !errors.Is(err, ErrNotFound) {
		return ActivationResult{}, "error", fmt.Errorf("enroll: activate %s: %w", username, err)
	}
	if err := s.deps.Store.PutActivation(ctx, a); err != nil {
		return ActivationResult{}, "error", fmt.Errorf("enroll: activate %s: %w", username, err)
	}
	mail := notify.Mail{To: user.Mail, Subject: subject, Text: text, HTML: html, Kind: templates.MailActivation, Username: username}
	if err := s.deps.Mailer.Send(ctx, mail); err != nil {
		// Take the unsent link back, and give the user back a link they
		// may already hold, so a mail outage loses nothing.
		// context.WithoutCancel: the clean-up must run even when ctx
		// ended the send.
		cctx := context.WithoutCancel(ctx)
		if derr := s.deps.Store.DeleteActivation(cctx, a.TokenHash); derr != nil {
			s.deps.Log.Error("enroll: removing an activation whose email failed", "username", username, "err", derr)
		}
		if hadPrevious {
			if perr := s.deps.Store.PutActivation(cctx, previous); perr != nil {
				s.deps.Log.Error("enroll: restoring the previous activation", "username", username, "err", perr)
			}
		}
		return ActivationResult{}, "error", fmt.Errorf("enroll: send the activation email to %s: %w", username, err)
	}
	s.deps.Log.Info("enroll: activation sent", "username", username, "actor", actor, "expires", a.ExpiresAt)
	return ActivationResult{Username: username, Mail: user.Mail, ExpiresAt: a.ExpiresAt}, "ok", nil
}

// Open returns the enrollment page for token; while a code is being
// verified, with what became of the newest code message (Page.Delivery).
func (s *Service) Open(ctx context.Context, token string) (Page, error) {
	_, a, err := s.activation(ctx, token)
	if err != nil {
		return Page{}, err
	}
	if err := s.checkActivationUser(ctx, a, "enroll_open"); err != nil {
		return Page{}, err
	}
	p := s.page(ctx, a)
	if p.Step == StepVerify {
		p.Delivery = s.delivery(ctx, a) // service_delivery.go
	}
	return p, nil
}

// SetLanguage changes the language of the pages, the code messages and the
// enrollment-to-be ("en" or "fr"; a tag such as "fr-CA" counts as "fr"):
// the user's choice, which holds from now on.
func (s *Service) SetLanguage(ctx context.Context, token, lang string) (Page, error) {
	return s.setLanguage(ctx, token, lang, true)
}

// BrowserLanguage is SetLanguage for the language the browser asks for
// (Accept-Language): it changes nothing once the user chose a language.
func (s *Service) BrowserLanguage(ctx context.Context, token, lang string) (Page, error) {
	return s.setLanguage(ctx, token, lang, false)
}

func (s *Service) setLanguage(ctx context.Context, token, lang string, chosen bool) (Page, error) {
	code := normalizeLanguage(lang)
	if code == "" {
		return Page{}, fmt.Errorf("%w: language must be en or fr", ErrInvalid)
	}
	var a Activation
	err := s.updateActivation(ctx, token, func(act *Activation, _ time.Time) error {
		if chosen || !act.LanguageChosen {
			act.Language, act.LanguageChosen = code, act.LanguageChosen || chosen
		}
		a = *act
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	return s.page(ctx, a), nil
}

// normalizeLanguage reduces a tag to a supported language, or "".
func normalizeLanguage(tag string) string {
	primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	primary, _, _ = strings.Cut(primary, "_")
	for _, l := range templates.Languages() {
		if primary == l {
			return l
		}
	}
	return ""
}

// activation returns the live activation of token: ErrTokenUnknown for a
// token never issued, used or replaced, ErrTokenExpired once expired. The
// answer says nothing about the user behind the token.
func (s *Service) activation(ctx context.Context, token string) (string, Activation, error) {
	if !wellFormedToken(token) {
		return "", Activation{}, ErrTokenUnknown
	}
	hash := s.deps.Sealer.Hash("token", token)
	a, err := s.deps.Store.ActivationByToken(ctx, hash)
	switch {
	case errors.Is(err, ErrTokenUnknown) || errors.Is(err, ErrNotFound):
		return "", Activation{}, s.endedLink(ctx, hash)
	case err != nil:
		return "", Activation{}, fmt.Errorf("enroll: read activation: %w", err)
	case a.Expired(s.deps.Now()):
		return "", Activation{}, ErrTokenExpired
	}
	return hash, a, nil
}

// endedLink is the answer to a link with no activation behind it: used by
// a user still enrolled (*LinkUsedError), expired (ErrTokenExpired), else
// ErrTokenUnknown (never issued, replaced, or its user since deactivated).
func (s *Service) endedLink(ctx context.Context, hash string) error {
	l, err := s.deps.Store.EndedLink(ctx, hash)
	switch {
	case err != nil:
		if !errors.Is(err, ErrTokenUnknown) && !errors.Is(err, ErrNotFound) {
			s.deps.Log.Warn("enroll: reading an ended link", "err", err)
		}
		return ErrTokenUnknown
	case l.Reason == LinkExpired:
		return ErrTokenExpired
	case l.Reason != LinkUsed:
		return ErrTokenUnknown
	}
	e, err := s.deps.Store.Enrollment(ctx, l.Username)
	if err != nil || e.State != StateActive {
		return ErrTokenUnknown
	}
	lang := e.Language
	if lang == "" {
		lang = s.set.DefaultLanguage
	}
	return &LinkUsedError{Language: lang, SMSNumber: normalizeSMSNumber(s.set.SMSNumber)}
}

// updateActivation changes token's activation in one store transaction.
// fn gets the time of the change. It may run more than once (the store
// retries a rolled-back transaction), so it must set, not accumulate,
// anything it hands out. An error from fn changes nothing and is returned
// as it is.
func (s *Service) updateActivation(ctx context.Context, token string, fn func(a *Activation, now time.Time) error) error {
	if !wellFormedToken(token) {
		return ErrTokenUnknown
	}
	return s.updateActivationHash(ctx, s.deps.Sealer.Hash("token", token), fn)
}

// updateActivationHash is updateActivation for the activation stored
// under hash.
func (s *Service) updateActivationHash(ctx context.Context, hash string, fn func(a *Activation, now time.Time) error) error {
	var fnErr error
	err := s.deps.Store.UpdateActivation(ctx, hash, func(a *Activation) error {
		now := s.deps.Now()
		if a.Expired(now) {
			fnErr = ErrTokenExpired
		} else {
			fnErr = fn(a, now)
		}
		return fnErr
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil && errors.Is(err, fnErr):
		return fnErr // without the store's prefix: it is the page's answer
	case errors.Is(err, ErrTokenUnknown) || errors.Is(err, ErrNotFound):
		return s.endedLink(ctx, hash)
	}
	return fmt.Errorf("enroll: update activation: %w", err)
}

// page is what the enrollment site shows for activation a. The directory
// gives the display name and the mobile to pre-fill; when it cannot be
// reached the page still works without them.
func (s *Service) page(ctx context.Context, a Activation) Page {
	now := s.deps.Now()
	p := Page{
		Username:       a.Username,
		DisplayName:    a.Username,
		Language:       a.Language,
		LanguageChosen: a.LanguageChosen,
		Step:           StepPhone,
		Methods:        append([]string(nil), s.set.Methods...),
		ExpiresAt:      a.ExpiresAt,
	}
	if p.Language == "" {
		p.Language = s.set.DefaultLanguage
	}
	user, err := s.deps.Directory.FindUser(ctx, a.Username)
	if err != nil {
		s.deps.Log.Warn("enroll: directory lookup for the enrollment page failed", "username", a.Username, "err", err)
	} else {
		p.DisplayName = displayName(user)
		if user.Mobile != "" {
			p.PrefillPhone = user.Mobile
			if e164, err := NormalizePhone(user.Mobile, s.set.DefaultRegion); err == nil {
				p.PrefillPhone = e164
			}
		}
	}
	if a.LockedUntil.After(now) {
		p.LockedUntil = a.LockedUntil
	}
	if a.Phone == "" {
		return p
	}
	p.Step = StepVerify
	p.Phone = a.Phone
	if !a.CodeSentAt.IsZero() {
		p.ResendAt = a.CodeSentAt.Add(s.set.ResendAfter)
	}
	if a.CodeHash != "" && now.Before(a.CodeExpires) {
		p.CodeExpires = a.CodeExpires
	}
	p.AttemptsLeft = max(0, s.set.MaxAttempts-a.CodeAttempts)
	return p
}

func displayName(u directory.User) string {
	if strings.TrimSpace(u.DisplayName) != "" {
		return u.DisplayName
	}
	return u.Username
}

// audit appends ev to the audit trail, with the source address from ctx
// (WithSource) unless ev has one. A failure is logged, not returned: the
// act it records has already happened.
func (s *Service) audit(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = s.deps.Now()
	}
	if ev.SourceIP == "" {
		ev.SourceIP = SourceFrom(ctx)
	}
	if _, err := s.deps.Store.AppendAudit(context.WithoutCancel(ctx), ev); err != nil {
		s.deps.Log.Error("enroll: audit event lost", "action", ev.Action, "username", ev.Username,
			"outcome", ev.Outcome, "err", err)
	}
}

// queue puts an SMS or call to phone in the outbox (ServiceDeps.Outbox,
// which seals body and wakes the sender).
func (s *Service) queue(ctx context.Context, kind, phone, lang, purpose, username, body string) error {
	if s.deps.Outbox == nil {
		return fmt.Errorf("enroll: queue %s: %w", kind, errNoOutbox)
	}
	_, err := s.deps.Outbox.Enqueue(ctx, OutboundMessage{
		Kind:      kind,
		To:        phone,
		Language:  lang,
		Purpose:   purpose,
		Username:  username,
		Priority:  PriorityHigh,
		CreatedAt: s.deps.Now(),
	}, body)
	if err != nil {
		return fmt.Errorf("enroll: queue %s: %w", kind, err)
	}
	return nil
}

// errNoOutbox: the Service was wired without ServiceDeps.Outbox.
var errNoOutbox = errors.New("no outbox is wired")
