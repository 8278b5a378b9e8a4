package directorytest

import (
	"errors"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// testPasswordSetAt: PasswordSetAt tells when the password was last set,
// to the second, and a reset with "change at next logon" (AD pwdLastSet
// 0) moves it to the time of that reset.
func testPasswordSetAt(t *testing.T, b Backend) {
	d := b.Directory(t)
	r, ok := d.(directory.PasswordSetReader)
	if !ok {
		t.Fatalf("%T does not implement directory.PasswordSetReader", d)
	}
	spec, _ := newUser(t, b, "pwdset")
	ctx := ctxT(t)
	u := mustFind(t, d, spec.Username)
	// A first reset, so that every backend has a set time (ppolicy
	// writes pwdChangedTime at an add only when its policy ages passwords).
	first := time.Now()
	if err := d.SetPassword(ctx, u, "First#Reset7qz", directory.SetPasswordOptions{}); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	before, err := r.PasswordSetAt(ctx, spec.Username)
	if err != nil {
		t.Fatalf("PasswordSetAt after a reset: %v", err)
	}
	// The servers run on this host's clock; times are cut to the second.
	if before.Before(first.Truncate(time.Second)) || before.After(time.Now()) {
		t.Errorf("PasswordSetAt = %s, want between %s and now", before.UTC(), first.UTC())
	}
	// The next reset must fall in a later second to be told apart.
	time.Sleep(time.Until(before.Add(time.Second + 50*time.Millisecond)))
	second := time.Now()
	if err := d.SetPassword(ctx, u, "Second#Reset8qz", directory.SetPasswordOptions{MustChange: true}); err != nil {
		t.Fatalf("SetPassword (must change): %v", err)
	}
	after, err := r.PasswordSetAt(ctx, spec.Username)
	if err != nil {
		t.Fatalf("PasswordSetAt after a must-change reset: %v", err)
	}
	if !after.After(before) || after.Before(second.Truncate(time.Second)) || after.After(time.Now()) {
		t.Errorf("after a must-change reset at %s PasswordSetAt = %s (was %s), want that reset's second",
			second.UTC(), after.UTC(), before.UTC())
	}
	if again, err := r.PasswordSetAt(ctx, spec.Username); err != nil || !again.Equal(after) {
		t.Errorf("PasswordSetAt read again = %s, %v; want %s: reading changes nothing", again, err, after)
	}
	if _, err := r.PasswordSetAt(ctx, b.UniqueName("nobody")); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("PasswordSetAt of an unknown user: %v, want ErrNotFound", err)
	}
}
