package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/expiry"
)

// Self-expiring SMS passwords end to end: RESET by signed webhook against
// the real directory, the check kept in the real bbolt file across a
// restart, the worker re-randomising through the real directory client,
// and binds that tell which password works.

const smsTTL = 10 * time.Minute

func expiryHarness(t *testing.T, lab *ldaplab.Server) *harness {
	t.Helper()
	return newHarness(t, lab, func(_ *directory.Config, s *gateway.Settings) { s.SMSPasswordTTL = smsTTL })
}

// resetBySMS texts RESET from phone and returns the texted password.
func (h *harness) resetBySMS(phone string) string {
	h.t.Helper()
	r, _ := h.sms(phone, "RESET")
	return h.texted(r, phone)
}

// reopenStore closes the data file and opens it again, as a restart does;
// the webhook keeps the closed store, so no SMS may follow.
func (h *harness) reopenStore() {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatal(err)
	}
	s, err := bolt.Open(h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	h.store = s
}

func (h *harness) smsCheck(username string) (enroll.SMSPasswordCheck, bool) {
	h.t.Helper()
	c, err := h.store.SMSPasswordCheck(context.Background(), username)
	if errors.Is(err, enroll.ErrNotFound) {
		return c, false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return c, true
}

// expiryEvents returns the outcomes of username's sms_password_expired events.
func (h *harness) expiryEvents(username string) []string {
	h.t.Helper()
	var out []string
	for _, ev := range h.audit(username) {
		if ev.Action == "sms_password_expired" {
			out = append(out, ev.Outcome)
		}
	}
	return out
}

// expiryWorkerDeps returns a directory client for cfg (closed when the test
// ends) and the default password generator, for a worker of the test's own.
func expiryWorkerDeps(t *testing.T, cfg directory.Config) (*directory.Client, *password.Generator) {
	t.Helper()
	cfg.Timeout = 3 * time.Second
	dir, err := directory.New(cfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	gen, err := password.NewGenerator(password.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return dir, gen
}

// changeOwnPassword changes dn's password from old to new as the user
// would at next logon: on AD a password change (delete the old value, add
// the new one) over another ordinary user's connection, since the
// must-change password itself cannot bind; on OpenLDAP a Password Modify on
// the user's own connection, which ppolicy allows after a reset.
func changeOwnPassword(t *testing.T, lab *ldaplab.Server, dn, oldPassword, newPassword string) {
	t.Helper()
	if lab.Dialect == ldaplab.DialectAD {
		peer := lab.AddUser(t, ldaplab.UserSpec{Username: lab.UniqueName("peer"), Password: "Peer#Pass9xy"})
		m := ldap.NewModifyRequest(dn, nil)
		m.Delete("unicodePwd", []string{directory.EncodeUnicodePwd(oldPassword)})
		m.Add("unicodePwd", []string{directory.EncodeUnicodePwd(newPassword)})
		if err := lab.Conn(t, peer, "Peer#Pass9xy").Modify(m); err != nil {
			t.Fatalf("change the password of %s: %v", dn, err)
		}
		return
	}
	if _, err := lab.Conn(t, dn, oldPassword).PasswordModify(ldap.NewPasswordModifyRequest("", oldPassword, newPassword)); err != nil {
		t.Fatalf("change the password of %s: %v", dn, err)
	}
}

// TestSMSPasswordExpiresE2E: after the TTL the texted password no longer
// binds, while a password the user changed in time is untouched; the
// schedule survives a restart; a directory outage keeps the checks.
func TestSMSPasswordExpiresE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		h := expiryHarness(t, lab)
		const idlePhone, changerPhone = "+12015550131", "+12015550132"
		idle, idleDN, _ := h.user(idlePhone, "en")
		changer, changerDN, _ := h.user(changerPhone, "en")

		before := time.Now()
		idlePassword := h.resetBySMS(idlePhone)
		texted := h.resetBySMS(changerPhone)
		for _, u := range []string{idle, changer} {
			c, ok := h.smsCheck(u)
			if !ok {
				t.Fatalf("no SMS password check recorded for %s", u)
			}
			if c.ResetAt.Before(before.Add(-time.Second)) || c.Due.Sub(c.ResetAt) != smsTTL || c.DN != map[string]string{idle: idleDN, changer: changerDN}[u] {
				t.Errorf("check of %s = %+v, want reset now, due %s later, with its DN", u, c, smsTTL)
			}
		}
		mine := "Mine#Own7pass"
		changeOwnPassword(t, lab, changerDN, texted, mine)
		h.expectBind(changerDN, mine, "ok")
		h.expectBind(idleDN, idlePassword, "must-change")

		// Restart: the schedule is in the data file, read by a new worker.
		h.reopenStore()
		clock := enrolltest.NewClock(time.Now())
		dir, gen := expiryWorkerDeps(t, lab.DirectoryConfig())
		worker := expiry.NewSMSPasswords(expiry.SMSPasswordDeps{Store: h.store, Directory: dir, Generator: gen}, expiry.SMSPasswordOptions{Now: clock.Now, Poll: 20 * time.Millisecond})

		// Before the TTL nothing happens.
		clock.Advance(smsTTL - time.Minute)
		if err := worker.Sweep(t.Context()); err != nil {
			t.Fatalf("Sweep before the TTL: %v", err)
		}
		h.expectBind(idleDN, idlePassword, "must-change")
		if got := h.expiryEvents(idle); len(got) != 0 {
			t.Fatalf("events before the TTL: %v", got)
		}

		// The directory is down when the TTL passes: the checks stay.
		clock.Advance(2 * time.Minute)
		down := lab.DirectoryConfig()
		down.URLs = []string{"ldaps://127.0.0.1:1"}
		downDir, _ := expiryWorkerDeps(t, down)
		err := expiry.NewSMSPasswords(expiry.SMSPasswordDeps{Store: h.store, Directory: downDir, Generator: gen}, expiry.SMSPasswordOptions{Now: clock.Now}).Sweep(t.Context())
		if !errors.Is(err, directory.ErrUnavailable) {
			t.Fatalf("Sweep with the directory down = %v, want ErrUnavailable", err)
		}
		for _, u := range []string{idle, changer} {
			if c, ok := h.smsCheck(u); !ok || c.Attempts != 0 {
				t.Fatalf("check of %s after an outage = %+v, %v; want it kept as it was", u, c, ok)
			}
		}
		h.expectBind(idleDN, idlePassword, "must-change")

		// The worker's loop, as the process runs it.
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- worker.Run(ctx) }()
		for len(h.expiryEvents(idle)) == 0 || len(h.expiryEvents(changer)) == 0 {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("no expiry after 20s: %v %v", h.expiryEvents(idle), h.expiryEvents(changer))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("both checks done %v after the worker started", time.Since(start).Round(time.Millisecond))
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}

		h.expectBind(idleDN, idlePassword, "invalid") // the texted password is worthless
		h.expectBind(changerDN, mine, "ok")           // the user's own is untouched
		if u, err := dir.FindUser(t.Context(), idle); err != nil || !u.MustChange {
			t.Errorf("%s after re-randomising: must change = %v, %v; want true", idle, u.MustChange, err)
		}
		if got := h.expiryEvents(idle); len(got) != 1 || got[0] != "ok" {
			t.Errorf("%s events = %v, want [ok]", idle, got)
		}
		if got := h.expiryEvents(changer); len(got) != 1 || got[0] != "changed_in_time" {
			t.Errorf("%s events = %v, want [changed_in_time]", changer, got)
		}
		for _, u := range []string{idle, changer} {
			if _, ok := h.smsCheck(u); ok {
				t.Errorf("check of %s still scheduled after it was done", u)
			}
		}
		h.assertNotStored(idlePassword)
		h.assertNotStored(texted)
	})
}

// TestSMSPasswordNewResetReplacesCheckE2E: a second RESET replaces the
// pending check, so the first one's due time re-randomises nothing.
func TestSMSPasswordNewResetReplacesCheckE2E(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		h := expiryHarness(t, lab)
		const phone = "+12015550133"
		username, dn, _ := h.user(phone, "en")
		h.resetBySMS(phone)
		first, _ := h.smsCheck(username)
		time.Sleep(20 * time.Millisecond)
		second := h.resetBySMS(phone)
		now, ok := h.smsCheck(username)
		if !ok || !now.ResetAt.After(first.ResetAt) {
			t.Fatalf("check after the second RESET = %+v, %v; want the second reset's", now, ok)
		}
		dir, gen := expiryWorkerDeps(t, lab.DirectoryConfig())
		clock := enrolltest.NewClock(first.Due.Add(now.ResetAt.Sub(first.ResetAt) / 2))
		worker := expiry.NewSMSPasswords(expiry.SMSPasswordDeps{Store: h.store, Directory: dir, Generator: gen}, expiry.SMSPasswordOptions{Now: clock.Now})
		if err := worker.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.expectBind(dn, second, "must-change")
		clock.Set(now.Due)
		if err := worker.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.expectBind(dn, second, "invalid")
		if got := h.expiryEvents(username); len(got) != 1 || got[0] != "ok" {
			t.Errorf("events = %v, want one ok", got)
		}
	})
}

// TestSMSPasswordExpiryOffE2E: with the TTL at 0 no check is recorded.
func TestSMSPasswordExpiryOffE2E(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	h := newHarness(t, lab, nil)
	const phone = "+12015550134"
	username, _, _ := h.user(phone, "en")
	h.resetBySMS(phone)
	if c, ok := h.smsCheck(username); ok {
		t.Errorf("check recorded with the TTL off: %+v", c)
	}
}
