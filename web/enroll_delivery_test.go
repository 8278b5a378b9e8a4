package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The verify page tells what became of the code message (DESIGN: delivery
// receipts with fallback). The outbox worker and the status callback
// record a message's fate with UpdateMessage; these tests write the same
// fields the same way, then reload the page as the user would.

// recordCode sets the status and error code of the newest code message.
func (a *enrollApp) recordCode(status string, code int) enroll.OutboundMessage {
	a.t.Helper()
	ms := a.messages()
	var id uint64
	for i := len(ms) - 1; i >= 0 && id == 0; i-- {
		if ms[i].Purpose == "code" {
			id = ms[i].ID
		}
	}
	if id == 0 {
		a.t.Fatal("no code message queued")
	}
	var stored enroll.OutboundMessage
	err := a.store.UpdateMessage(context.Background(), id, func(m *enroll.OutboundMessage) error {
		m.Status, m.ErrorCode, m.UpdatedAt = status, code, a.clock.Now()
		if status != enroll.StatusQueued && status != enroll.StatusRetry && status != enroll.StatusRejected && m.ProviderID == "" {
			m.ProviderID = fmt.Sprintf("SM%032x", id)
		}
		if status == enroll.StatusRetry {
			m.NextAttempt = a.clock.Now().Add(5 * time.Second)
		}
		if code != 0 {
			m.LastError = fmt.Sprintf("provider error %d", code)
		}
		stored = *m
		return nil
	})
	if err != nil {
		a.t.Fatalf("UpdateMessage(%d): %v", id, err)
	}
	return stored
}

// failureKeys are every text of a failed delivery: none may show while the
// code is on its way or delivered.
var failureKeys = []string{
	"delivery.failed.invalid_number", "delivery.failed.opted_out", "delivery.failed.opted_out_reply",
	"delivery.failed.not_mobile", "delivery.failed.filtered", "delivery.failed.undelivered.sms", "delivery.failed.undelivered.voice",
	"delivery.voice", "delivery.change",
}

// wantCalm fails if the page alarms the user in any way.
func wantCalm(t *testing.T, what, lang string, r answer) {
	t.Helper()
	for _, bad := range []string{`role="alert"`, `id="delivery-problem"`, `id="delivery-voice"`, `id="delivery-change"`, `class="error"`} {
		if strings.Contains(r.body, bad) {
			t.Errorf("%s (%s): the page has %s\n%s", what, lang, bad, r.body)
		}
	}
	for _, key := range failureKeys {
		args := map[string]string{"phone": phoneJdoe, "number": "+15550001111"}
		if txt := pageText(t, lang, key, args); strings.Contains(r.body, txt) {
			t.Errorf("%s (%s): the page says %q", what, lang, txt)
		}
	}
}

// startVerify activates jdoe, opens the link in lang, sends a code to
// jdoe's number by method and returns the link and the browser.
func startVerify(t *testing.T, a *enrollApp, lang, method string) (string, *browser) {
	t.Helper()
	link := a.activate("jdoe")
	b := a.browser(lang)
	b.get(link).want(t, "phone page", http.StatusOK, `<html lang="`+lang+`">`)
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {method}}).location(t, "send code", link+"?sent="+method)
	return link, b
}

func TestVerifyPageShowsDeliveryFailures(t *testing.T) {
	phone := map[string]string{"phone": phoneJdoe}
	tests := []struct {
		name     string
		status   string
		code     int
		smsFrom  string // ServiceSettings.SMSNumber
		key      string
		args     map[string]string
		voice    bool // the voice call is offered as the way on
		change   bool // the link to check the number is offered
		noResend bool // the lower "call me" button moved up
	}{
		{name: "invalid number 21211", status: enroll.StatusRejected, code: 21211,
			key: "delivery.failed.invalid_number", args: phone, change: true},
		{name: "opted out 21610", status: enroll.StatusRejected, code: 21610,
			key: "delivery.failed.opted_out_reply", args: phone, voice: true},
		{name: "opted out 21610, company number known", status: enroll.StatusRejected, code: 21610, smsFrom: "+15550001111",
			key: "delivery.failed.opted_out", args: map[string]string{"phone": phoneJdoe, "number": "+15550001111"}, voice: true},
		{name: "not a mobile 21614", status: enroll.StatusRejected, code: 21614,
			key: "delivery.failed.not_mobile", args: phone, voice: true},
		{name: "filtered by the carrier 30007: no voice call as if the phone were off", status: enroll.StatusUndelivered, code: 30007,
			key: "delivery.failed.filtered", args: phone},
		{name: "undelivered", status: enroll.StatusUndelivered, code: 30003,
			key: "delivery.failed.undelivered.sms", args: phone, voice: true, change: true},
		{name: "failed", status: enroll.StatusFailed, code: 0,
			key: "delivery.failed.undelivered.sms", args: phone, voice: true, change: true},
	}
	for _, lang := range []string{"en", "fr"} {
		for _, tt := range tests {
			t.Run(lang+"/"+tt.name, func(t *testing.T) {
				a := newEnrollApp(t, func(at appTuning) { at.settings.SMSNumber = tt.smsFrom })
				link, b := startVerify(t, a, lang, "sms")
				a.recordCode(tt.status, tt.code)

				r := b.get(link) // the user reloads
				r.want(t, "verify page", http.StatusOK, `<html lang="`+lang+`">`, `role="alert"`,
					`<p id="delivery-problem" class="error">`+pageText(t, lang, tt.key, tt.args)+`</p>`)
				if strings.Contains(r.body, `id="reload"`) {
					t.Error("a failed delivery still asks to reload for news")
				}
				voiceHint := pageText(t, lang, "delivery.voice", phone)
				if got := strings.Contains(r.body, `id="delivery-voice"`) && strings.Contains(r.body, voiceHint); got != tt.voice {
					t.Errorf("voice call offered: %v, want %v\n%s", got, tt.voice, r.body)
				}
				if tt.voice {
					// It is the resend form, method voice, with its CSRF field.
					form := `<form method="post" action="` + link + `/resend" class="buttons">` + "\n" +
						`<input type="hidden" name="csrf_token" value="` + b.csrf + `">` + "\n" +
						`<button type="submit" id="delivery-voice" class="primary" name="method" value="voice">` +
						pageText(t, lang, "verify.resend.voice", nil) + `</button>`
					if !strings.Contains(r.body, form) {
						t.Errorf("the voice call is not offered as the resend form:\n%s", r.body)
					}
					if strings.Contains(r.body, `id="resend-voice"`) {
						t.Error("the voice call is offered twice")
					}
				}
				if got := strings.Contains(r.body, `<a id="delivery-change" href="`+link+`?step=phone">`+
					pageText(t, lang, "delivery.change", nil)+`</a>`); got != tt.change {
					t.Errorf("link to change the number: %v, want %v\n%s", got, tt.change, r.body)
				}
				// The code field and the SMS resend stay: the code may still come.
				r.want(t, "verify page", http.StatusOK, `id="code"`, `id="resend-sms"`)
			})
		}
	}
}

func TestVerifyPageDeliveryCalmWhileOnItsWay(t *testing.T) {
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			a := newEnrollApp(t)
			link, b := startVerify(t, a, lang, "sms")
			reload := pageText(t, lang, "verify.reload", nil)

			// Right after sending: the notice says it was sent; no status
			// that would only repeat it, and the hint to reload.
			r := b.get(link + "?sent=sms")
			r.want(t, "sent notice", http.StatusOK, pageText(t, lang, "notice.sent.sms", nil), `<p id="reload" class="hint">`+reload+`</p>`)
			if strings.Contains(r.body, `id="delivery"`) {
				t.Errorf("a status repeats the notice:\n%s", r.body)
			}
			wantCalm(t, "sent notice", lang, r)

			steps := []struct {
				status, key string
				reload      bool
			}{
				{enroll.StatusQueued, "delivery.pending", true},
				{enroll.StatusRetry, "delivery.pending", true},
				{enroll.StatusSent, "delivery.sent", true},
				{enroll.StatusDelivered, "delivery.delivered.sms", false},
			}
			for _, s := range steps {
				a.clock.Advance(time.Second)
				a.recordCode(s.status, 0)
				r := b.get(link)
				r.want(t, s.status, http.StatusOK, `<p id="delivery" class="small" role="status">`+pageText(t, lang, s.key, nil)+`</p>`,
					`id="resend-sms"`, `id="resend-voice"`)
				if got := strings.Contains(r.body, reload); got != s.reload {
					t.Errorf("%s: reload hint %v, want %v", s.status, got, s.reload)
				}
				wantCalm(t, s.status, lang, r)
			}
		})
	}
}

func TestVerifyPageVoiceFallback(t *testing.T) {
	a := newEnrollApp(t)
	link, b := startVerify(t, a, "en", "sms")
	a.recordCode(enroll.StatusRejected, 21610)
	b.get(link).want(t, "opted out", http.StatusOK, `id="delivery-voice"`)

	// Too early: the page says when, and keeps the offer.
	r := b.post(link+"/resend", url.Values{"method": {"voice"}})
	r.want(t, "call at once", http.StatusTooManyRequests, `id="delivery-voice"`,
		pageText(t, "en", "err.resend", map[string]string{"time": hm(time.Minute), "wait": "60 s"}))

	// Once the wait is over, the call goes out and the page follows it.
	a.clock.Advance(time.Minute)
	b.post(link+"/resend", url.Values{"method": {"voice"}}).location(t, "call", link+"?sent=voice")
	ms := a.messages()
	if last := ms[len(ms)-1]; last.Kind != enroll.KindCall || last.Purpose != "code" || last.To != phoneJdoe {
		t.Fatalf("last message %+v, want a code call to %s", last, phoneJdoe)
	}
	r = b.get(link)
	r.want(t, "call queued", http.StatusOK, pageText(t, "en", "delivery.pending", nil), `id="resend-voice"`)
	wantCalm(t, "call queued", "en", r)

	a.recordCode(enroll.StatusDelivered, 0)
	b.get(link).want(t, "call answered", http.StatusOK, pageText(t, "en", "delivery.delivered.voice", nil))

	// A call that does not get through says so, and offers no call again.
	a.clock.Advance(time.Minute)
	b.post(link+"/resend", url.Values{"method": {"voice"}}).location(t, "call again", link+"?sent=voice")
	a.recordCode(enroll.StatusUndelivered, 0)
	r = b.get(link)
	r.want(t, "call not answered", http.StatusOK, `role="alert"`,
		pageText(t, "en", "delivery.failed.undelivered.voice", map[string]string{"phone": phoneJdoe}), `id="delivery-change"`)
	if strings.Contains(r.body, `id="delivery-voice"`) {
		t.Errorf("a failed call offers a call:\n%s", r.body)
	}
}

func TestVerifyPageDeliveryWithoutVoice(t *testing.T) {
	a := newEnrollApp(t, func(at appTuning) { at.settings.Methods = []string{"sms", "app"} })
	link, b := startVerify(t, a, "en", "sms")
	a.recordCode(enroll.StatusRejected, 21614)
	r := b.get(link)
	r.want(t, "not a mobile", http.StatusOK, `role="alert"`,
		pageText(t, "en", "delivery.failed.not_mobile", map[string]string{"phone": phoneJdoe}), `id="delivery-change"`)
	if strings.Contains(r.body, `id="delivery-voice"`) || strings.Contains(r.body, `value="voice"`) {
		t.Errorf("voice is off but offered:\n%s", r.body)
	}
}
