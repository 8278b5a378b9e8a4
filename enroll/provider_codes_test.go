package enroll_test

import (
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

// TestProviderCodes: one row per Twilio error code handled, with what it
// means for the user, the outbox and the admins. 30007 (filtered by the
// carrier) is not "phone off": no voice call is offered, admins are told.
func TestProviderCodes(t *testing.T) {
	type row struct {
		reason              enroll.DeliveryReason
		final, voice, alert bool
	}
	want := map[int]row{
		21211: {enroll.ReasonInvalidNumber, true, false, false},
		21408: {enroll.ReasonUndelivered, true, false, true},
		21610: {enroll.ReasonOptedOut, true, true, false},
		21612: {enroll.ReasonNotMobile, true, true, false},
		21614: {enroll.ReasonNotMobile, true, true, false},
		13224: {enroll.ReasonInvalidNumber, true, false, false},
		20003: {enroll.ReasonUndelivered, false, false, false},
		20404: {enroll.ReasonUndelivered, false, false, false},
		20429: {enroll.ReasonUndelivered, false, false, false},
		30001: {enroll.ReasonUndelivered, false, true, true},
		30002: {enroll.ReasonUndelivered, false, true, true},
		30003: {enroll.ReasonUndelivered, false, true, false},
		30004: {enroll.ReasonUndelivered, false, true, false},
		30005: {enroll.ReasonInvalidNumber, false, false, false},
		30006: {enroll.ReasonNotMobile, false, true, false},
		30007: {enroll.ReasonFiltered, false, false, true},
		30008: {enroll.ReasonUndelivered, false, true, false},
		30034: {enroll.ReasonFiltered, false, false, true},
	}
	rows := enroll.ProviderCodes()
	if len(rows) != len(want) {
		t.Errorf("the table has %d rows, the test %d: every row needs its case", len(rows), len(want))
	}
	seen := map[int]bool{}
	for _, pc := range rows {
		if seen[pc.Code] {
			t.Errorf("code %d has two rows", pc.Code)
		}
		seen[pc.Code] = true
		w, ok := want[pc.Code]
		if !ok {
			t.Errorf("code %d (%s) has no case here", pc.Code, pc.Meaning)
			continue
		}
		got := row{pc.Reason, pc.Final, pc.Voice, pc.Alert}
		if got != w || pc.Meaning == "" {
			t.Errorf("code %d (%s) = %+v, want %+v", pc.Code, pc.Meaning, got, w)
		}
		if lp, ok := enroll.LookupProviderCode(pc.Code); !ok || lp != pc {
			t.Errorf("LookupProviderCode(%d) = %+v, %v", pc.Code, lp, ok)
		}
	}
	for _, code := range []int{0, 1, 30009, 99999} {
		if _, ok := enroll.LookupProviderCode(code); ok {
			t.Errorf("LookupProviderCode(%d) found a row", code)
		}
	}
}
