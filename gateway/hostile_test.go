package gateway_test

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// TestHostileTextsFromEnrolledPhone sends what a hostile or merely odd
// phone sends: right-to-left overrides, emoji, invalid UTF-8, NULs, XML
// that tries to break out of the TwiML reply. Each gets a well-formed TwiML
// answer with one valid UTF-8 message, the password is never changed by a
// text that is not a command, and the audit trail stays valid UTF-8.
func TestHostileTextsFromEnrolledPhone(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), nil)
	const phone = "+12015550140"
	username, dn, password := h.user(phone, "en")
	generic := h.text("sms.generic", nil)
	for _, body := range []string{
		"\u202eTESER",                          // RESET spelled backwards behind a right-to-left override
		"\u202bRESET please\u202c",             // embedded RTL text around a word
		"إعادة تعيين",                          // Arabic "reset"
		"איפוס",                                // Hebrew "reset"
		"🔓", "🙏🙏🙏 " + strings.Repeat("🔑", 500), // emoji only, and many
		"\xff\xfe\xfd", "R\x00ESET", "\xc3\x28\xa0\xa1",
		"</Message></Response><Response><Message>pwned", "]]>&lt;&amp;", "<?xml version=\"1.0\"?>",
		strings.Repeat("A", 1600) + "RESET",
	} {
		r, _ := h.sms(phone, body)
		if r.status != http.StatusOK {
			t.Fatalf("%q: status %d: %s", body, r.status, r.body)
		}
		var doc struct {
			XMLName  xml.Name `xml:"Response"`
			Messages []string `xml:"Message"`
		}
		if err := xml.Unmarshal([]byte(r.body), &doc); err != nil || len(doc.Messages) != 1 {
			t.Fatalf("%q: the reply is not TwiML with one message (%v): %s", body, err, r.body)
		}
		if got := doc.Messages[0]; got != generic || !utf8.ValidString(got) {
			t.Errorf("%q: reply %q, want the generic reply", body, got)
		}
	}
	h.expectBind(dn, password, "ok")
	// A real command wrapped in direction marks and emoji is still the command.
	r, _ := h.sms(phone, "\u200f🔑 reset \u200e")
	pw := h.texted(r, phone)
	h.expectBind(dn, pw, "must-change")
	for _, ev := range h.audit("") {
		for _, s := range []string{ev.Actor, ev.Action, ev.Username, ev.Phone, ev.Outcome, ev.Detail} {
			if !utf8.ValidString(s) {
				t.Errorf("audit event %+v holds invalid UTF-8", ev)
			}
		}
	}
	if evs := h.audit(username); len(evs) != 1 || evs[0].Action != "reset" {
		t.Errorf("audit of %s = %+v, want the one reset", username, evs)
	}
}

// TestWebhookReplayAcrossBodies: a MessageSid already handled is never
// acted on again, even when the replay is re-signed with a different body
// (an attacker holding the auth token still cannot make one message count
// twice).
func TestWebhookReplayAcrossBodies(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), nil)
	const phone = "+12015550141"
	username, _, _ := h.user(phone, "en")
	form := url.Values{"MessageSid": {h.newSID()}, "From": {phone}, "To": {"+12015550000"}, "Body": {"RESET"}}
	h.texted(h.post(form, ""), phone)
	for _, body := range []string{"RESET", "reset", "UNLOCK", "NOT ME"} {
		form.Set("Body", body)
		if r := h.post(form, ""); r.status != http.StatusOK || len(r.texts) != 0 {
			t.Errorf("replayed MessageSid with %q: status %d, %q; want 200 and no message", body, r.status, r.texts)
		}
	}
	if e, err := h.store.Enrollment(context.Background(), username); err != nil || e.State != enroll.StateActive {
		t.Errorf("after replays: %+v, %v; want still active (the NOT ME replay ignored)", e, err)
	}
	if evs := h.audit(username); len(evs) != 1 {
		t.Errorf("audit after replays = %+v, want the one reset", evs)
	}
}

// TestEnumerationProbesSMS texts every command from numbers in each state a
// prober could hope to tell apart: never enrolled, pending (activation
// started), deactivated, and enrolled but texting an unknown word. The
// answers must be identical; the response times are measured and logged
// (timing is reported, not asserted: it is noise-bound on a shared CI host).
func TestEnumerationProbesSMS(t *testing.T) {
	h := newHarness(t, ldaplab.OpenLDAP(t), nil)
	ctx := context.Background()
	const unknown, pending, deactivated, active = "+12015550150", "+12015550151", "+12015550152", "+12015550153"
	now := time.Now()
	for phone, state := range map[string]enroll.State{pending: enroll.StatePending, deactivated: enroll.StateDeactivated} {
		name := h.lab.UniqueName("enum")
		h.lab.AddUser(t, ldaplab.UserSpec{Username: name, Password: "Start#Pass1x", Mail: name + "@example.test"})
		if err := h.store.PutEnrollment(ctx, enroll.Enrollment{Username: name, Phone: phone, Language: "en",
			State: state, Method: "sms", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	h.user(active, "en")

	const rounds = 15
	type probe struct{ from, body string }
	times := map[string][]time.Duration{}
	answers := map[string]string{}
	for range rounds {
		for _, p := range []probe{
			{unknown, "RESET"}, {pending, "RESET"}, {deactivated, "RESET"},
			{unknown, "UNLOCK"}, {pending, "UNLOCK"}, {deactivated, "UNLOCK"},
			{unknown, "STATUS"}, {pending, "STATUS"}, {deactivated, "STATUS"},
			{unknown, "NOT ME"}, {deactivated, "NOT ME"},
			{unknown, "hello"}, {active, "hello"},
		} {
			start := time.Now()
			r, _ := h.sms(p.from, p.body)
			took := time.Since(start)
			who := map[string]string{unknown: "unknown", pending: "pending", deactivated: "deactivated", active: "active"}[p.from]
			key := p.body + " from " + who
			times[p.body] = append(times[p.body], took)
			times[key] = append(times[key], took)
			got := oneText(t, r)
			if prev, seen := answers[p.body]; seen && prev != got {
				t.Errorf("%s: %q, but another sender got %q", key, got, prev)
			}
			answers[p.body] = got
		}
	}
	keys := make([]string, 0, len(times))
	for k := range times {
		if strings.Contains(k, " from ") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("%-26s median %6v  p90 %6v  (%d probes)", k, pct(times[k], 50), pct(times[k], 90), len(times[k]))
	}
}

// pct is the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
