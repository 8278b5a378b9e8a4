package gateway_test

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// countingStore is the real bbolt store that counts every write the
// webhook asks of it.
type countingStore struct {
	*bolt.Store
	writes atomic.Int64
}

func (s *countingStore) PutEnrollment(ctx context.Context, e enroll.Enrollment) error {
	s.writes.Add(1)
	return s.Store.PutEnrollment(ctx, e)
}

func (s *countingStore) UpdateEnrollment(ctx context.Context, u string, fn func(*enroll.Enrollment) error) error {
	s.writes.Add(1)
	return s.Store.UpdateEnrollment(ctx, u, fn)
}

func (s *countingStore) MarkMessage(ctx context.Context, sid string, now time.Time, ttl time.Duration) (bool, error) {
	s.writes.Add(1)
	return s.Store.MarkMessage(ctx, sid, now, ttl)
}

func (s *countingStore) SetOptOut(ctx context.Context, phone string, out bool, now time.Time) error {
	s.writes.Add(1)
	return s.Store.SetOptOut(ctx, phone, out, now)
}

func (s *countingStore) Allow(ctx context.Context, key string, now time.Time, w time.Duration, limit int) (bool, error) {
	s.writes.Add(1)
	return s.Store.Allow(ctx, key, now, w, limit)
}

func (s *countingStore) EnqueueMessage(ctx context.Context, m enroll.OutboundMessage) (uint64, error) {
	s.writes.Add(1)
	return s.Store.EnqueueMessage(ctx, m)
}

func (s *countingStore) UpdateMessage(ctx context.Context, id uint64, fn func(*enroll.OutboundMessage) error) error {
	s.writes.Add(1)
	return s.Store.UpdateMessage(ctx, id, fn)
}

func (s *countingStore) AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error) {
	s.writes.Add(1)
	return s.Store.AppendAudit(ctx, ev)
}

// countingDirectory answers every user as found and counts the calls.
type countingDirectory struct {
	calls atomic.Int64
	last  atomic.Value // the last password set
}

func (d *countingDirectory) FindUser(_ context.Context, username string) (directory.User, error) {
	d.calls.Add(1)
	return directory.User{DN: "uid=" + username + ",dc=example,dc=test", Username: username, Locked: true}, nil
}

func (d *countingDirectory) SetPassword(_ context.Context, _ directory.User, pw string, _ directory.SetPasswordOptions) error {
	d.calls.Add(1)
	d.last.Store(pw)
	return nil
}

func (d *countingDirectory) Unlock(context.Context, directory.User) error {
	d.calls.Add(1)
	return nil
}

func (d *countingDirectory) CheckSelfService(context.Context, directory.User) error {
	d.calls.Add(1)
	return nil
}

const fuzzEnrolledPhone = "+12015550177"

// FuzzWebhook posts random forms and bodies to the signed webhook. Whatever
// arrives, the handler never panics and never answers 5xx (the store is
// healthy); a request without a valid signature is refused with a 4xx and
// causes no store write and no directory call; a 200 is TwiML and never
// holds the password last set.
//
// mode bit 0: sign the request correctly; bit 1: send raw as the body
// instead of a form built from the fields; bits 2-3 pick the content type.
func FuzzWebhook(f *testing.F) {
	sid := "SM0123456789abcdef0123456789abcdef"
	for _, s := range []struct {
		mode                     byte
		raw, sid, from, body, sg string
	}{
		{1, "", sid, fuzzEnrolledPhone, "RESET", ""},
		{1, "", sid, fuzzEnrolledPhone, "unlock", ""},
		{1, "", sid, fuzzEnrolledPhone, "NOT ME", ""},
		{1, "", sid, "+12015550100", "STOP", ""},
		{1, "", sid, "(201) 555-0177", "status", ""},
		{1, "", sid, fuzzEnrolledPhone, "\xff\xfe RESET", ""},
		{1, "", sid, fuzzEnrolledPhone, "إعادة RESET \u202e🔑", ""},
		{1, "", sid, "ACME", "reset", ""},
		{0, "", sid, fuzzEnrolledPhone, "RESET", "!!!"},
		{0, "", sid, fuzzEnrolledPhone, "RESET", ""},
		{2, "MessageSid=" + sid + "&From=%2B12015550177&Body=RESET&Body=RESET", "", "", "", ""},
		{3, "MessageSid=" + sid + "&From=%2B12015550177&Body=%ZZ", "", "", "", ""},
		{3, "MessageSid=" + sid + ";From=x&&&=&Body", "", "", "", ""},
		{7, "--b\r\nContent-Disposition: form-data; name=\"From\"\r\n\r\n+1\r\n--b--\r\n", "", "", "", ""},
		{11, `{"From":"+12015550177","Body":"RESET"}`, "", "", "", ""},
	} {
		f.Add(s.mode, s.raw, s.sid, s.from, s.body, s.sg)
	}
	const token = "fuzz-auth-token-0123456789abcdef"
	const public = "https://reset.example.test"
	bs, err := bolt.Open(filepath.Join(f.TempDir(), "replyreset.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { bs.Close() })
	now := time.Now()
	if err := bs.PutEnrollment(context.Background(), enroll.Enrollment{Username: "fuzzuser", Phone: fuzzEnrolledPhone,
		Language: "en", State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now}); err != nil {
		f.Fatal(err)
	}
	store := &countingStore{Store: bs}
	dir := &countingDirectory{}
	gen, err := password.NewGenerator(password.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	catalog, err := templates.LoadCatalog()
	if err != nil {
		f.Fatal(err)
	}
	sealer, err := enroll.NewSealer(make([]byte, 64))
	if err != nil {
		f.Fatal(err)
	}
	wh := gateway.NewWebhook(gateway.Settings{PublicURL: public, AuthToken: token, MaxResetsPerHour: 1000,
		Password: directory.SetPasswordOptions{MustChange: true, Unlock: true}, Outbox: outbox.NewQueue(store, sealer, nil)},
		gateway.WebhookDeps{Store: store, Directory: dir, Generator: gen, Catalog: catalog})
	contentTypes := []string{"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
		"multipart/form-data; boundary=b", "application/json"}

	f.Fuzz(func(t *testing.T, mode byte, raw, msgSid, from, body, sig string) {
		signed, rawMode := mode&1 != 0, mode&2 != 0
		var payload string
		var form url.Values
		if rawMode {
			payload = raw
			form, _ = url.ParseQuery(raw)
		} else {
			form = url.Values{"MessageSid": {msgSid}, "From": {from}, "To": {"+12015550000"}, "Body": {body}}
			payload = form.Encode()
		}
		if signed {
			sig = twiliotest.Sign(token, public+"/sms/twilio", form)
		}
		req := httptest.NewRequest(http.MethodPost, "/sms/twilio", strings.NewReader(payload))
		req.Header.Set("Content-Type", contentTypes[int(mode>>2)%len(contentTypes)])
		if sig != "" {
			req.Header.Set("X-Twilio-Signature", sig)
		}
		writes, calls := store.writes.Load(), dir.calls.Load()
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 {
			t.Fatalf("status %d for %q (signed %v): %s", code, payload, signed, rec.Body)
		}
		if code != http.StatusOK {
			if store.writes.Load() != writes || dir.calls.Load() != calls {
				t.Fatalf("status %d but the webhook acted (store writes %d→%d, directory calls %d→%d)",
					code, writes, store.writes.Load(), calls, dir.calls.Load())
			}
			return
		}
		if !signed {
			t.Fatalf("an unsigned request (signature %q) was answered 200: %s", sig, rec.Body)
		}
		var doc struct {
			XMLName  xml.Name `xml:"Response"`
			Messages []string `xml:"Message"`
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Messages) > 1 {
			t.Fatalf("reply is not TwiML with at most one message (%v): %s", err, rec.Body)
		}
		if pw, _ := dir.last.Load().(string); pw != "" && strings.Contains(rec.Body.String(), pw) {
			t.Fatalf("the answer holds the password set: %s", rec.Body)
		}
	})
}
