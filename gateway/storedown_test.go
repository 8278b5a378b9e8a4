package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

// downStore is a real bbolt store that, while down is set, fails every
// call the webhook makes as an etcd store without quorum does (an error
// wrapping enroll.ErrUnavailable), counting the calls.
type downStore struct {
	s     *bolt.Store
	down  atomic.Bool
	calls atomic.Int64
}

func (d *downStore) check() error {
	d.calls.Add(1)
	if d.down.Load() {
		return fmt.Errorf("etcd: %w: context deadline exceeded", enroll.ErrUnavailable)
	}
	return nil
}

func (d *downStore) Ping(ctx context.Context) error {
	if d.down.Load() {
		return enroll.ErrUnavailable
	}
	return d.s.Ping(ctx)
}

func (d *downStore) EnrollmentByPhone(ctx context.Context, phone string) (enroll.Enrollment, error) {
	if err := d.check(); err != nil {
		return enroll.Enrollment{}, err
	}
	return d.s.EnrollmentByPhone(ctx, phone)
}

func (d *downStore) PutEnrollment(ctx context.Context, e enroll.Enrollment) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.s.PutEnrollment(ctx, e)
}

func (d *downStore) UpdateEnrollment(ctx context.Context, username string, fn func(*enroll.Enrollment) error) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.s.UpdateEnrollment(ctx, username, fn)
}

func (d *downStore) MarkMessage(ctx context.Context, sid string, now time.Time, ttl time.Duration) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	return d.s.MarkMessage(ctx, sid, now, ttl)
}

func (d *downStore) SetOptOut(ctx context.Context, phone string, optedOut bool, now time.Time) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.s.SetOptOut(ctx, phone, optedOut, now)
}

func (d *downStore) OptedOut(ctx context.Context, phone string) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	return d.s.OptedOut(ctx, phone)
}

func (d *downStore) Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	return d.s.Allow(ctx, key, now, window, limit)
}

func (d *downStore) AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	return d.s.AppendAudit(ctx, ev)
}

// TestWebhookStoreDown (issue 17 item 5): with the store unavailable, a
// signed inbound SMS gets a 200 TwiML answer with one message, "briefly
// unavailable; try again in a few minutes", in the language of the
// command word sent (else the default), and nothing else happens: no
// MessageSid recorded, no limit counted, no directory call (the webhook
// has no directory: reaching it would panic). With the gate closed the
// store is not even asked. An unsigned request is still refused.
func TestWebhookStoreDown(t *testing.T) {
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	const phone = "+12015550188"
	want := map[string]string{"en": catalog.Text("en", "sms.store_down", nil), "fr": catalog.Text("fr", "sms.store_down", nil)}
	cases := []struct{ body, lang string }{
		{"RESET", "en"}, {"reinitialiser", "fr"}, {"Débloquer !", "fr"}, {"AIDE", "fr"}, {"pas moi", "fr"},
		{"STATUS", "en"}, {"unlock", "en"}, {"STOP", "en"}, {"bonjour", "en"},
	}
	for _, gated := range []bool{false, true} {
		t.Run(fmt.Sprintf("gated=%v", gated), func(t *testing.T) {
			bs := testkit.OpenStore(t)
			store := &downStore{s: bs}
			if err := bs.PutEnrollment(t.Context(), enroll.Enrollment{Username: "jdoe", Phone: phone, Language: "en",
				State: enroll.StateActive, Method: "helpdesk", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			gate := web.NewStoreGate(web.StoreGateConfig{Store: store})
			var g gateway.StoreGate // nil: the outage is seen by the store calls alone
			if gated {
				g = gate
			}
			wh := gateway.NewWebhook(gateway.Settings{PublicURL: publicURL, AuthToken: authToken, DefaultLanguage: "en"},
				gateway.WebhookDeps{Store: store, Catalog: catalog, Gate: g})
			srv := httptest.NewServer(web.NewEcho(web.Deps{SMSWebhook: wh, StoreGate: gate}))
			t.Cleanup(srv.Close)
			seq := 0
			post := func(body, signature string) (int, []string, url.Values) {
				t.Helper()
				seq++
				form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", 0xd0e+seq)}, "From": {phone}, "To": {"+15005550006"}, "Body": {body}}
				if signature == "" {
					signature = twiliotest.Sign(authToken, publicURL+"/sms/twilio", form)
				}
				status, texts, raw, err := twiliotest.PostSMSSigned(t.Context(), srv.Client(), srv.URL+"/sms/twilio", signature, form)
				if err != nil {
					t.Fatalf("%q: %v\n%s", body, err, raw)
				}
				return status, texts, form
			}

			store.down.Store(true)
			if gated {
				if err := gate.Probe(t.Context()); err == nil {
					t.Fatal("probe of a down store succeeded")
				}
			}
			before := store.calls.Load()
			for _, c := range cases {
				status, texts, form := post(c.body, "")
				if status != http.StatusOK || len(texts) != 1 || texts[0] != want[c.lang] {
					t.Errorf("%q with the store down: %d %q; want 200 and one message %q", c.body, status, texts, want[c.lang])
				}
				// Behind the outage: the MessageSid was not recorded.
				if first, err := bs.MarkMessage(t.Context(), form.Get("MessageSid"), time.Now(), time.Hour); err != nil || !first {
					t.Errorf("%q: its MessageSid was recorded while the store was down (first=%v, %v)", c.body, first, err)
				}
			}
			if ok, err := bs.Allow(t.Context(), "reset:"+phone, time.Now(), time.Hour, 1); err != nil || !ok {
				t.Errorf("a reset was counted while the store was down: Allow = %v, %v", ok, err)
			}
			if gated && store.calls.Load() != before {
				t.Errorf("with the gate closed the webhook called the store %d times", store.calls.Load()-before)
			}
			if status, _, _ := post("RESET", "bad-signature"); status != http.StatusForbidden {
				t.Errorf("unsigned request with the store down: %d, want 403", status)
			}
			store.down.Store(false)
			if err := gate.Probe(t.Context()); err != nil {
				t.Fatal(err)
			}
			if status, texts, _ := post("HELP", ""); status != http.StatusOK || len(texts) != 1 ||
				texts[0] != catalog.Text("en", "sms.help", nil) {
				t.Errorf("HELP once the store is back: %d %q; want the help text", status, texts)
			}
		})
	}
}

// TestCommandLanguage: the language of a command word, as the webhook
// reads it when the store cannot tell the sender's.
func TestCommandLanguage(t *testing.T) {
	for body, want := range map[string]string{
		"RESET": "", "reset 123 456": "", "Réinitialiser 123456": "fr", "DÉBLOQUER": "fr", "statut": "fr",
		"aide": "fr", "ARRÊT": "fr", "Pas moi": "fr", "UNLOCK": "en", "status": "en", "help": "en", "info": "en",
		"not me": "en", "STOP": "", "START": "", "stop all": "en", "bonjour": "", "": "", "reset please": "",
	} {
		if got := gateway.CommandLanguage(body); got != want {
			t.Errorf("CommandLanguage(%q) = %q, want %q", body, got, want)
		}
	}
}
