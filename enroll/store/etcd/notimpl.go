package etcd

import (
	"context"
	"errors"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// errNotImplemented is what the parts of the contract not yet on etcd give.
var errNotImplemented = errors.New("enroll: not implemented in the etcd store yet")

func (s *Store) PutAPIToken(context.Context, enroll.APIToken, string) error { return errNotImplemented }
func (s *Store) APITokenByHash(context.Context, string) (enroll.APIToken, string, error) {
	return enroll.APIToken{}, "", errNotImplemented
}
func (s *Store) APITokens(context.Context) ([]enroll.APIToken, error)   { return nil, errNotImplemented }
func (s *Store) TouchAPIToken(context.Context, string, time.Time) error { return errNotImplemented }
func (s *Store) RevokeAPIToken(context.Context, string, time.Time) (enroll.APIToken, error) {
	return enroll.APIToken{}, errNotImplemented
}
func (s *Store) ScheduleSMSPasswordCheck(context.Context, enroll.SMSPasswordCheck) error {
	return errNotImplemented
}
func (s *Store) SMSPasswordCheck(context.Context, string) (enroll.SMSPasswordCheck, error) {
	return enroll.SMSPasswordCheck{}, errNotImplemented
}
func (s *Store) DueSMSPasswordChecks(context.Context, time.Time, int) ([]enroll.SMSPasswordCheck, error) {
	return nil, errNotImplemented
}
func (s *Store) RescheduleSMSPasswordCheck(context.Context, enroll.SMSPasswordCheck) (bool, error) {
	return false, errNotImplemented
}
func (s *Store) FinishSMSPasswordCheck(context.Context, string, time.Time) (bool, error) {
	return false, errNotImplemented
}
