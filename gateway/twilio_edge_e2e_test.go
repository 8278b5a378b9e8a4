package gateway_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// TestWebhookURLsWithTrailingSlash: an operator who typed
// <public_url>/sms/twilio/ and /sms/twilio/status/ in the Twilio console
// gets working webhooks, checked against the URL exactly as Twilio signed
// it: with the slash. A signature over the other spelling is refused.
func TestWebhookURLsWithTrailingSlash(t *testing.T) {
	r := newSMSRig(t, ldaplab.OpenLDAP(t), gateway.BudgetConfig{})
	const phone = "+12015550311"
	r.user(phone, ldaplab.UserSpec{})
	form := func() url.Values {
		r.seq++
		return url.Values{"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano()+int64(r.seq))},
			"AccountSid": {testkit.AccountSID}, "From": {phone}, "To": {testkit.From}, "Body": {"HELP"}}
	}
	help := r.catalog.Text("en", "sms.help", nil)
	status, texts, raw, err := twiliotest.PostSMS(t.Context(), http.DefaultClient, r.srv.URL+"/sms/twilio/",
		testkit.PublicURL+"/sms/twilio/", testkit.AuthToken, form())
	if err != nil || status != http.StatusOK || len(texts) != 1 || texts[0] != help {
		t.Fatalf("HELP to /sms/twilio/ signed with the slash: %d %v %s", status, err, raw)
	}
	for _, c := range []struct{ post, signed string }{
		{"/sms/twilio/", "/sms/twilio"},
		{"/sms/twilio", "/sms/twilio/"},
	} {
		status, _, _, err := twiliotest.PostSMS(t.Context(), http.DefaultClient, r.srv.URL+c.post, testkit.PublicURL+c.signed, testkit.AuthToken, form())
		if err != nil || status != http.StatusForbidden {
			t.Errorf("posted to %s, signed for %s: %d %v, want 403", c.post, c.signed, status, err)
		}
	}

	// The status callback, configured with a slash: the report is taken
	// (the message is delivered, then redacted).
	_, sid := r.reset(phone)
	if got, err := r.fake.StatusCallbackVia(t.Context(), r.srv.URL+"/sms/twilio/status/", testkit.StatusURL, testkit.AuthToken, sid, "delivered", 0); err != nil || got != http.StatusForbidden {
		t.Errorf("status report to .../status/ signed without the slash: %d %v, want 403", got, err)
	}
	got, err := r.fake.StatusCallbackVia(t.Context(), r.srv.URL+"/sms/twilio/status/", testkit.StatusURL+"/", testkit.AuthToken, sid, "delivered", 0)
	if err != nil || got != http.StatusNoContent {
		t.Fatalf("status report to .../status/ signed with the slash: %d %v, want 204", got, err)
	}
	if m, err := r.store.MessageByProviderID(t.Context(), sid); err != nil || m.Status != enroll.StatusDelivered {
		t.Fatalf("after the report: %+v %v", m, err)
	}
	r.waitRedacted(sid)
}

// TestAdvancedOptOut: with Twilio's Advanced Opt-Out, an inbound STOP,
// START or HELP carries OptOutType and Twilio has already answered it. The
// gateway records the opt-out or opt-in (also for a keyword only Twilio's
// list knows) and answers nothing, so the user never gets two replies.
func TestAdvancedOptOut(t *testing.T) {
	r := newSMSRig(t, ldaplab.OpenLDAP(t), gateway.BudgetConfig{})
	const phone = "+12015550312"
	username, _, _ := r.user(phone, ldaplab.UserSpec{})
	post := func(body, optOutType string) (string, []string) {
		t.Helper()
		r.seq++
		f := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano()+int64(r.seq))},
			"AccountSid": {testkit.AccountSID}, "From": {phone}, "To": {testkit.From}, "Body": {body}}
		if optOutType != "" {
			f.Set("OptOutType", optOutType)
		}
		return r.post(f)
	}
	optedOut := func() bool {
		t.Helper()
		out, err := r.store.OptedOut(t.Context(), phone)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []struct {
		body, optOutType string
		wantOut          bool
	}{
		{"STOP", "STOP", true},
		{"START", "START", false},
		{"desinscription", "STOP", true}, // a keyword of Twilio's list, unknown to the parser
		{"UNSTOP", "START", false},
		{"HELP", "HELP", false},
	} {
		raw, texts := post(c.body, c.optOutType)
		if len(texts) != 0 {
			t.Errorf("%q with OptOutType %s: answered %s, want nothing", c.body, c.optOutType, raw)
		}
		if got := optedOut(); got != c.wantOut {
			t.Errorf("%q with OptOutType %s: opted out %v, want %v", c.body, c.optOutType, got, c.wantOut)
		}
	}
	// Opted out by Twilio's STOP: nothing is answered or done until START.
	post("STOP", "STOP")
	if raw, texts := post("RESET", ""); len(texts) != 0 {
		t.Fatalf("RESET after an Advanced Opt-Out STOP: %s", raw)
	}
	// Without OptOutType (Advanced Opt-Out off) the gateway answers itself.
	if _, texts := post("START", ""); len(texts) != 1 || texts[0] != r.catalog.Text("en", "sms.start", nil) {
		t.Fatalf("START without OptOutType: %q", texts)
	}
	if _, texts := post("HELP", ""); len(texts) != 1 || texts[0] != r.catalog.Text("en", "sms.help", nil) {
		t.Fatalf("HELP without OptOutType: %q", texts)
	}
	var got []string
	evs, err := r.store.Audit(t.Context(), enroll.AuditFilter{Username: username})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		got = append(got, ev.Action)
	}
	if want := "[stop start stop start stop start]"; fmt.Sprint(got) != want {
		t.Errorf("audit actions %v, want %s", got, want)
	}
	if n := len(r.fake.Resources()); n != 0 {
		t.Errorf("%d messages sent, want none", n)
	}
}
