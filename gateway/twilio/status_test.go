package twilio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// statusServer serves a StatusHandler at its own URL, which is also the
// public URL Twilio signs. It returns the callback URL.
func statusServer(t *testing.T, store twilio.StatusStore, onFinal func(context.Context, enroll.OutboundMessage)) string {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h = twilio.NewStatusHandler(twilio.StatusSettings{PublicURL: srv.URL + "/", AuthToken: testkit.AuthToken,
		OnFinal: onFinal}, store, nil)
	return srv.URL + twilio.StatusCallbackPath
}

// sentMessage queues a message and marks it sent as providerID.
func sentMessage(t *testing.T, store *bolt.Store, kind, providerID string) uint64 {
	t.Helper()
	id := testkit.Enqueue(t, store, testkit.Sealer(t), kind, "+15550002222", "Your code is 123456", enroll.PriorityHigh)
	err := store.UpdateMessage(t.Context(), id, func(m *enroll.OutboundMessage) error {
		m.Status, m.ProviderID, m.Attempts = enroll.StatusSent, providerID, 1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStatusCallbackUpdatesTheRightMessage(t *testing.T) {
	store := testkit.OpenStore(t)
	f := testkit.NewFake(t)
	var mu sync.Mutex
	var finals []enroll.OutboundMessage
	cb := statusServer(t, store, func(_ context.Context, m enroll.OutboundMessage) {
		mu.Lock()
		finals = append(finals, m)
		mu.Unlock()
	})
	smsA, smsB := "SM"+strings.Repeat("a", 32), "SM"+strings.Repeat("b", 32)
	call := "CA" + strings.Repeat("c", 32)
	idA := sentMessage(t, store, enroll.KindSMS, smsA)
	idB := sentMessage(t, store, enroll.KindSMS, smsB)
	idC := sentMessage(t, store, enroll.KindCall, call)

	post := func(sid, status string, code int, want int) {
		t.Helper()
		got, err := f.StatusCallback(t.Context(), cb, testkit.AuthToken, sid, status, code)
		if err != nil || got != want {
			t.Fatalf("callback %s %s: HTTP %d, %v; want %d", sid, status, got, err, want)
		}
	}
	check := func(id uint64, status string, code int) {
		t.Helper()
		m := testkit.Message(t, store, id)
		if m.Status != status || m.ErrorCode != code {
			t.Errorf("message %d: %s (error %d), want %s (error %d)", id, m.Status, m.ErrorCode, status, code)
		}
	}

	post(smsA, "sent", 0, http.StatusNoContent)
	check(idA, enroll.StatusSent, 0)
	post(smsA, "undelivered", 30003, http.StatusNoContent)
	check(idA, enroll.StatusUndelivered, 30003)
	check(idB, enroll.StatusSent, 0)
	post(smsA, "delivered", 0, http.StatusNoContent) // a late delivery report wins
	check(idA, enroll.StatusDelivered, 0)
	post(smsA, "failed", 30008, http.StatusNoContent) // delivered is never taken back
	check(idA, enroll.StatusDelivered, 0)
	post(smsB, "delivered", 0, http.StatusNoContent)
	post(smsB, "delivered", 0, http.StatusNoContent) // repeated: no second change
	check(idB, enroll.StatusDelivered, 0)
	post(call, "ringing", 0, http.StatusNoContent)
	check(idC, enroll.StatusSent, 0)
	post(call, "no-answer", 0, http.StatusNoContent)
	check(idC, enroll.StatusUndelivered, 0)

	unknown := "SM" + strings.Repeat("d", 32)
	post(unknown, "delivered", 0, http.StatusOK)

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, m := range finals {
		got = append(got, m.ProviderID+" "+m.Status)
	}
	want := []string{smsA + " undelivered", smsA + " delivered", smsB + " delivered", call + " undelivered"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("OnFinal saw\n%v\nwant\n%v", got, want)
	}
}

func TestStatusCallbackRefusesUnsignedAndForged(t *testing.T) {
	store := testkit.OpenStore(t)
	cb := statusServer(t, store, nil)
	sid := "SM" + strings.Repeat("e", 32)
	id := sentMessage(t, store, enroll.KindSMS, sid)
	form := url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}, "AccountSid": {testkit.AccountSID}}
	for _, tc := range []struct {
		name string
		sig  string
		form url.Values
	}{
		{"unsigned", "", form},
		{"wrong token", twiliotest.Sign("0000000000000000ffffffffffffffff", cb, form), form},
		{"other URL", twiliotest.Sign(testkit.AuthToken, "https://evil.example/sms/twilio/status", form), form},
		{"tampered", twiliotest.Sign(testkit.AuthToken, cb, url.Values{"MessageSid": {sid}, "MessageStatus": {"sent"}}), form},
		{"repeated field", twiliotest.Sign(testkit.AuthToken, cb, form),
			url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered", "failed"}, "AccountSid": {testkit.AccountSID}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, cb, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.sig != "" {
				req.Header.Set("X-Twilio-Signature", tc.sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("HTTP %d, want 403", resp.StatusCode)
			}
			if m := testkit.Message(t, store, id); m.Status != enroll.StatusSent {
				t.Errorf("message became %s", m.Status)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: HTTP %d, want 405", resp.StatusCode)
		}
	})
	t.Run("signed but no SID", func(t *testing.T) {
		form := url.Values{"MessageStatus": {"delivered"}}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, cb, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twiliotest.Sign(testkit.AuthToken, cb, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("HTTP %d, want 400", resp.StatusCode)
		}
	})
}

// filterAlerts records the carrier filtering alerts the admins would be mailed.
type filterAlerts struct {
	mu   sync.Mutex
	sent []notify.CarrierFilterNotice
}

func (a *filterAlerts) NotifyCarrierFiltered(_ context.Context, n notify.CarrierFilterNotice) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, n)
	return 1, nil
}

func (a *filterAlerts) notices() []notify.CarrierFilterNotice {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]notify.CarrierFilterNotice(nil), a.sent...)
}

// TestStatusCarrierFilteringAlertsAdmins: a code SMS reported undelivered
// with 30007 (filtered by the carrier) is audited as carrier filtering and
// mailed to the admins, once per hour however many messages are filtered;
// the enrollment page then says "filtered", with no voice call offered as
// if the phone were off (enroll: ReasonFiltered). An unreachable handset
// (30003) alerts nobody.
func TestStatusCarrierFilteringAlertsAdmins(t *testing.T) {
	store := testkit.OpenStore(t)
	f := testkit.NewFake(t)
	alerts := &filterAlerts{}
	var h *twilio.StatusHandler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h = twilio.NewStatusHandler(twilio.StatusSettings{PublicURL: srv.URL, AuthToken: testkit.AuthToken,
		Audit: store, Alerts: alerts, Throttle: store}, store, nil)
	cb := srv.URL + twilio.StatusCallbackPath
	sids := []string{"SM" + strings.Repeat("1", 32), "SM" + strings.Repeat("2", 32), "SM" + strings.Repeat("3", 32)}
	for _, sid := range sids {
		sentMessage(t, store, enroll.KindSMS, sid)
	}
	for i, r := range []struct {
		sid  string
		code int
	}{{sids[0], 30007}, {sids[1], 30007}, {sids[2], 30003}} {
		if got, err := f.StatusCallback(t.Context(), cb, testkit.AuthToken, r.sid, "undelivered", r.code); err != nil || got != http.StatusNoContent {
			t.Fatalf("report %d: HTTP %d, %v", i, got, err)
		}
	}
	h.Close()
	evs, err := store.Audit(t.Context(), enroll.AuditFilter{Action: "delivery_alert"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("delivery_alert events %+v, want the two filtered messages", evs)
	}
	for _, ev := range evs {
		if ev.Outcome != "carrier_filtered" || !strings.Contains(ev.Detail, "error 30007") || ev.Phone != "+15550002222" {
			t.Errorf("audit %+v", ev)
		}
	}
	if got := alerts.notices(); len(got) != 1 || got[0].Code != 30007 || got[0].Phone != "+15550002222" {
		t.Fatalf("admin alerts %+v, want one for 30007", got)
	}
	if mails, _ := store.Audit(t.Context(), enroll.AuditFilter{Action: "delivery_alert_mail"}); len(mails) != 1 || mails[0].Outcome != "ok" {
		t.Errorf("delivery_alert_mail audit %+v", mails)
	}
}
