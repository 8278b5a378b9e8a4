package twilio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	"github.com/twilio/twilio-go/twiml"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// TestDemoPhoneSignsLikeTwilio: the simulator's posts carry the signature
// Twilio would send (checked with twilio-go's validator and with the
// independent test signer), and its conversation merges typed texts,
// replies and the outbox in time order.
func TestDemoPhoneSignsLikeTwilio(t *testing.T) {
	const token = "demo-auth-token"
	const public = "https://reset.example.com"
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		params := map[string]string{}
		for k := range r.PostForm {
			params[k] = r.PostForm.Get(k)
		}
		sig := r.Header.Get("X-Twilio-Signature")
		v := twclient.NewRequestValidator(token)
		if !v.Validate(public+"/sms/twilio", params, sig) ||
			sig != twiliotest.Sign(token, public+"/sms/twilio", r.PostForm) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if !regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`).MatchString(r.PostForm.Get("MessageSid")) || r.PostForm.Get("To") != "+15550001111" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		got = r.Header
		// The webhook's answer: TwiML with one <Message>.
		doc, err := twiml.Messages([]twiml.Element{&twiml.MessagingMessage{Body: "Echo: " + r.PostForm.Get("Body") + " & <more>"}})
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write([]byte(doc))
	}))
	defer srv.Close()

	store, err := bolt.Open(filepath.Join(t.TempDir(), "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sealer, err := enroll.NewSealer(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ctx := context.Background()
	if _, err := store.EnqueueMessage(ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: "+15555550101",
		Sealed: sealer.Seal([]byte("Your code is 123456"), "outbox"), Language: "en", Purpose: "code",
		Status: enroll.StatusSent, NextAttempt: now, CreatedAt: now.Add(-time.Minute), UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	p := NewDemoPhone(store, sealer, DemoPhoneOptions{PostURL: srv.URL + "/sms/twilio", PublicURL: public + "/",
		AuthToken: token, Number: "+15550001111", Now: clock})

	reply, err := p.Send(ctx, "+15555550101", "RESET")
	if err != nil || reply != "Echo: RESET & <more>" || got == nil {
		t.Fatalf("Send: %q %v", reply, err)
	}
	conv, err := p.Conversation(ctx, "+15555550101")
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range conv {
		bodies = append(bodies, m.Body)
	}
	if strings.Join(bodies, "|") != "Your code is 123456|RESET|Echo: RESET & <more>" || conv[1].Incoming || !conv[2].Incoming {
		t.Fatalf("conversation %+v", conv)
	}
	if other, _ := p.Conversation(ctx, "+15555550102"); len(other) != 0 {
		t.Fatalf("another phone sees %+v", other)
	}
	for _, bad := range []string{"", "  ", "\xff", strings.Repeat("x", 481)} {
		if _, err := p.Send(ctx, "+15555550101", bad); err == nil {
			t.Errorf("Send(%q) accepted", bad)
		}
	}
	// A webhook that refuses (a wrong token) is an error, not a silent reply.
	p2 := NewDemoPhone(store, sealer, DemoPhoneOptions{PostURL: srv.URL + "/sms/twilio", PublicURL: public,
		AuthToken: "wrong", Number: "+15550001111", Now: clock})
	if _, err := p2.Send(ctx, "+15555550101", "HELP"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("refused post: %v", err)
	}
}
