// Package testkit holds the fixtures the tests of the gateway packages
// share: a bbolt data file and a sealer, queued messages, the fake Twilio
// and a real twilio.Sender for it, and waiting for a condition.
package testkit

import (
	"bytes"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// The Twilio account of the tests.
const (
	AccountSID   = "AC0123456789abcdef0123456789abcdef"
	AuthToken    = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	ServiceSID   = "MG00112233445566778899aabbccddeeff"
	From         = "+15550001111"
	PublicURL    = "https://reset.example.test"
	StatusURL    = PublicURL + "/sms/twilio/status"
	MessagesPath = "/2010-04-01/Accounts/" + AccountSID + "/Messages.json"
	CallsPath    = "/2010-04-01/Accounts/" + AccountSID + "/Calls.json"
)

// OpenStore opens a bbolt data file in a temporary directory, closed at
// the end of the test.
func OpenStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Sealer always has the same key, so every call opens what another sealed.
func Sealer(t *testing.T) *enroll.Sealer {
	t.Helper()
	s, err := enroll.NewSealer(bytes.Repeat([]byte{7}, 64))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Enqueue queues a message of kind to to, due now, its body sealed.
func Enqueue(t *testing.T, store *bolt.Store, sealer *enroll.Sealer, kind, to, body string, priority int) uint64 {
	t.Helper()
	now := time.Now()
	id, err := store.EnqueueMessage(t.Context(), enroll.OutboundMessage{Kind: kind, To: to,
		Sealed: sealer.Seal([]byte(body), "outbox"), Language: "en", Purpose: "code", Username: "jdoe",
		Priority: priority, Status: enroll.StatusQueued, NextAttempt: now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Message reads message id back.
func Message(t *testing.T, store *bolt.Store, id uint64) enroll.OutboundMessage {
	t.Helper()
	all, err := store.Messages(t.Context(), enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %d not in the store", id)
	return enroll.OutboundMessage{}
}

// Eventually waits until cond holds, failing the test after 10 seconds.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// LockedBuffer collects log output from several goroutines.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// NewFake starts the fake Twilio for the tests' account, closed at the end
// of the test.
func NewFake(t *testing.T) *twiliotest.Fake {
	t.Helper()
	f := twiliotest.NewFake(AccountSID, AuthToken)
	t.Cleanup(f.Close)
	return f
}

// TwilioSender is a sender for the fake; mutate may change the settings.
func TwilioSender(t *testing.T, f *twiliotest.Fake, hc *http.Client, mutate func(*gateway.TwilioConfig)) *twilio.Sender {
	t.Helper()
	cfg := gateway.TwilioConfig{AccountSID: AccountSID, AuthToken: AuthToken, From: From, APIBaseURL: f.URL}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := twilio.NewSender(cfg, PublicURL+"/", hc)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	return s
}
