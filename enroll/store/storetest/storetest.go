// Package storetest is the conformance suite every enroll.Store
// implementation must pass: the bbolt store today, an etcd store when the
// gateway runs on more than one machine. It pins down the behaviour callers
// rely on (the phone index, case-insensitive usernames, atomic
// check-and-insert, the sliding window, durability) so that implementations
// cannot drift apart.
//
// Use it from the implementation's tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, dir string) enroll.Store {
//			s, err := bolt.Open(filepath.Join(dir, "replyreset.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, func(t *testing.T, dir string, backup []byte) {
//			if err := os.WriteFile(filepath.Join(dir, "replyreset.db"), backup, 0o600); err != nil {
//				t.Fatal(err)
//			}
//		})
//	}
//
// Every method of enroll.Store has cases here; MissingCases (run by the
// suite itself) fails when one has none.
package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
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

// Restorer puts backup, as the store's Backup wrote it, in place as the
// data kept at dir (a fresh, empty directory), so that the Opener then
// opens the copy there. On failure it calls t.Fatal.
type Restorer func(t *testing.T, dir string, backup []byte)

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, open Opener, restore Restorer) {
	if restore == nil {
		t.Fatal("storetest.Run: a Restorer is required (Backup is part of the contract)")
	}
	for _, tt := range suiteCases(restore) {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

type suiteCase struct {
	name string
	fn   func(*testing.T, Opener)
}

// suiteCases lists the suite; restore is only called by the cases that run.
func suiteCases(restore Restorer) []suiteCase {
	return []suiteCase{
		{"Contract/EveryMethodCovered", testEveryMethodCovered},
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
		{"PhoneIndex/ConcurrentClaims", testConcurrentClaims},
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

		{"Session/PutGet", testSessionPutGet},
		{"Session/Expiry", testSessionExpiry},
		{"Session/Update", testSessionUpdate},
		{"Session/Delete", testSessionDelete},
		{"Session/Concurrent", testSessionConcurrent},
		{"Session/InvalidInput", testSessionInvalidInput},
		{"Session/CancelledContext", testSessionCancelled},
		{"Session/Closed", testSessionClosed},
		{"Session/Reopen", testSessionReopen},

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

		{"SealKey/FirstRecorded", testSealKeyFirstRecorded},
		{"SealKey/Concurrent", testSealKeyConcurrent},
		{"SealKey/InvalidInput", testSealKeyInvalidInput},
		{"SealKey/CancelledContext", testSealKeyCancelled},
		{"SealKey/Closed", testSealKeyClosed},
		{"SealKey/Reopen", testSealKeyReopen},
		{"SealKey/Backup", func(t *testing.T, open Opener) { testSealKeyBackup(t, open, restore) }},

		{"Budget/AllOrNothing", testBudgetAllOrNothing},
		{"Budget/ConcurrentExactly", testBudgetConcurrent},
		{"Budget/InvalidInput", testBudgetInvalidInput},
		{"Redaction/Once", testRedactionOnce},
		{"Redaction/InvalidInput", testRedactionInvalidInput},

		{"Backup/RoundTrip", func(t *testing.T, open Opener) { testBackupRoundTrip(t, open, restore) }},
		{"Backup/UnderWrites", func(t *testing.T, open Opener) { testBackupUnderWrites(t, open, restore) }},
		{"Check", testCheck},
		{"Ping", testPing},
		{"Observer", testObserver},
	}
}

func testEveryMethodCovered(t *testing.T, _ Opener) {
	if err := MissingCases(); err != nil {
		t.Error(err)
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

// covers names, for every method of enroll.Store, the suite cases that
// check it. MissingCases fails the suite when a method of the contract has
// no entry here, or an entry names a case the suite does not have, so a
// method cannot join the contract without a case that pins it down.
var covers = map[string][]string{
	"AcquireLease":               {"Lease/Acquire", "Lease/Renew", "Lease/RefusedWhileHeld", "Lease/AfterExpiry", "Lease/Concurrent", "Lease/InvalidInput", "Lease/CancelledContext", "Lease/Closed", "Lease/Reopen"},
	"ReleaseLease":               {"Lease/Release", "Lease/InvalidInput", "Lease/CancelledContext", "Lease/Closed"},
	"PutSession":                 {"Session/PutGet", "Session/Concurrent", "Session/InvalidInput", "Session/CancelledContext", "Session/Closed", "Session/Reopen"},
	"Session":                    {"Session/PutGet", "Session/Expiry", "Session/InvalidInput", "Session/CancelledContext", "Session/Closed", "Session/Reopen"},
	"UpdateSession":              {"Session/Update", "Session/Concurrent", "Session/InvalidInput", "Session/CancelledContext", "Session/Closed"},
	"DeleteSession":              {"Session/Delete", "Session/InvalidInput", "Session/CancelledContext", "Session/Closed", "Session/Reopen"},
	"PurgeSessions":              {"Session/Expiry", "Session/InvalidInput", "Session/CancelledContext", "Session/Closed"},
	"APITokenByHash":             {"APIToken/PutGet", "APIToken/NameUnique", "APIToken/Touch", "APIToken/Revoke", "APIToken/InvalidInput", "APIToken/CancelledContext"},
	"APITokens":                  {"APIToken/PutGet", "APIToken/NameUnique", "APIToken/Revoke", "APIToken/InvalidInput", "APIToken/CancelledContext", "APIToken/Closed"},
	"ActivationByToken":          {"Activation/PutGet", "Activation/ReplacedByReactivation", "Activation/Update", "Activation/UpdateConcurrent", "Activation/Complete", "Activation/CompletePhoneTaken"},
	"ActivationByUser":           {"Activation/PutGet", "Activation/ReplacedByReactivation", "Activation/Update", "Activation/Complete", "Activation/CompletePhoneTaken", "Activation/Delete"},
	"Activations":                {"Activation/List", "Activation/CancelledContext", "Activation/Closed"},
	"Allow":                      {"Allow/ExactLimit", "Allow/RefusedNotRecorded", "Allow/Concurrent", "Purge", "InvalidInput", "CancelledContext"},
	"AppendAudit":                {"Audit/Sequence", "Audit/Filters", "Audit/Walk", "InvalidInput", "CancelledContext", "Closed"},
	"Attempt":                    {"Guard/BlockAtLimit", "Guard/Window", "Guard/BlockedNotCounted", "Guard/Clear", "Guard/Concurrent", "Guard/ConcurrentRefunds"},
	"Audit":                      {"Audit/Sequence", "Audit/Filters", "InvalidInput", "CancelledContext", "Closed", "Reopen"},
	"Backup":                     {"Backup/RoundTrip", "Backup/UnderWrites", "CancelledContext", "Closed"},
	"Blocked":                    {"Guard/BlockAtLimit", "Guard/BlockedNotCounted", "Guard/Clear", "Guard/Concurrent", "Guard/Refund", "Guard/Purge"},
	"BudgetHits":                 {"Budget/AllOrNothing", "Budget/ConcurrentExactly", "Budget/InvalidInput", "CancelledContext", "Closed"},
	"Check":                      {"Check", "Backup/RoundTrip", "Backup/UnderWrites", "CancelledContext", "Closed"},
	"ClearFailures":              {"Guard/Clear", "Guard/InvalidInput", "Guard/CancelledContext", "Guard/Closed"},
	"Close":                      {"Closed", "Reopen", "Activation/Closed", "Outbox/Closed", "MailQueue/Closed", "Guard/Closed"},
	"CompleteActivation":         {"Activation/ReplacedByReactivation", "Activation/Complete", "Activation/CompleteOnce", "Activation/CompletePhoneTaken", "Activation/EndedLinks", "Activation/InvalidInput"},
	"DeleteActivation":           {"Activation/ReplacedByReactivation", "Activation/Delete", "Activation/InvalidInput", "Activation/CancelledContext", "Activation/Closed"},
	"DeleteEnrollment":           {"Enrollment/Delete", "Enrollment/CaseInsensitiveUsername", "PhoneIndex/DeleteFrees", "InvalidInput", "CancelledContext", "Closed"},
	"DueMail":                    {"MailQueue/Due", "MailQueue/UpdateMovesDue", "MailQueue/UpdateConcurrent", "MailQueue/InvalidInput", "MailQueue/CancelledContext", "MailQueue/Closed"},
	"DueMessages":                {"Outbox/Due", "Outbox/UpdateMovesDue", "Outbox/HeldUntilReleased", "Outbox/UpdateConcurrent", "Outbox/InvalidInput", "Outbox/CancelledContext"},
	"DueSMSPasswordChecks":       {"SMSPasswordCheck/ScheduleReplace", "SMSPasswordCheck/Due", "SMSPasswordCheck/RescheduleFinish", "SMSPasswordCheck/Concurrent", "SMSPasswordCheck/InvalidInput", "SMSPasswordCheck/CancelledContext"},
	"EndedLink":                  {"Activation/EndedLinks", "Activation/CancelledContext", "Activation/Closed"},
	"EnqueueMail":                {"MailQueue/Enqueue", "MailQueue/Due", "MailQueue/UpdateMovesDue", "MailQueue/UpdateConcurrent", "MailQueue/InvalidInput", "MailQueue/CancelledContext"},
	"EnqueueMessage":             {"Outbox/Enqueue", "Outbox/Due", "Outbox/UpdateMovesDue", "Outbox/HeldUntilReleased", "Outbox/UpdateConcurrent", "Outbox/ProviderID"},
	"EnqueueRedaction":           {"Redaction/Once", "Redaction/InvalidInput", "CancelledContext", "Closed"},
	"Enrollment":                 {"Enrollment/PutGet", "Enrollment/List", "Enrollment/Delete", "Enrollment/CaseInsensitiveUsername", "Enrollment/Update", "PhoneIndex/ActiveAndFrozenOwn"},
	"EnrollmentByPhone":          {"Enrollment/Delete", "Enrollment/CaseInsensitiveUsername", "Enrollment/Update", "PhoneIndex/ActiveAndFrozenOwn", "PhoneIndex/NewPhoneFreesOld", "PhoneIndex/PendingDoesNotOwn"},
	"Enrollments":                {"Enrollment/List", "Enrollment/CaseInsensitiveUsername", "PhoneIndex/ConcurrentClaims", "InvalidInput", "CancelledContext", "Closed"},
	"FinishSMSPasswordCheck":     {"SMSPasswordCheck/ScheduleReplace", "SMSPasswordCheck/RescheduleFinish", "SMSPasswordCheck/Concurrent", "SMSPasswordCheck/InvalidInput", "SMSPasswordCheck/CancelledContext", "SMSPasswordCheck/Closed"},
	"MarkMessage":                {"Message/FirstDuplicateExpired", "Message/Concurrent", "Purge", "InvalidInput", "CancelledContext", "Closed"},
	"MessageByProviderID":        {"Outbox/Enqueue", "Outbox/UpdateMovesDue", "Outbox/HeldUntilReleased", "Outbox/UpdateConcurrent", "Outbox/ProviderID", "Outbox/InvalidInput"},
	"Messages":                   {"Outbox/Enqueue", "Outbox/UpdateMovesDue", "Outbox/HeldUntilReleased", "Outbox/UpdateConcurrent", "Outbox/ProviderID", "Outbox/Messages"},
	"MonitorCursor":              {"Lockout/MonitorCursor", "Lockout/InvalidInput", "Lockout/CancelledContext", "Lockout/Closed", "Lockout/Reopen"},
	"OptedOut":                   {"OptOut", "InvalidInput", "CancelledContext", "Closed", "Reopen"},
	"Ping":                       {"Ping", "CancelledContext", "Closed"},
	"Purge":                      {"Purge", "Guard/Purge", "InvalidInput", "CancelledContext", "Closed"},
	"PurgeActivations":           {"Activation/Purge", "Activation/EndedLinks", "Activation/PurgeConcurrent", "Activation/InvalidInput", "Activation/CancelledContext", "Activation/Closed"},
	"PurgeLockouts":              {"Lockout/Purge", "Lockout/PurgeConcurrent", "Lockout/InvalidInput", "Lockout/CancelledContext", "Lockout/Closed", "Lockout/Reopen"},
	"PurgeReminders":             {"Reminder/Purge", "Reminder/InvalidInput", "Reminder/CancelledContext", "Reminder/Closed"},
	"PutAPIToken":                {"APIToken/PutGet", "APIToken/NameUnique", "APIToken/Touch", "APIToken/Revoke", "APIToken/ConcurrentNames", "APIToken/InvalidInput"},
	"PutActivation":              {"Activation/PutGet", "Activation/ReplacedByReactivation", "Activation/Update", "Activation/UpdateConcurrent", "Activation/Complete", "Activation/CompleteOnce"},
	"PutEnrollment":              {"Enrollment/PutGet", "Enrollment/List", "Enrollment/Delete", "Enrollment/CaseInsensitiveUsername", "Enrollment/Update", "PhoneIndex/ActiveAndFrozenOwn"},
	"QueuedMails":                {"MailQueue/Enqueue", "MailQueue/UpdateMovesDue", "MailQueue/UpdateConcurrent", "MailQueue/InvalidInput", "MailQueue/CancelledContext", "MailQueue/Closed"},
	"RecordLockout":              {"Lockout/FirstAndDuplicate", "Lockout/Concurrent", "Lockout/Purge", "Lockout/PurgeConcurrent", "Lockout/InvalidInput", "Lockout/CancelledContext"},
	"RecordReminder":             {"Reminder/FirstAndDuplicate", "Reminder/Concurrent", "Reminder/Purge", "Reminder/InvalidInput", "Reminder/CancelledContext", "Reminder/Closed"},
	"RefundAttempt":              {"Guard/ConcurrentRefunds", "Guard/Refund", "Guard/InvalidInput", "Guard/CancelledContext", "Guard/Closed"},
	"RefundBudget":               {"Budget/AllOrNothing", "Budget/InvalidInput", "CancelledContext", "Closed"},
	"RescheduleSMSPasswordCheck": {"SMSPasswordCheck/RescheduleFinish", "SMSPasswordCheck/Concurrent", "SMSPasswordCheck/InvalidInput", "SMSPasswordCheck/CancelledContext", "SMSPasswordCheck/Closed"},
	"RevokeAPIToken":             {"APIToken/Revoke", "APIToken/InvalidInput", "APIToken/CancelledContext", "APIToken/Closed", "APIToken/Reopen"},
	"SMSPasswordCheck":           {"SMSPasswordCheck/ScheduleReplace", "SMSPasswordCheck/Due", "SMSPasswordCheck/RescheduleFinish", "SMSPasswordCheck/Concurrent", "SMSPasswordCheck/InvalidInput", "SMSPasswordCheck/CancelledContext"},
	"ScheduleSMSPasswordCheck":   {"SMSPasswordCheck/ScheduleReplace", "SMSPasswordCheck/Due", "SMSPasswordCheck/RescheduleFinish", "SMSPasswordCheck/Concurrent", "SMSPasswordCheck/InvalidInput", "SMSPasswordCheck/CancelledContext"},
	"SealKey":                    {"SealKey/FirstRecorded", "SealKey/Concurrent", "SealKey/InvalidInput", "SealKey/CancelledContext", "SealKey/Closed", "SealKey/Reopen", "SealKey/Backup"},
	"SetMonitorCursor":           {"Lockout/MonitorCursor", "Lockout/InvalidInput", "Lockout/CancelledContext", "Lockout/Closed", "Lockout/Reopen"},
	"SetObserver":                {"Observer"},
	"SetOptOut":                  {"OptOut", "InvalidInput", "CancelledContext", "Closed", "Reopen"},
	"SpendBudget":                {"Budget/AllOrNothing", "Budget/ConcurrentExactly", "Budget/InvalidInput", "CancelledContext", "Closed"},
	"TouchAPIToken":              {"APIToken/Touch", "APIToken/InvalidInput", "APIToken/CancelledContext", "APIToken/Closed"},
	"UpdateActivation":           {"Activation/ReplacedByReactivation", "Activation/Update", "Activation/UpdateConcurrent", "Activation/CompleteOnce", "Activation/PurgeConcurrent", "Activation/InvalidInput"},
	"UpdateEnrollment":           {"Enrollment/Update", "CancelledContext", "Closed"},
	"UpdateMail":                 {"MailQueue/UpdateMovesDue", "MailQueue/UpdateConcurrent", "MailQueue/InvalidInput", "MailQueue/CancelledContext", "MailQueue/Closed", "MailQueue/Reopen"},
	"UpdateMessage":              {"Outbox/Enqueue", "Outbox/UpdateMovesDue", "Outbox/HeldUntilReleased", "Outbox/UpdateConcurrent", "Outbox/ProviderID", "Outbox/Messages"},
	"WalkAudit":                  {"Audit/Walk", "InvalidInput", "CancelledContext", "Closed"},
}

// MissingCases reports every method of enroll.Store without a case in
// covers, every entry of covers that is no longer a method, and every case
// named there that the suite does not run; nil when the suite covers the
// whole contract.
func MissingCases() error {
	contract := reflect.TypeOf((*enroll.Store)(nil)).Elem()
	have := map[string]bool{}
	for _, c := range suiteCases(nil) {
		have[c.name] = true
	}
	var problems []string
	for i := range contract.NumMethod() {
		name := contract.Method(i).Name
		if len(covers[name]) == 0 {
			problems = append(problems, fmt.Sprintf("enroll.Store.%s has no suite case", name))
		}
	}
	for name, cases := range covers {
		if _, ok := contract.MethodByName(name); !ok {
			problems = append(problems, fmt.Sprintf("covers lists %s, which is not a method of enroll.Store", name))
		}
		for _, c := range cases {
			if !have[c] {
				problems = append(problems, fmt.Sprintf("covers names case %q for %s, which the suite does not have", c, name))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return fmt.Errorf("the store suite does not cover the contract:\n\t%s", strings.Join(problems, "\n\t"))
}
