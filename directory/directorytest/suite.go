package directorytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
)

// BindOutcome is what an independent raw LDAP bind observed.
type BindOutcome int

const (
	BindOK         BindOutcome = iota // bound, no warning
	BindMustChange                    // AD data 773, or ppolicy "Password must be changed"
	BindInvalid                       // wrong password
	BindLocked                        // AD data 775, or ppolicy "Account locked"
	BindOther                         // anything else (the suite fails and shows it)
)

func (b BindOutcome) String() string {
	return [...]string{"ok", "must-change", "invalid-credentials", "locked", "other"}[b]
}

// UserSpec describes a fixture user.
type UserSpec struct {
	Username, Password, DisplayName, Mail, Mobile string
}

// Backend adapts one directory server to the suite.
type Backend struct {
	Name string
	// Directory returns the implementation under test, bound as the
	// service account, closed by the backend on t.Cleanup.
	Directory func(t *testing.T) directory.Directory
	// Unprivileged returns the implementation bound as an ordinary user
	// without reset rights (for ErrInsufficientRights); nil skips nothing:
	// every real backend must provide it.
	Unprivileged func(t *testing.T) directory.Directory
	// AddUser creates a fixture user and returns its DN.
	AddUser func(t *testing.T, u UserSpec) string
	// UniqueName returns a fresh username starting with prefix.
	UniqueName func(prefix string) string
	// LockOut fails binds for dn until the account is locked.
	LockOut func(t *testing.T, dn string)
	// RawBind binds as dn with a connection of its own (not the code under
	// test) and says what the server answered.
	RawBind func(dn, password string) (BindOutcome, error)
	// SpecialCharUsernames says usernames may contain *()\ (OpenLDAP uid
	// may; AD sAMAccountName may not).
	SpecialCharUsernames bool
}

const (
	initialPassword = "Initial#Pass1x"
	weakPassword    = "abc"
)

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	t.Run("Find", func(t *testing.T) { testFind(t, b) })
	t.Run("FindHostileInput", func(t *testing.T) { testHostile(t, b) })
	t.Run("Ambiguous", func(t *testing.T) { testAmbiguous(t, b) })
	t.Run("ResetMustChange", func(t *testing.T) { testResetMustChange(t, b) })
	t.Run("ResetNoMustChange", func(t *testing.T) { testResetNoMustChange(t, b) })
	t.Run("LockoutAndUnlock", func(t *testing.T) { testLockUnlock(t, b) })
	t.Run("ResetUnlocks", func(t *testing.T) { testResetUnlocks(t, b) })
	t.Run("PolicyRejection", func(t *testing.T) { testPolicy(t, b) })
	t.Run("InsufficientRights", func(t *testing.T) { testRights(t, b) })
	t.Run("Authenticate", func(t *testing.T) { testAuthenticate(t, b) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, b) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, b) })
	t.Run("PasswordSetAt", func(t *testing.T) { testPasswordSetAt(t, b) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newUser creates a user with a unique name, mail and mobile.
func newUser(t *testing.T, b Backend, prefix string) (UserSpec, string) {
	t.Helper()
	name := b.UniqueName(prefix)
	u := UserSpec{
		Username:    name,
		Password:    initialPassword,
		DisplayName: "Test " + strings.ToUpper(name[:1]) + name[1:],
		Mail:        name + "@example.test",
		Mobile:      fmt.Sprintf("+1555%07d", time.Now().UnixNano()%10_000_000),
	}
	return u, b.AddUser(t, u)
}

// sameDN compares DNs semantically (escaping and case may differ).
func sameDN(a, b string) bool {
	pa, errA := ldap.ParseDN(a)
	pb, errB := ldap.ParseDN(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return pa.EqualFold(pb)
}

func mustFind(t *testing.T, d directory.Directory, username string) directory.User {
	t.Helper()
	u, err := d.FindUser(ctxT(t), username)
	if err != nil {
		t.Fatalf("FindUser(%q): %v", username, err)
	}
	return u
}

func expectBind(t *testing.T, b Backend, dn, password string, want BindOutcome) {
	t.Helper()
	got, err := b.RawBind(dn, password)
	if got != want {
		t.Fatalf("raw bind as %s: got %v (%v), want %v", dn, got, err, want)
	}
}

func testFind(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, dn := newUser(t, b, "find")
	ctx := ctxT(t)

	u := mustFind(t, d, spec.Username)
	if !sameDN(u.DN, dn) || u.Username != spec.Username || u.Mail != spec.Mail || u.Mobile != spec.Mobile {
		t.Fatalf("FindUser = %+v, want DN %s, mail %s, mobile %s", u, dn, spec.Mail, spec.Mobile)
	}
	if u.DisplayName != spec.DisplayName {
		t.Errorf("DisplayName = %q, want %q", u.DisplayName, spec.DisplayName)
	}
	if u.Locked || u.Disabled {
		t.Errorf("fresh user: Locked=%v Disabled=%v, want both false", u.Locked, u.Disabled)
	}
	if up := mustFind(t, d, strings.ToUpper(spec.Username)); !sameDN(up.DN, dn) {
		t.Errorf("FindUser(upper case) found %s, want %s", up.DN, dn)
	}
	byMail, err := d.FindByMail(ctx, spec.Mail)
	if err != nil || !sameDN(byMail.DN, dn) {
		t.Fatalf("FindByMail = %v, %v; want %s", byMail.DN, err, dn)
	}
	byMobile, err := d.FindByMobile(ctx, spec.Mobile)
	if err != nil || !sameDN(byMobile.DN, dn) {
		t.Fatalf("FindByMobile = %v, %v; want %s", byMobile.DN, err, dn)
	}
	for _, name := range []string{b.UniqueName("nobody"), "", "   "} {
		if _, err := d.FindUser(ctx, name); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("FindUser(%q) error = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := d.FindByMail(ctx, "nobody-"+spec.Mail); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("FindByMail(unknown) error = %v, want ErrNotFound", err)
	}
}

// testHostile feeds filter metacharacters: each must be matched literally.
func testHostile(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, _ := newUser(t, b, "hostile")
	ctx := ctxT(t)
	probes := []string{"*", spec.Username[:3] + "*", "*" + spec.Username[3:], "(", ")", `\`, `\2a`,
		"*)(objectClass=*", spec.Username + ")(|(uid=*", "\x00", spec.Username + "\x00", "(&)", "(|)"}
	for _, p := range probes {
		for name, find := range map[string]func(context.Context, string) (directory.User, error){
			"FindUser": d.FindUser, "FindByMail": d.FindByMail, "FindByMobile": d.FindByMobile,
		} {
			u, err := find(ctx, p)
			if !errors.Is(err, directory.ErrNotFound) {
				t.Errorf("%s(%q) = %+v, %v; want ErrNotFound", name, p, u.DN, err)
			}
		}
	}
	if !b.SpecialCharUsernames {
		return
	}
	odd := UserSpec{Username: b.UniqueName("o") + `*()\x`, Password: initialPassword, DisplayName: "Odd Name",
		Mail: b.UniqueName("odd") + "@example.test", Mobile: "+15550009999"}
	dn := b.AddUser(t, odd)
	u := mustFind(t, d, odd.Username)
	if !sameDN(u.DN, dn) {
		t.Fatalf("FindUser(%q) = %s, want %s", odd.Username, u.DN, dn)
	}
	if err := d.SetPassword(ctx, u, "Odd#Reset2x", directory.SetPasswordOptions{}); err != nil {
		t.Fatalf("SetPassword for %q: %v", odd.Username, err)
	}
	expectBind(t, b, dn, "Odd#Reset2x", BindOK)
}

func testAmbiguous(t *testing.T, b Backend) {
	d := b.Directory(t)
	shared := b.UniqueName("shared") + "@example.test"
	for i := 0; i < 2; i++ {
		spec := UserSpec{Username: b.UniqueName("amb"), Password: initialPassword, DisplayName: "Amb", Mail: shared, Mobile: "+15550001234"}
		b.AddUser(t, spec)
	}
	if _, err := d.FindByMail(ctxT(t), shared); !errors.Is(err, directory.ErrAmbiguous) {
		t.Fatalf("FindByMail(shared) error = %v, want ErrAmbiguous", err)
	}
}

func testResetMustChange(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, dn := newUser(t, b, "mc")
	u := mustFind(t, d, spec.Username)
	const newPw = "Reset#Pass2y"
	if err := d.SetPassword(ctxT(t), u, newPw, directory.SetPasswordOptions{MustChange: true, Unlock: true}); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	expectBind(t, b, dn, newPw, BindMustChange)
	expectBind(t, b, dn, spec.Password, BindInvalid)
	if got := mustFind(t, d, spec.Username); !got.MustChange {
		t.Errorf("after a must-change reset, User.MustChange = false")
	}
	if _, err := d.Authenticate(ctxT(t), spec.Username, newPw); !errors.Is(err, directory.ErrMustChange) {
		t.Errorf("Authenticate with the new password: %v, want ErrMustChange", err)
	}
}

func testResetNoMustChange(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, dn := newUser(t, b, "nmc")
	u := mustFind(t, d, spec.Username)
	const newPw = "Plain#Pass3z"
	if err := d.SetPassword(ctxT(t), u, newPw, directory.SetPasswordOptions{}); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	expectBind(t, b, dn, newPw, BindOK)
	if got := mustFind(t, d, spec.Username); got.MustChange {
		t.Errorf("after a plain reset, User.MustChange = true")
	}
}

func testLockUnlock(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, dn := newUser(t, b, "lock")
	b.LockOut(t, dn)
	u := mustFind(t, d, spec.Username)
	if !u.Locked {
		t.Fatalf("after lockout, User.Locked = false")
	}
	if u.LockoutTime.IsZero() || time.Since(u.LockoutTime) > time.Hour || time.Until(u.LockoutTime) > time.Minute {
		t.Errorf("LockoutTime = %v, want about now", u.LockoutTime)
	}
	expectBind(t, b, dn, spec.Password, BindLocked)
	if _, err := d.Authenticate(ctxT(t), spec.Username, spec.Password); !errors.Is(err, directory.ErrLocked) {
		t.Errorf("Authenticate while locked: %v, want ErrLocked", err)
	}
	if err := d.Unlock(ctxT(t), u); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if got := mustFind(t, d, spec.Username); got.Locked {
		t.Errorf("after Unlock, User.Locked = true")
	}
	expectBind(t, b, dn, spec.Password, BindOK)
	// Unlocking an account that is not locked is not an error.
	if err := d.Unlock(ctxT(t), u); err != nil {
		t.Errorf("Unlock of an unlocked account: %v", err)
	}
}

func testResetUnlocks(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, dn := newUser(t, b, "runl")
	b.LockOut(t, dn)
	u := mustFind(t, d, spec.Username)
	const newPw = "Unlock#Pass4w"
	if err := d.SetPassword(ctxT(t), u, newPw, directory.SetPasswordOptions{Unlock: true}); err != nil {
		t.Fatalf("SetPassword(unlock): %v", err)
	}
	expectBind(t, b, dn, newPw, BindOK)
}

func testPolicy(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, dn := newUser(t, b, "pol")
	u := mustFind(t, d, spec.Username)
	err := d.SetPassword(ctxT(t), u, weakPassword, directory.SetPasswordOptions{MustChange: true, Unlock: true})
	if !errors.Is(err, directory.ErrPolicy) {
		t.Fatalf("SetPassword(%q) error = %v, want ErrPolicy", weakPassword, err)
	}
	var pe *directory.PolicyError
	if !errors.As(err, &pe) || pe.Reason == "" {
		t.Fatalf("error %v carries no *PolicyError reason", err)
	}
	if strings.Contains(err.Error(), weakPassword+"\"") {
		t.Errorf("error text echoes the password: %v", err)
	}
	// Nothing changed: the old password still binds, with no must-change.
	expectBind(t, b, dn, spec.Password, BindOK)
}

func testRights(t *testing.T, b Backend) {
	victim, _ := newUser(t, b, "victim")
	d := b.Directory(t)
	u := mustFind(t, d, victim.Username)
	weak := b.Unprivileged(t)
	err := weak.SetPassword(ctxT(t), u, "Other#Pass5v", directory.SetPasswordOptions{})
	if !errors.Is(err, directory.ErrInsufficientRights) {
		t.Fatalf("SetPassword as an unprivileged account: %v, want ErrInsufficientRights", err)
	}
}

func testAuthenticate(t *testing.T, b Backend) {
	d := b.Directory(t)
	spec, _ := newUser(t, b, "auth")
	ctx := ctxT(t)
	if u, err := d.Authenticate(ctx, spec.Username, spec.Password); err != nil || u.Username != spec.Username {
		t.Fatalf("Authenticate(good) = %+v, %v", u, err)
	}
	for _, pw := range []string{"wrong-Pass9", ""} {
		if _, err := d.Authenticate(ctx, spec.Username, pw); !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("Authenticate(%q) = %v, want ErrInvalidCredentials", pw, err)
		}
	}
	if _, err := d.Authenticate(ctx, b.UniqueName("ghost"), "x"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("Authenticate(unknown user) = %v, want ErrNotFound", err)
	}
}

func testConcurrent(t *testing.T, b Backend) {
	d := b.Directory(t)
	var specs []UserSpec
	for i := 0; i < 4; i++ {
		s, _ := newUser(t, b, "conc")
		specs = append(specs, s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := specs[i%len(specs)]
			u, err := d.FindUser(context.Background(), s.Username)
			if err != nil || u.Username != s.Username {
				errs <- fmt.Errorf("FindUser(%s) = %s, %v", s.Username, u.Username, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCancelled(t *testing.T, b Backend) {
	d := b.Directory(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.FindUser(ctx, "anyone"); err == nil || errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("FindUser with a cancelled context: %v, want an unavailable error", err)
	}
}
