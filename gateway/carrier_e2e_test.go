package gateway_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// The carrier risk check of RESET (sms.lookup) against the fake Twilio,
// asked through the real twilio-go Lookup client at api_base_url, with a
// real directory, store and admin mail (smtptest).

type carrierRig struct {
	*harness
	fake *twiliotest.Fake
	smtp *smtptest.Server
}

func newCarrierRig(t *testing.T, lab *ldaplab.Server, lineType bool, maxAge time.Duration) *carrierRig {
	t.Helper()
	fake := testkit.NewFake(t)
	lookup := twilio.NewLookup(testkit.TwilioSender(t, fake, nil, nil))
	srv := smtptest.New(t, smtptest.Options{})
	mcfg := mailer.DefaultConfig()
	mcfg.Host, mcfg.Port, mcfg.From, mcfg.TLS = srv.Host, srv.Port, "ReplyReset <replyreset@example.test>", mailer.TLSNone
	m, err := mailer.New(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	dcfg := lab.DirectoryConfig()
	dcfg.AdminGroup = lab.AdminGroupDN
	dir, err := directory.New(dcfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	alerts := notify.NewAdminAlerts(dir, m, mails, notify.AdminAlertOptions{Language: "en", Location: time.UTC})
	h := newHarness(t, lab, func(_ *directory.Config, s *gateway.Settings) {
		s.Carrier = gateway.CarrierCheck{Lookup: lookup, LineType: lineType, SIMSwapMaxAge: maxAge, Alerts: alerts}
	})
	return &carrierRig{harness: h, fake: fake, smtp: srv}
}

// outcomes are the audit outcomes of username's events of action.
func (r *carrierRig) outcomes(username, action string) []string {
	var out []string
	for _, ev := range r.audit(username) {
		if ev.Action == action {
			out = append(out, ev.Outcome)
		}
	}
	return out
}

// TestCarrierCheckSIMSwap: a SIM swap more recent than sim_swap_max_age
// blocks the reset (nothing changes in the directory), the admins get one
// mail per swap, and it is audited; an older swap lets the reset through.
func TestCarrierCheckSIMSwap(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		r := newCarrierRig(t, lab, true, 72*time.Hour)
		const phone = "+12015550301"
		username, dn, password := r.user(phone, "en")
		swapped := time.Now().Add(-5 * time.Hour).Truncate(time.Second)
		r.fake.SetLookup(phone, twiliotest.LookupAnswer{LineType: "mobile", SIMSwapAt: swapped, SwappedInPeriod: true})

		reply, _ := r.sms(phone, "RESET")
		if got := oneText(t, reply); got != r.text("sms.reset.sim_swap", nil) {
			t.Fatalf("RESET after a recent SIM swap = %q", got)
		}
		r.expectBind(dn, password, "ok") // nothing was changed
		reqs := r.fake.LookupRequests()
		if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/v2/PhoneNumbers/"+phone ||
			reqs[0].Form.Get("Fields") != "line_type_intelligence,sim_swap" || !reqs[0].Authorized {
			t.Fatalf("Lookup requests = %+v", reqs)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msgs, err := r.smtp.Wait(ctx, 1)
		if err != nil {
			t.Fatalf("no admin mail: %v", err)
		}
		mail := msgs[0]
		when := templates.FormatDateTime("en", swapped.UTC())
		if !strings.Contains(mail.Subject, "SIM swap") || !strings.Contains(mail.Subject, username) ||
			!strings.Contains(mail.Text, when) || strings.Contains(mail.Text, phone) ||
			!strings.Contains(mail.Text, templates.MaskPhone(phone)) {
			t.Fatalf("admin mail: %q\n%s", mail.Subject, mail.Text)
		}
		waitAudit(t, r.harness, username, "sim_swap_alert", "ok")
		if got := r.outcomes(username, "reset"); !slices.Equal(got, []string{"sim_swap"}) {
			t.Fatalf("reset audit outcomes = %v", got)
		}

		// Again: still blocked, no second mail for the same swap.
		reply, _ = r.sms(phone, "reset")
		if got := oneText(t, reply); got != r.text("sms.reset.sim_swap", nil) {
			t.Fatalf("second RESET = %q", got)
		}
		time.Sleep(300 * time.Millisecond)
		if n := len(r.smtp.Messages()); n != 1 {
			t.Fatalf("%d admin mails after two blocked resets, want 1", n)
		}
		r.expectBind(dn, password, "ok")

		// The swap is older than the limit: the reset goes through.
		r.fake.SetLookup(phone, twiliotest.LookupAnswer{LineType: "mobile", SIMSwapAt: time.Now().Add(-10 * 24 * time.Hour)})
		reply, _ = r.sms(phone, "RESET")
		pw := r.texted(reply, phone)
		r.expectBind(dn, pw, "must-change")
		if got := r.outcomes(username, "reset"); !slices.Equal(got, []string{"sim_swap", "sim_swap", "ok"}) {
			t.Fatalf("reset audit outcomes = %v", got)
		}
	})
}

func waitAudit(t *testing.T, h *harness, username, action, outcome string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, _ := h.store.Audit(context.Background(), enroll.AuditFilter{Username: username, Action: action})
		if len(evs) == 1 && evs[0].Outcome == outcome {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit of %s: %+v, want one %s", action, evs, outcome)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCarrierCheckAnswers: each kind of Lookup answer, and Lookup down,
// leads to the documented reply.
func TestCarrierCheckAnswers(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	r := newCarrierRig(t, lab, true, 72*time.Hour)
	for i, tc := range []struct {
		name    string
		answer  twiliotest.LookupAnswer
		reply   string // message key; "" for a reset done
		outcome string // the reset's audit outcome
	}{
		{"mobile, no swap in period", twiliotest.LookupAnswer{LineType: "mobile"}, "", "ok"},
		{"landline", twiliotest.LookupAnswer{LineType: "landline"}, "sms.reset.line_type", "line_type"},
		{"non-fixed VoIP", twiliotest.LookupAnswer{LineType: "nonFixedVoip"}, "sms.reset.line_type", "line_type"},
		{"fixed VoIP", twiliotest.LookupAnswer{LineType: "fixedVoip"}, "sms.reset.line_type", "line_type"},
		{"swap within the carrier's period, no date", twiliotest.LookupAnswer{LineType: "mobile", SwappedInPeriod: true, SwappedPeriod: "PT48H"},
			"sms.reset.sim_swap", "sim_swap"},
		{"no SIM swap data for the carrier", twiliotest.LookupAnswer{LineType: "mobile", NoSIMSwapData: true}, "", "ok"},
		{"Lookup answers 503", twiliotest.LookupAnswer{Status: 503, Code: 20503}, "sms.reset.lookup_down", "lookup_unavailable"},
		{"Lookup refuses the credentials", twiliotest.LookupAnswer{Status: 401, Code: 20003}, "sms.reset.lookup_down", "lookup_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phone := "+1201555041" + string(rune('0'+i))
			username, dn, password := r.user(phone, "en")
			r.fake.SetLookup(phone, tc.answer)
			reply, _ := r.sms(phone, "RESET")
			if tc.reply == "" {
				r.expectBind(dn, r.texted(reply, phone), "must-change")
			} else {
				if got := oneText(t, reply); got != r.text(tc.reply, nil) {
					t.Fatalf("reply = %q, want %s", got, tc.reply)
				}
				r.expectBind(dn, password, "ok")
			}
			if got := r.outcomes(username, "reset"); !slices.Equal(got, []string{tc.outcome}) {
				t.Fatalf("reset audit outcomes = %v, want [%s]", got, tc.outcome)
			}
		})
	}
}

// TestCarrierCheckLookupDown: with the SIM swap check on, a Lookup outage
// (500s, or no answer within the lookup timeout) texts no password (fail
// closed); with only the line type check on, the reset goes on (fail
// open), audited.
func TestCarrierCheckLookupDown(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	closed := newCarrierRig(t, lab, true, 72*time.Hour)
	const phone = "+12015550501"
	_, dn, password := closed.user(phone, "en")
	closed.fake.Down(time.Minute)
	reply, _ := closed.sms(phone, "RESET")
	if got := oneText(t, reply); got != closed.text("sms.reset.lookup_down", nil) {
		t.Fatalf("RESET with Lookup down = %q", got)
	}
	closed.expectBind(dn, password, "ok")
	closed.fake.Up()
	closed.fake.SetDelay(6 * time.Second) // beyond the 4 s lookup timeout
	start := time.Now()
	reply, _ = closed.sms(phone, "RESET")
	took := time.Since(start)
	if got := oneText(t, reply); got != closed.text("sms.reset.lookup_down", nil) || took > 8*time.Second {
		t.Fatalf("RESET with Lookup slow = %q after %v", got, took)
	}
	closed.expectBind(dn, password, "ok")
	closed.fake.SetDelay(0)

	open := newCarrierRig(t, lab, true, 0)
	const phone2 = "+12015550502"
	username, dn2, _ := open.user(phone2, "en")
	open.fake.Down(time.Minute)
	reply, _ = open.sms(phone2, "RESET")
	open.expectBind(dn2, open.texted(reply, phone2), "must-change")
	if got := open.outcomes(username, "carrier_check"); !slices.Equal(got, []string{"lookup_unavailable"}) {
		t.Fatalf("carrier_check audit = %v", got)
	}
	if reqs := open.fake.LookupRequests(); len(reqs) != 1 || reqs[0].Form.Get("Fields") != "line_type_intelligence" {
		t.Fatalf("Lookup requests with only the line type check on: %+v", reqs)
	}
}
