package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
)

// TestServeRecoversHeldMessages: a node died between holding RESET
// messages and releasing them. A real `serve` that opens that data file
// finishes them as the leader: the message whose password was set goes
// out as written, the one whose account never got a password tells the
// user the reset did not finish; the audit says which.
func TestServeRecoversHeldMessages(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	cfg := labConfig(lab)
	cfg.Listen = freePort(t)
	f := writeConfig(t, cfg)
	const phoneSet, phoneGone, password = "+12015557101", "+12015557102", "Held#Serve9pq"
	setUser := lab.UniqueName("heldserve")
	lab.AddUser(t, ldaplab.UserSpec{Username: setUser, DisplayName: "Held " + setUser})
	goneUser := lab.UniqueName("heldgone") // not in the directory: nothing was set

	// The dead node's work: both messages held long ago (older than the
	// grace), and one password set.
	a := openHeldApp(t, f)
	ctx := t.Context()
	longAgo := time.Now().Add(-10 * time.Minute)
	hold := func(username, phone string) uint64 {
		body := a.catalog.Text("en", "sms.reset.ok", map[string]string{"username": username, "password": password})
		id, err := a.queue.Enqueue(ctx, enroll.OutboundMessage{Kind: enroll.KindSMS, To: phone, Language: "en",
			Purpose: gateway.PasswordPurpose, Username: username, Priority: enroll.PriorityHigh, Status: enroll.StatusHeld,
			Prepaid: true, CreatedAt: longAgo}, body)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	setID, goneID := hold(setUser, phoneSet), hold(goneUser, phoneGone)
	u, err := a.dir.FindUser(ctx, setUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.dir.SetPassword(ctx, u, password, directory.SetPasswordOptions{}); err != nil {
		t.Fatal(err)
	}
	a.Close()

	srv := startServe(t, f, cfg.Listen)
	texts := func(phone string) []string {
		var out []string
		for _, r := range sharedTwilio().Resources() {
			if r.To == phone {
				out = append(out, r.Body)
			}
		}
		return out
	}
	deadline := time.Now().Add(asyncWait)
	for len(texts(phoneSet)) == 0 || len(texts(phoneGone)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not send the held messages within %s: %q, %q\nlog:\n%s", asyncWait,
				texts(phoneSet), texts(phoneGone), srv.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop(t)

	if got := texts(phoneSet); len(got) != 1 || !strings.Contains(got[0], password) {
		t.Errorf("the set password's phone received %q, want its message once", got)
	}
	incomplete := "ReplyReset: your password reset for " + goneUser + " did not finish and your password was not changed. Text RESET to try again."
	if got := texts(phoneGone); len(got) != 1 || got[0] != incomplete {
		t.Errorf("the other phone received %q, want only %q", got, incomplete)
	}
	if strings.Contains(srv.stderr.String(), password) {
		t.Errorf("the log holds the password:\n%s", srv.stderr)
	}
	a = openHeldApp(t, f)
	defer a.Close()
	for _, tt := range []struct {
		id       uint64
		username string
		action   string
	}{{setID, setUser, enroll.ActionHeldSent}, {goneID, goneUser, enroll.ActionHeldIncomplete}} {
		evs, err := a.store.Audit(ctx, enroll.AuditFilter{Username: tt.username})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Action)
			if strings.Contains(ev.Detail, password) {
				t.Errorf("audit event %+v holds the password", ev)
			}
		}
		if len(got) != 1 || got[0] != tt.action {
			t.Errorf("audit of %s = %v, want [%s]", tt.username, got, tt.action)
		}
	}
	msgs, err := a.store.Messages(ctx, enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Status == enroll.StatusHeld {
			t.Errorf("message %d is still held after serve ran", m.ID)
		}
	}
}

// openHeldApp opens the product on f without serving (the data file is
// then this test's until Close).
func openHeldApp(t *testing.T, f configFile) *app {
	t.Helper()
	cfg, err := loadConfigFlag(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
