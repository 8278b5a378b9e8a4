package expiry_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/expiry"
)

// expiryDir is a directory whose answers the test sets.
type expiryDir struct {
	users  map[string]directory.User
	setErr []error // returned by SetPassword calls in turn, then nil
	sets   []directory.SetPasswordOptions
}

func (d *expiryDir) FindUser(_ context.Context, username string) (directory.User, error) {
	if u, ok := d.users[username]; ok {
		return u, nil
	}
	return directory.User{}, fmt.Errorf("find %s: %w", username, directory.ErrNotFound)
}

func (d *expiryDir) SetPassword(_ context.Context, _ directory.User, _ string, opt directory.SetPasswordOptions) error {
	d.sets = append(d.sets, opt)
	if len(d.setErr) == 0 {
		return nil
	}
	err := d.setErr[0]
	d.setErr = d.setErr[1:]
	return err
}

func (d *expiryDir) Unlock(context.Context, directory.User) error { return nil }

type fixedPassword struct{}

func (fixedPassword) Generate(directory.User) (string, error) { return "Random#Pass1x", nil }

// TestSMSExpiryCheckOutcomes: what the worker does with each answer of the
// directory, and that what it sets is must-change without unlock.
func TestSMSExpiryCheckOutcomes(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := t.Context()
	reset := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	schedule := func(username, dn string) {
		t.Helper()
		err := store.ScheduleSMSPasswordCheck(ctx, enroll.SMSPasswordCheck{Username: username, DN: dn, ResetAt: reset, Due: reset.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := &expiryDir{users: map[string]directory.User{
		"unused": {Username: "unused", DN: "uid=unused,ou=people", MustChange: true},
		"moved":  {Username: "moved", DN: "uid=moved,ou=elsewhere", MustChange: true},
		"policy": {Username: "policy", DN: "uid=policy,ou=people", MustChange: true},
	}}
	schedule("unused", "UID=unused,ou=people") // DNs compare case-insensitively
	schedule("gone", "uid=gone,ou=people")
	schedule("moved", "uid=moved,ou=people")
	clock := enrolltest.NewClock(reset.Add(10 * time.Minute))
	x := expiry.NewSMSPasswords(expiry.SMSPasswordDeps{Store: store, Directory: dir, Generator: fixedPassword{}}, expiry.SMSPasswordOptions{Now: clock.Now, RetryBase: time.Minute, MaxAttempts: 3})
	if err := x.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	outcome := func(username string) string {
		t.Helper()
		evs, err := store.Audit(ctx, enroll.AuditFilter{Username: username, Action: "sms_password_expired"})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Outcome+": "+ev.Detail)
		}
		return strings.Join(out, " | ")
	}
	for username, want := range map[string]string{"unused": "ok: reset at", "gone": "error: the account is no longer",
		"moved": "error: the account's DN changed"} {
		if got := outcome(username); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q...", username, got, want)
		}
		if _, err := store.SMSPasswordCheck(ctx, username); err == nil {
			t.Errorf("%s: check still scheduled", username)
		}
	}
	if len(dir.sets) != 1 || dir.sets[0] != (directory.SetPasswordOptions{MustChange: true}) {
		t.Errorf("SetPassword calls %+v, want one with must-change and without unlock", dir.sets)
	}

	// The directory refuses every password: three tries per attempt, then
	// a retry after 1m, 2m, and the check is given up at the third attempt.
	refused := &directory.PolicyError{Reason: "history"}
	dir.setErr = []error{refused, refused, refused, refused, refused, refused, refused, refused, refused}
	dir.sets = nil
	schedule("policy", "uid=policy,ou=people")
	for i, wait := range []time.Duration{0, time.Minute, 2 * time.Minute} {
		clock.Advance(wait)
		if err := x.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := store.SMSPasswordCheck(ctx, "policy")
		if i < 2 && (err != nil || c.Attempts != i+1 || !c.Due.Equal(clock.Now().Add(time.Minute<<i))) {
			t.Errorf("after attempt %d: %+v, %v", i+1, c, err)
		}
		if i == 2 && err == nil {
			t.Errorf("after the last attempt the check is still there: %+v", c)
		}
	}
	if len(dir.sets) != 9 {
		t.Errorf("%d passwords tried, want 3 per attempt", len(dir.sets))
	}
	if got := outcome("policy"); strings.Count(got, "error: ") != 3 || !strings.Contains(got, "given up after 3 attempts") {
		t.Errorf("policy audit: %q", got)
	}
}
