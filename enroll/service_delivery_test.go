package enroll_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The outbox worker and the status callback (gateway) record what became
// of a message with UpdateMessage; these tests write the same fields the
// same way and check what Open makes of them.

// newestCode returns the newest code message in the outbox.
func (h *harness) newestCode() enroll.OutboundMessage {
	h.t.Helper()
	ms := h.messages()
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Purpose == "code" {
			return ms[i]
		}
	}
	h.t.Fatal("no code message queued")
	return enroll.OutboundMessage{}
}

// record sets the status and error code of message id as the outbox
// worker (sent, rejected, retry, expired) or a delivery report (delivered,
// undelivered, failed) would.
func (h *harness) record(id uint64, status string, code int) {
	h.t.Helper()
	err := h.store.UpdateMessage(h.ctx, id, func(m *enroll.OutboundMessage) error {
		m.Status, m.ErrorCode, m.UpdatedAt = status, code, h.clock.Now()
		switch status {
		case enroll.StatusSent, enroll.StatusDelivered, enroll.StatusUndelivered, enroll.StatusFailed:
			if m.ProviderID == "" {
				m.ProviderID = fmt.Sprintf("SM%032x", id)
			}
		case enroll.StatusRetry:
			m.NextAttempt = h.clock.Now().Add(5 * time.Second)
		}
		if code != 0 {
			m.LastError = fmt.Sprintf("provider error %d", code)
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("UpdateMessage(%d, %s): %v", id, status, err)
	}
}

// open opens token's page.
func (h *harness) open(token string) enroll.Page {
	h.t.Helper()
	p, err := h.svc.Open(h.ctx, token)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	return p
}

func wantDelivery(t *testing.T, what string, got enroll.DeliveryState, status enroll.DeliveryStatus, reason enroll.DeliveryReason, method string) {
	t.Helper()
	if got.Status != status || got.Reason != reason || got.Method != method {
		t.Errorf("%s: delivery %+v, want status %q reason %q method %q", what, got, status, reason, method)
	}
	if got.Failed() != (status == enroll.DeliveryFailed) {
		t.Errorf("%s: Failed() = %v for status %q", what, got.Failed(), got.Status)
	}
}

func TestDeliveryFollowsTheOutbox(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	if p := h.open(token); p.Step != enroll.StepPhone || p.Delivery != (enroll.DeliveryState{}) {
		t.Fatalf("before any code: step %s, delivery %+v; want the phone step and no delivery", p.Step, p.Delivery)
	}
	h.sendCode(token, phoneJdoe)
	m := h.newestCode()
	wantDelivery(t, "queued", h.open(token).Delivery, enroll.DeliveryPending, "", "sms")

	steps := []struct {
		status string
		code   int
		want   enroll.DeliveryStatus
		reason enroll.DeliveryReason
	}{
		{enroll.StatusRetry, 0, enroll.DeliveryPending, ""},
		{enroll.StatusSent, 0, enroll.DeliverySent, ""},
		{enroll.StatusDelivered, 0, enroll.DeliveryDelivered, ""},
	}
	for _, s := range steps {
		h.clock.Advance(time.Second)
		h.record(m.ID, s.status, s.code)
		d := h.open(token).Delivery
		wantDelivery(t, s.status, d, s.want, s.reason, "sms")
		if !d.Updated.Equal(h.clock.Now()) {
			t.Errorf("%s: updated %v, want %v", s.status, d.Updated, h.clock.Now())
		}
	}
}

func TestDeliveryFailureReasons(t *testing.T) {
	tests := []struct {
		name   string
		method string // how the code went
		status string
		code   int
		reason enroll.DeliveryReason
	}{
		{"invalid number at send", "sms", enroll.StatusRejected, 21211, enroll.ReasonInvalidNumber},
		{"opted out at send", "sms", enroll.StatusRejected, 21610, enroll.ReasonOptedOut},
		{"not a mobile at send", "sms", enroll.StatusRejected, 21614, enroll.ReasonNotMobile},
		{"not reachable by SMS", "sms", enroll.StatusRejected, 21612, enroll.ReasonNotMobile},
		{"landline reported", "sms", enroll.StatusUndelivered, 30006, enroll.ReasonNotMobile},
		{"unknown handset reported", "sms", enroll.StatusUndelivered, 30005, enroll.ReasonInvalidNumber},
		{"unreachable handset", "sms", enroll.StatusUndelivered, 30003, enroll.ReasonUndelivered},
		{"filtered by the carrier", "sms", enroll.StatusUndelivered, 30007, enroll.ReasonFiltered},
		{"blocked", "sms", enroll.StatusUndelivered, 30004, enroll.ReasonUndelivered},
		{"call to an unknown handset", "voice", enroll.StatusFailed, 30005, enroll.ReasonInvalidNumber},
		{"call after carrier filtering", "voice", enroll.StatusFailed, 30007, enroll.ReasonUndelivered},
		{"failed without a code", "sms", enroll.StatusFailed, 0, enroll.ReasonUndelivered},
		{"rejected for another reason", "sms", enroll.StatusRejected, 21408, enroll.ReasonUndelivered},
		{"never sent in time", "sms", enroll.StatusExpired, 0, enroll.ReasonUndelivered},
		{"call not answered", "voice", enroll.StatusUndelivered, 0, enroll.ReasonUndelivered},
		{"call to an invalid number", "voice", enroll.StatusRejected, 21211, enroll.ReasonInvalidNumber},
		// STOP blocks texts, not calls: a refused call is not an opt-out.
		{"call refused with 21610", "voice", enroll.StatusRejected, 21610, enroll.ReasonUndelivered},
		{"call to a landline", "voice", enroll.StatusFailed, 21614, enroll.ReasonUndelivered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			token := h.activate("jdoe")
			if _, err := h.svc.SendCode(h.ctx, token, phoneJdoe, tt.method); err != nil {
				t.Fatal(err)
			}
			h.record(h.newestCode().ID, tt.status, tt.code)
			p := h.open(token)
			wantDelivery(t, tt.name, p.Delivery, enroll.DeliveryFailed, tt.reason, tt.method)
			if p.Delivery.ErrorCode != tt.code {
				t.Errorf("error code %d, want %d", p.Delivery.ErrorCode, tt.code)
			}
			if p.Step != enroll.StepVerify || p.Phone != phoneJdoe {
				t.Errorf("a failed delivery changed the page: step %s phone %s", p.Step, p.Phone)
			}
		})
	}
}

func TestDeliveryOptedOutNamesTheCompanyNumber(t *testing.T) {
	for _, tt := range []struct{ setting, want string }{
		{"", ""},
		{"+15550001111", "+15550001111"},
		{" +15550001111 ", "+15550001111"},
		{"MG0123456789abcdef0123456789abcdef", ""}, // a messaging service is no number to text
	} {
		h := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.SMSNumber = tt.setting })
		token := h.activate("jdoe")
		h.sendCode(token, phoneJdoe)
		h.record(h.newestCode().ID, enroll.StatusRejected, 21610)
		d := h.open(token).Delivery
		wantDelivery(t, "opted out", d, enroll.DeliveryFailed, enroll.ReasonOptedOut, "sms")
		if d.StartNumber != tt.want {
			t.Errorf("SMSNumber %q: StartNumber %q, want %q", tt.setting, d.StartNumber, tt.want)
		}
	}
	// Only an opt-out names it.
	h := newHarness(t, func(_ *enroll.ServiceDeps, s *enroll.ServiceSettings) { s.SMSNumber = "+15550001111" })
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	h.record(h.newestCode().ID, enroll.StatusRejected, 21211)
	if d := h.open(token).Delivery; d.StartNumber != "" {
		t.Errorf("invalid number: StartNumber %q, want none", d.StartNumber)
	}
}

func TestDeliveryOfTheNewestCodeOnly(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	first := h.newestCode()
	h.record(first.ID, enroll.StatusRejected, 21610)
	wantDelivery(t, "SMS refused", h.open(token).Delivery, enroll.DeliveryFailed, enroll.ReasonOptedOut, "sms")

	// The user takes the voice call the page offers: its state is shown,
	// not the refused SMS's.
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Resend(h.ctx, token, "voice"); err != nil {
		t.Fatal(err)
	}
	call := h.newestCode()
	if call.ID == first.ID || call.Kind != enroll.KindCall {
		t.Fatalf("no call queued: %+v", call)
	}
	wantDelivery(t, "call queued", h.open(token).Delivery, enroll.DeliveryPending, "", "voice")
	h.record(call.ID, enroll.StatusDelivered, 0)
	wantDelivery(t, "call answered", h.open(token).Delivery, enroll.DeliveryDelivered, "", "voice")

	// Newer messages of another purpose to the same user and number (an
	// earlier enrollment's reset reply, say) do not count.
	for _, purpose := range []string{"reset", "lockout"} {
		h.clock.Advance(time.Second)
		id, err := h.queue.Enqueue(h.ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: phoneJdoe, Language: "en",
			Purpose: purpose, Username: "jdoe", Priority: enroll.PriorityHigh, CreatedAt: h.clock.Now()}, "x")
		if err != nil {
			t.Fatal(err)
		}
		h.record(id, enroll.StatusRejected, 21211)
	}
	wantDelivery(t, "after other messages", h.open(token).Delivery, enroll.DeliveryDelivered, "", "voice")

	// Another number: only the code sent to it counts.
	h.clock.Advance(time.Minute)
	if _, err := h.svc.SendCode(h.ctx, token, phoneOther, "sms"); err != nil {
		t.Fatal(err)
	}
	wantDelivery(t, "new number", h.open(token).Delivery, enroll.DeliveryPending, "", "sms")
	// ... and a report about the old number's code changes nothing.
	h.record(call.ID, enroll.StatusUndelivered, 0)
	wantDelivery(t, "old number's report", h.open(token).Delivery, enroll.DeliveryPending, "", "sms")
}

func TestDeliveryIgnoresAnEarlierActivation(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	h.record(h.newestCode().ID, enroll.StatusRejected, 21211)

	// A new activation (a new link) starts afresh.
	h.clock.Advance(time.Hour)
	token = h.activate("jdoe")
	if p := h.open(token); p.Step != enroll.StepPhone || p.Delivery != (enroll.DeliveryState{}) {
		t.Fatalf("new activation: step %s, delivery %+v", p.Step, p.Delivery)
	}
	// Even with the same number, only codes of this activation count: a
	// code whose message was never queued shows nothing rather than the
	// old failure.
	err := h.store.UpdateActivation(h.ctx, h.activationOf("jdoe").TokenHash, func(a *enroll.Activation) error {
		a.Phone, a.CodeSentAt = phoneJdoe, h.clock.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := h.open(token).Delivery; d != (enroll.DeliveryState{}) {
		t.Errorf("an earlier activation's code shows: %+v", d)
	}
	h.clock.Advance(time.Minute)
	h.sendCode(token, phoneJdoe)
	wantDelivery(t, "this activation's code", h.open(token).Delivery, enroll.DeliveryPending, "", "sms")
}

func TestDeliveryNoneForTheApp(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	if _, err := h.svc.StartApp(h.ctx, token, phoneJdoe); err != nil {
		t.Fatal(err)
	}
	if d := h.open(token).Delivery; d != (enroll.DeliveryState{}) {
		t.Errorf("app set-up: delivery %+v, want none", d)
	}
}

// brokenOutbox fails every Messages call.
type brokenOutbox struct{ enroll.ServiceStore }

func (brokenOutbox) Messages(context.Context, enroll.OutboxFilter) ([]enroll.OutboundMessage, error) {
	return nil, errors.New("disk on fire")
}

func TestDeliveryLookupFailureKeepsThePage(t *testing.T) {
	h := newHarness(t, func(d *enroll.ServiceDeps, _ *enroll.ServiceSettings) {
		d.Store = brokenOutbox{d.Store}
	})
	token := h.activate("jdoe")
	h.sendCode(token, phoneJdoe)
	p := h.open(token)
	if p.Step != enroll.StepVerify || p.Delivery != (enroll.DeliveryState{}) {
		t.Errorf("page %+v: want the verify step without a delivery state", p)
	}
	if !strings.Contains(h.logs.String(), "disk on fire") {
		t.Errorf("the failed lookup is not logged:\n%s", h.logs.String())
	}
}
