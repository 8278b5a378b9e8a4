package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/replyreset/replyreset/enroll"
)

// covers names, for every method of enroll.Store, the suite cases that
// check it. MissingCases fails the suite when a method of the contract has
// no entry here, or an entry names a case the suite does not have, so a
// method cannot join the contract without a case that pins it down.
var covers = map[string][]string{
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
