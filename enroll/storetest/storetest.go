// Package storetest is the conformance suite every enroll.Store
// implementation must pass: the bbolt store today, an etcd store when the
// gateway runs on more than one machine. It pins down the behaviour callers
// rely on (the phone index, case-insensitive usernames, atomic
// check-and-insert, the sliding window, durability) so that implementations
// cannot drift apart.
//
// Use it from the implementation's tests:
//
//	func TestBoltStoreConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, dir string) enroll.Store {
//			s, err := enroll.OpenBolt(filepath.Join(dir, "replyreset.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package storetest

import (
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// Opener opens the store under test on the data kept at dir.
//
// Each subtest gives a fresh, empty directory (from t.TempDir). A file-based
// store keeps its files inside it; a networked store uses it as a namespace
// (a key prefix) so that subtests do not see each other's data. The suite
// closes every store it opens, and opens dir again after Close to check that
// the data survived, so an Opener must return a store over the same data
// each time it is given the same dir. On failure it calls t.Fatal.
type Opener func(t *testing.T, dir string) enroll.Store

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Enrollment/PutGet", testPutGet},
		{"Enrollment/List", testList},
		{"Enrollment/Delete", testDelete},
		{"Enrollment/CaseInsensitiveUsername", testCaseInsensitive},
		{"Enrollment/Update", testUpdateEnrollment},
		{"PhoneIndex/ActiveAndFrozenOwn", testActiveOwns},
		{"PhoneIndex/NewPhoneFreesOld", testNewPhoneFreesOld},
		{"PhoneIndex/PendingDoesNotOwn", testPendingDoesNotOwn},
		{"PhoneIndex/DeactivatedFrees", testDeactivatedFrees},
		{"PhoneIndex/TakenChangesNothing", testPhoneTaken},
		{"PhoneIndex/DeleteFrees", testDeleteFreesPhone},
		{"Audit/Sequence", testAuditSequence},
		{"Audit/Filters", testAuditFilters},
		{"Audit/Walk", testWalkAudit},
		{"Message/FirstDuplicateExpired", testMarkMessage},
		{"Message/Concurrent", testMarkMessageConcurrent},
		{"OptOut", testOptOut},
		{"Allow/ExactLimit", testAllowLimit},
		{"Allow/RefusedNotRecorded", testAllowRefusedNotRecorded},
		{"Allow/Concurrent", testAllowConcurrent},
		{"Purge", testPurge},
		{"InvalidInput", testInvalidInput},
		{"CancelledContext", testCancelled},
		{"Closed", testClosed},
		{"Reopen", testReopen},

		{"Activation/PutGet", testActivationPutGet},
		{"Activation/ReplacedByReactivation", testActivationReplace},
		{"Activation/Update", testActivationUpdate},
		{"Activation/UpdateConcurrent", testActivationUpdateConcurrent},
		{"Activation/Complete", testCompleteActivation},
		{"Activation/CompleteOnce", testCompleteActivationOnce},
		{"Activation/CompletePhoneTaken", testCompleteActivationPhoneTaken},
		{"Activation/Delete", testDeleteActivation},
		{"Activation/Purge", testPurgeActivations},
		{"Activation/List", testActivationsList},
		{"Activation/EndedLinks", testEndedLinks},
		{"Activation/PurgeConcurrent", testPurgeActivationsConcurrent},
		{"Activation/InvalidInput", testActivationInvalidInput},
		{"Activation/CancelledContext", testActivationCancelled},
		{"Activation/Closed", testActivationClosed},
		{"Activation/Reopen", testActivationReopen},

		{"Outbox/Enqueue", testOutboxEnqueue},
		{"Outbox/Due", testOutboxDue},
		{"Outbox/UpdateMovesDue", testOutboxUpdate},
		{"Outbox/HeldUntilReleased", testOutboxHeld},
		{"Outbox/UpdateConcurrent", testOutboxUpdateConcurrent},
		{"Outbox/ProviderID", testOutboxProviderID},
		{"Outbox/Messages", testOutboxMessages},
		{"Outbox/InvalidInput", testOutboxInvalidInput},
		{"Outbox/CancelledContext", testOutboxCancelled},
		{"Outbox/Closed", testOutboxClosed},
		{"Outbox/Reopen", testOutboxReopen},

		{"MailQueue/Enqueue", testMailEnqueue},
		{"MailQueue/Due", testMailDue},
		{"MailQueue/UpdateMovesDue", testMailUpdate},
		{"MailQueue/UpdateConcurrent", testMailUpdateConcurrent},
		{"MailQueue/InvalidInput", testMailInvalidInput},
		{"MailQueue/CancelledContext", testMailCancelled},
		{"MailQueue/Closed", testMailClosed},
		{"MailQueue/Reopen", testMailReopen},

		{"Lockout/FirstAndDuplicate", testLockoutFirstAndDuplicate},
		{"Lockout/Concurrent", testLockoutConcurrent},
		{"Lockout/Purge", testLockoutPurge},
		{"Lockout/PurgeConcurrent", testLockoutPurgeConcurrent},
		{"Lockout/MonitorCursor", testMonitorCursor},
		{"Lockout/InvalidInput", testLockoutInvalidInput},
		{"Lockout/CancelledContext", testLockoutCancelled},
		{"Lockout/Closed", testLockoutClosed},
		{"Lockout/Reopen", testLockoutReopen},

		{"SMSPasswordCheck/ScheduleReplace", testSMSCheckScheduleReplace},
		{"SMSPasswordCheck/Due", testSMSCheckDue},
		{"SMSPasswordCheck/RescheduleFinish", testSMSCheckRescheduleFinish},
		{"SMSPasswordCheck/Concurrent", testSMSCheckConcurrent},
		{"SMSPasswordCheck/InvalidInput", testSMSCheckInvalidInput},
		{"SMSPasswordCheck/CancelledContext", testSMSCheckCancelled},
		{"SMSPasswordCheck/Closed", testSMSCheckClosed},
		{"SMSPasswordCheck/Reopen", testSMSCheckReopen},

		{"Reminder/FirstAndDuplicate", testReminderFirstAndDuplicate},
		{"Reminder/Concurrent", testReminderConcurrent},
		{"Reminder/Purge", testReminderPurge},
		{"Reminder/InvalidInput", testReminderInvalidInput},
		{"Reminder/CancelledContext", testReminderCancelled},
		{"Reminder/Closed", testReminderClosed},
		{"Reminder/Reopen", testReminderReopen},

		{"Guard/BlockAtLimit", testGuardBlockAtLimit},
		{"Guard/Window", testGuardWindow},
		{"Guard/BlockedNotCounted", testGuardBlockedNotCounted},
		{"Guard/Clear", testGuardClear},
		{"Guard/Concurrent", testGuardConcurrent},
		{"Guard/ConcurrentRefunds", testGuardConcurrentRefunds},
		{"Guard/Refund", testGuardRefund},
		{"Guard/Purge", testGuardPurge},
		{"Guard/InvalidInput", testGuardInvalidInput},
		{"Guard/CancelledContext", testGuardCancelled},
		{"Guard/Closed", testGuardClosed},
		{"Guard/Reopen", testGuardReopen},

		{"APIToken/PutGet", testTokenPutGet},
		{"APIToken/NameUnique", testTokenNameUnique},
		{"APIToken/Touch", testTokenTouch},
		{"APIToken/Revoke", testTokenRevoke},
		{"APIToken/ConcurrentNames", testTokenConcurrentNames},
		{"APIToken/InvalidInput", testTokenInvalidInput},
		{"APIToken/CancelledContext", testTokenCancelled},
		{"APIToken/Closed", testTokenClosed},
		{"APIToken/Reopen", testTokenReopen},

		{"Lease/Acquire", testLeaseAcquire},
		{"Lease/Renew", testLeaseRenew},
		{"Lease/RefusedWhileHeld", testLeaseRefusedWhileHeld},
		{"Lease/AfterExpiry", testLeaseAfterExpiry},
		{"Lease/Release", testLeaseRelease},
		{"Lease/Concurrent", testLeaseConcurrent},
		{"Lease/InvalidInput", testLeaseInvalidInput},
		{"Lease/CancelledContext", testLeaseCancelled},
		{"Lease/Closed", testLeaseClosed},
		{"Lease/Reopen", testLeaseReopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// t0 is the suite's clock: every "now" is derived from it, never from the
// wall clock, so expiry and windows are exact.
var t0 = time.Date(2025, 3, 14, 10, 42, 0, 0, time.UTC)

// Valid E.164 numbers (the NANP's fictional 555-01xx range, and Paris).
const (
	phone1 = "+12015550101"
	phone2 = "+12015550102"
	phone3 = "+33612345678"
)

// newStore opens a store on a fresh directory, closed when the test ends.
func newStore(t *testing.T, open Opener) (enroll.Store, string) {
	t.Helper()
	dir := t.TempDir()
	return openAt(t, open, dir), dir
}

func openAt(t *testing.T, open Opener, dir string) enroll.Store {
	t.Helper()
	s := open(t, dir)
	if s == nil {
		t.Fatal("Opener returned a nil store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// enrollment is a fixture; pending ones have no verification time.
func enrollment(username, phone string, state enroll.State) enroll.Enrollment {
	e := enroll.Enrollment{
		Username:  username,
		Phone:     phone,
		Language:  "en",
		State:     state,
		Method:    "sms",
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Minute),
	}
	if state != enroll.StatePending {
		e.VerifiedAt = t0.Add(time.Minute)
	}
	return e
}

func put(t *testing.T, s enroll.Store, e enroll.Enrollment) {
	t.Helper()
	if err := s.PutEnrollment(t.Context(), e); err != nil {
		t.Fatalf("PutEnrollment(%s, %s, %s): %v", e.Username, e.Phone, e.State, err)
	}
}

func get(t *testing.T, s enroll.Store, username string) enroll.Enrollment {
	t.Helper()
	e, err := s.Enrollment(t.Context(), username)
	if err != nil {
		t.Fatalf("Enrollment(%s): %v", username, err)
	}
	return e
}

// wantEqual fails unless got and want hold the same values; times are
// compared as instants, since a store may hand back another location.
func wantEqual(t *testing.T, got, want enroll.Enrollment) {
	t.Helper()
	if got.Username != want.Username || got.Phone != want.Phone || got.Language != want.Language ||
		got.State != want.State || got.Method != want.Method || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.UpdatedAt.Equal(want.UpdatedAt) || !got.VerifiedAt.Equal(want.VerifiedAt) {
		t.Errorf("enrollment = %+v\nwant         %+v", got, want)
	}
}

// wantOwner checks which username EnrollmentByPhone gives for phone; ""
// means none (ErrNotFound).
func wantOwner(t *testing.T, s enroll.Store, phone, username string) {
	t.Helper()
	e, err := s.EnrollmentByPhone(t.Context(), phone)
	switch {
	case username == "" && !isNotFound(err):
		t.Errorf("EnrollmentByPhone(%s) = %s, %v; want ErrNotFound", phone, e.Username, err)
	case username != "" && (err != nil || e.Username != username):
		t.Errorf("EnrollmentByPhone(%s) = %q, %v; want %q", phone, e.Username, err, username)
	}
}
