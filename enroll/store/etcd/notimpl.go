package etcd

import (
	"context"
	"errors"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// errNotImplemented is what the parts of the contract not yet on etcd give.
var errNotImplemented = errors.New("enroll: not implemented in the etcd store yet")

func (s *Store) EnqueueMail(context.Context, enroll.QueuedMail) (uint64, error) {
	return 0, errNotImplemented
}
func (s *Store) DueMail(context.Context, time.Time, int) ([]enroll.QueuedMail, error) {
	return nil, errNotImplemented
}
func (s *Store) UpdateMail(context.Context, uint64, func(*enroll.QueuedMail) error) error {
	return errNotImplemented
}
func (s *Store) QueuedMails(context.Context, int) ([]enroll.QueuedMail, error) {
	return nil, errNotImplemented
}
func (s *Store) PutAPIToken(context.Context, enroll.APIToken, string) error { return errNotImplemented }
func (s *Store) APITokenByHash(context.Context, string) (enroll.APIToken, string, error) {
	return enroll.APIToken{}, "", errNotImplemented
}
func (s *Store) APITokens(context.Context) ([]enroll.APIToken, error)   { return nil, errNotImplemented }
func (s *Store) TouchAPIToken(context.Context, string, time.Time) error { return errNotImplemented }
func (s *Store) RevokeAPIToken(context.Context, string, time.Time) (enroll.APIToken, error) {
	return enroll.APIToken{}, errNotImplemented
}
func (s *Store) RecordLockout(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, errNotImplemented
}
func (s *Store) PurgeLockouts(context.Context, time.Time) (int, error)  { return 0, errNotImplemented }
func (s *Store) MonitorCursor(context.Context, string) ([]byte, error)  { return nil, errNotImplemented }
func (s *Store) SetMonitorCursor(context.Context, string, []byte) error { return errNotImplemented }
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
func (s *Store) RecordReminder(context.Context, string, time.Time, int, time.Time) (bool, error) {
	return false, errNotImplemented
}
func (s *Store) PurgeReminders(context.Context, time.Time) (int, error) { return 0, errNotImplemented }
