package enroll

import (
	"context"
	"errors"
	"fmt"

	"github.com/replyreset/replyreset/directory"
)

// ActionSelfServiceRefused is the audit action of a self-service act
// refused because the account may not use self-service (a privileged
// account, a deny group, no allow group). Its Detail names the act and
// the reason; it never holds a secret.
const ActionSelfServiceRefused = "self_service_refused"

// Auditor appends audit events (the store).
type Auditor interface {
	AppendAudit(ctx context.Context, ev Event) (uint64, error)
}

// CheckSelfService is the check every self-service act makes at the
// moment of the act (activation, enrollment, helpdesk enroll, RESET,
// UNLOCK, web reset, phone change): nil when u may go on. A refusal is
// audited (ActionSelfServiceRefused, ev's Actor, Phone, Time and SourceIP,
// Detail "act: reason") and returned (it matches
// directory.ErrNoSelfService). A directory error is returned as it is: the
// act must not go on then either. A nil checker refuses everyone.
func CheckSelfService(ctx context.Context, chk directory.SelfServiceChecker, audit Auditor, u directory.User, act string, ev Event) error {
	if chk == nil {
		return fmt.Errorf("%s: no self-service check is configured: %w", act, directory.ErrUnavailable)
	}
	err := chk.CheckSelfService(ctx, u)
	var refused *directory.RefusedError
	if !errors.As(err, &refused) {
		return err
	}
	ev.Action, ev.Username, ev.Outcome = ActionSelfServiceRefused, u.Username, "denied"
	ev.Detail = act + ": " + refused.Error()
	if ev.SourceIP == "" {
		ev.SourceIP = SourceFrom(ctx)
	}
	if _, aerr := audit.AppendAudit(context.WithoutCancel(ctx), ev); aerr != nil {
		return errors.Join(err, fmt.Errorf("audit the refusal: %w", aerr))
	}
	return err
}

// selfService is the checker of the Service: ServiceDeps.SelfService, or
// the Directory when it has the method (directory.Client does).
func (s *Service) selfService() directory.SelfServiceChecker {
	if s.deps.SelfService != nil {
		return s.deps.SelfService
	}
	if c, ok := s.deps.Directory.(directory.SelfServiceChecker); ok {
		return c
	}
	return nil
}

// checkSelfService is CheckSelfService for the Service's acts.
func (s *Service) checkSelfService(ctx context.Context, u directory.User, act, actor string) error {
	return CheckSelfService(ctx, s.selfService(), s.deps.Store, u, act, Event{Time: s.deps.Now(), Actor: actor})
}

// checkActivationUser is the check of the enrollment page's acts (opening
// the link, completing the enrollment) for the user of a.
func (s *Service) checkActivationUser(ctx context.Context, a Activation, act string) error {
	u, err := s.deps.Directory.FindUser(ctx, a.Username)
	if err != nil {
		return fmt.Errorf("enroll: look up %q: %w", a.Username, err)
	}
	return s.checkSelfService(ctx, u, act, "user:"+a.Username)
}

// selfServiceOutcome is the audit outcome of a failed check.
func selfServiceOutcome(err error) string {
	if errors.Is(err, directory.ErrNoSelfService) {
		return "denied"
	}
	return "error"
}
