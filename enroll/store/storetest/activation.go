package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// errBoom is what the update functions of the suite fail with.
var errBoom = errors.New("storetest: update function failed")

// whileFailing calls work(0) … work(concurrency-1) concurrently while other
// goroutines keep making writes that fail with errBoom (fail). A store that
// shares one transaction among writers must then roll back and re-run the
// writes that shared it with a failure; any result counted outside the
// transaction would be counted twice.
func whileFailing(t *testing.T, fail func(context.Context) error, work func(i int)) {
	t.Helper()
	var stop atomic.Bool
	var noise, wg sync.WaitGroup
	for range 8 {
		noise.Go(func() {
			for !stop.Load() {
				if err := fail(t.Context()); !errors.Is(err, errBoom) {
					t.Errorf("failing write: %v, want errBoom", err)
					return
				}
			}
		})
	}
	for i := range concurrency {
		wg.Go(func() { work(i) })
	}
	wg.Wait()
	stop.Store(true)
	noise.Wait()
}

// failActivation is a write that fails with errBoom.
func failActivation(as linkStore, hash string) func(context.Context) error {
	return func(ctx context.Context) error {
		return as.UpdateActivation(ctx, hash, func(a *enroll.Activation) error { a.CodeAttempts += 1000; return errBoom })
	}
}

// linkStore is the part of Store the activation cases use: the links and
// what became of the ended ones.
type linkStore interface {
	enroll.ActivationStore
	enroll.EndedLinkStore
}

// activationStore opens a store on a fresh directory and returns it both
// as a Store and as a linkStore.
func activationStore(t *testing.T, open Opener) (enroll.Store, linkStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

// tokenHash is a fixture token hash; stores treat it as an opaque key.
func tokenHash(n int) string { return fmt.Sprintf("%064x", n) }

// activation is a fixture valid for a week from t0.
func activation(username, hash string) enroll.Activation {
	return enroll.Activation{TokenHash: hash, Username: username, Mail: username + "@example.com",
		Language: "en", CreatedBy: "admin:helpdesk", CreatedAt: t0, ExpiresAt: t0.Add(7 * 24 * time.Hour)}
}

func putActivation(t *testing.T, as linkStore, a enroll.Activation) {
	t.Helper()
	if err := as.PutActivation(t.Context(), a); err != nil {
		t.Fatalf("PutActivation(%s): %v", a.Username, err)
	}
}

// wantActivation checks that the activation under hash equals want.
func wantActivation(t *testing.T, as linkStore, hash string, want enroll.Activation) {
	t.Helper()
	got, err := as.ActivationByToken(t.Context(), hash)
	if err != nil {
		t.Errorf("ActivationByToken(%.8s…): %v", hash, err)
		return
	}
	if got.TokenHash != want.TokenHash || got.Username != want.Username || got.Mail != want.Mail ||
		got.Language != want.Language || got.CreatedBy != want.CreatedBy || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || got.Phone != want.Phone || got.CodeHash != want.CodeHash ||
		!bytes.Equal(got.CodeSealed, want.CodeSealed) || got.CodeMethod != want.CodeMethod ||
		!got.CodeExpires.Equal(want.CodeExpires) || !got.CodeSentAt.Equal(want.CodeSentAt) ||
		got.CodeAttempts != want.CodeAttempts || !got.LockedUntil.Equal(want.LockedUntil) ||
		!bytes.Equal(got.TOTPSealed, want.TOTPSealed) || got.LastTOTPStep != want.LastTOTPStep {
		t.Errorf("activation = %+v\nwant         %+v", got, want)
	}
}

// wantUserActivation checks which token hash is username's current
// activation; "" means none (ErrNotFound).
func wantUserActivation(t *testing.T, as linkStore, username, hash string) {
	t.Helper()
	a, err := as.ActivationByUser(t.Context(), username)
	switch {
	case hash == "" && !isNotFound(err):
		t.Errorf("ActivationByUser(%s) = %.8s…, %v; want ErrNotFound", username, a.TokenHash, err)
	case hash != "" && (err != nil || a.TokenHash != hash):
		t.Errorf("ActivationByUser(%s) = %.8s…, %v; want %.8s…", username, a.TokenHash, err, hash)
	}
}

func wantTokenUnknown(t *testing.T, as linkStore, hash string) {
	t.Helper()
	if a, err := as.ActivationByToken(t.Context(), hash); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("ActivationByToken(%.8s…) = %s, %v; want ErrTokenUnknown", hash, a.Username, err)
	}
}

func testActivationPutGet(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	h1, h2 := tokenHash(1), tokenHash(2)
	wantTokenUnknown(t, as, h1)
	wantUserActivation(t, as, "jdoe", "")

	a := activation("JDoe", h1)
	a.Phone, a.CodeHash, a.CodeAttempts, a.LastTOTPStep = phone1, "c0de", 2, 57000000
	a.CodeExpires, a.CodeSentAt, a.LockedUntil = t0.Add(10*time.Minute), t0, t0.Add(time.Hour)
	a.TOTPSealed, a.CodeSealed, a.CodeMethod = []byte{0, 1, 2, 0xff}, []byte("sealed code"), "voice"
	putActivation(t, as, a)
	wantActivation(t, as, h1, a)
	for _, name := range []string{"JDoe", "jdoe", "JDOE"} {
		wantUserActivation(t, as, name, h1)
	}

	// Expiry is the caller's to judge: an expired activation is still found.
	old := activation("asmith", h2)
	old.ExpiresAt = t0.Add(-time.Hour)
	putActivation(t, as, old)
	wantActivation(t, as, h2, old)

	// Putting the same token again rewrites the activation in place.
	a.Language = "fr"
	putActivation(t, as, a)
	wantActivation(t, as, h1, a)
	wantUserActivation(t, as, "jdoe", h1)
}

func testActivationReplace(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	ctx := t.Context()
	h1, h2, h3 := tokenHash(1), tokenHash(2), tokenHash(3)
	putActivation(t, as, activation("jdoe", h1))
	other := activation("asmith", h3)
	putActivation(t, as, other)

	again := activation("JDOE", h2) // the same user, another spelling
	putActivation(t, as, again)
	wantTokenUnknown(t, as, h1)
	wantActivation(t, as, h2, again)
	wantUserActivation(t, as, "jdoe", h2)
	wantActivation(t, as, h3, other)
	wantUserActivation(t, as, "asmith", h3)

	// The replaced token is dead for every use.
	if err := as.UpdateActivation(ctx, h1, func(*enroll.Activation) error { return nil }); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("UpdateActivation with a replaced token: %v, want ErrTokenUnknown", err)
	}
	if err := as.CompleteActivation(ctx, h1, enrollment("jdoe", phone1, enroll.StateActive)); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("CompleteActivation with a replaced token: %v, want ErrTokenUnknown", err)
	}
	if err := as.DeleteActivation(ctx, h1); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("DeleteActivation with a replaced token: %v, want ErrTokenUnknown", err)
	}
	if _, err := s.Enrollment(ctx, "jdoe"); !isNotFound(err) {
		t.Errorf("a replaced token completed an enrollment: %v", err)
	}

	// A token hash that belongs to another user's activation is refused.
	if err := as.PutActivation(ctx, activation("carol", h3)); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("PutActivation with another user's token hash: %v, want ErrInvalid", err)
	}
	wantActivation(t, as, h3, other)
	wantUserActivation(t, as, "asmith", h3)
	wantUserActivation(t, as, "carol", "")
}

func testActivationUpdate(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	ctx := t.Context()
	h1 := tokenHash(1)
	want := activation("jdoe", h1)
	putActivation(t, as, want)

	err := as.UpdateActivation(ctx, h1, func(a *enroll.Activation) error {
		a.Phone, a.CodeHash, a.CodeAttempts, a.CodeSentAt = phone1, "c0de", 1, t0.Add(time.Minute)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateActivation: %v", err)
	}
	want.Phone, want.CodeHash, want.CodeAttempts, want.CodeSentAt = phone1, "c0de", 1, t0.Add(time.Minute)
	wantActivation(t, as, h1, want)

	bad := []struct {
		name string
		fn   func(*enroll.Activation) error
		want error
	}{
		{"fn fails", func(a *enroll.Activation) error { a.CodeAttempts = 9; return errBoom }, errBoom},
		{"token hash changed", func(a *enroll.Activation) error { a.TokenHash = tokenHash(2); return nil }, enroll.ErrInvalid},
		{"username changed", func(a *enroll.Activation) error { a.Username = "asmith"; return nil }, enroll.ErrInvalid},
		{"phone not E.164", func(a *enroll.Activation) error { a.Phone = "0612345678"; return nil }, enroll.ErrInvalid},
		{"expiry zeroed", func(a *enroll.Activation) error { a.ExpiresAt = time.Time{}; return nil }, enroll.ErrInvalid},
	}
	for _, tt := range bad {
		if err := as.UpdateActivation(ctx, h1, tt.fn); !errors.Is(err, tt.want) {
			t.Errorf("%s: UpdateActivation = %v, want %v", tt.name, err, tt.want)
		}
		wantActivation(t, as, h1, want)
	}
	wantTokenUnknown(t, as, tokenHash(2))
	wantUserActivation(t, as, "jdoe", h1)
	wantUserActivation(t, as, "asmith", "")

	if err := as.UpdateActivation(ctx, tokenHash(9), func(*enroll.Activation) error { return nil }); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("UpdateActivation of an unknown token: %v, want ErrTokenUnknown", err)
	}
}

// testActivationUpdateConcurrent races increments with failing updates: a
// failed update must not lose or repeat anyone else's.
func testActivationUpdateConcurrent(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	h := tokenHash(1)
	want := activation("jdoe", h)
	putActivation(t, as, want)
	whileFailing(t, failActivation(as, h), func(int) {
		err := as.UpdateActivation(t.Context(), h, func(a *enroll.Activation) error { a.CodeAttempts++; return nil })
		if err != nil {
			t.Error(err)
		}
	})
	want.CodeAttempts = concurrency
	wantActivation(t, as, h, want)
}

func testCompleteActivation(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	ctx := t.Context()
	h1, h2 := tokenHash(1), tokenHash(2)
	putActivation(t, as, activation("JDoe", h1))
	put(t, s, enrollment("asmith", "", enroll.StatePending)) // an older pending record
	putActivation(t, as, activation("asmith", h2))

	e := enrollment("JDoe", phone1, enroll.StateActive)
	if err := as.CompleteActivation(ctx, h1, e); err != nil {
		t.Fatalf("CompleteActivation: %v", err)
	}
	wantEqual(t, get(t, s, "jdoe"), e)
	wantOwner(t, s, phone1, "JDoe")
	wantTokenUnknown(t, as, h1)
	wantUserActivation(t, as, "jdoe", "")
	if err := as.CompleteActivation(ctx, h1, e); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("second CompleteActivation: %v, want ErrTokenUnknown", err)
	}

	e2 := enrollment("asmith", phone2, enroll.StateActive)
	if err := as.CompleteActivation(ctx, h2, e2); err != nil {
		t.Fatalf("CompleteActivation over a pending enrollment: %v", err)
	}
	wantEqual(t, get(t, s, "asmith"), e2)
	wantOwner(t, s, phone2, "asmith")

	// An activation completes only its own user's enrollment.
	h3 := tokenHash(3)
	putActivation(t, as, activation("carol", h3))
	if err := as.CompleteActivation(ctx, h3, enrollment("dave", phone3, enroll.StateActive)); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("completing carol's activation as dave: %v, want ErrInvalid", err)
	}
	if _, err := s.Enrollment(ctx, "dave"); !isNotFound(err) {
		t.Errorf("dave was enrolled with carol's token: %v", err)
	}
	wantOwner(t, s, phone3, "")
	wantUserActivation(t, as, "carol", h3)

	// A re-activation after enrollment starts afresh.
	putActivation(t, as, activation("jdoe", tokenHash(4)))
	wantUserActivation(t, as, "jdoe", tokenHash(4))
}

// testCompleteActivationOnce completes one token from many goroutines:
// exactly one may succeed.
func testCompleteActivationOnce(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	h, other := tokenHash(1), tokenHash(2)
	putActivation(t, as, activation("jdoe", h))
	putActivation(t, as, activation("asmith", other))
	var done atomic.Int32
	whileFailing(t, failActivation(as, other), func(i int) {
		e := enrollment("jdoe", phone1, enroll.StateActive)
		e.Method = fmt.Sprint("sms-", i)
		err := as.CompleteActivation(t.Context(), h, e)
		switch {
		case err == nil:
			done.Add(1)
		case !errors.Is(err, enroll.ErrTokenUnknown):
			t.Errorf("CompleteActivation: %v, want nil or ErrTokenUnknown", err)
		}
	})
	if n := done.Load(); n != 1 {
		t.Errorf("%d of %d concurrent CompleteActivation calls with one token succeeded, want exactly 1", n, concurrency)
	}
	wantOwner(t, s, phone1, "jdoe")
}

func testCompleteActivationPhoneTaken(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	ctx := t.Context()
	alice := enrollment("alice", phone1, enroll.StateActive)
	bob := enrollment("bob", "", enroll.StatePending)
	put(t, s, alice)
	put(t, s, bob)
	h := tokenHash(1)
	a := activation("bob", h)
	a.Phone = phone1
	putActivation(t, as, a)

	if err := as.CompleteActivation(ctx, h, enrollment("bob", phone1, enroll.StateActive)); !errors.Is(err, enroll.ErrPhoneTaken) {
		t.Fatalf("CompleteActivation onto alice's number: %v, want ErrPhoneTaken", err)
	}
	wantEqual(t, get(t, s, "bob"), bob)
	wantEqual(t, get(t, s, "alice"), alice)
	wantOwner(t, s, phone1, "alice")
	wantActivation(t, as, h, a)
	wantUserActivation(t, as, "bob", h)

	// The token still works with another number.
	if err := as.CompleteActivation(ctx, h, enrollment("bob", phone2, enroll.StateActive)); err != nil {
		t.Fatalf("CompleteActivation after ErrPhoneTaken: %v", err)
	}
	wantOwner(t, s, phone2, "bob")
	wantTokenUnknown(t, as, h)
}

func testDeleteActivation(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	ctx := t.Context()
	h1, h2 := tokenHash(1), tokenHash(2)
	putActivation(t, as, activation("jdoe", h1))
	putActivation(t, as, activation("asmith", h2))
	if err := as.DeleteActivation(ctx, h1); err != nil {
		t.Fatalf("DeleteActivation: %v", err)
	}
	wantTokenUnknown(t, as, h1)
	wantUserActivation(t, as, "jdoe", "")
	wantUserActivation(t, as, "asmith", h2)
	if err := as.DeleteActivation(ctx, h1); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("second DeleteActivation: %v, want ErrTokenUnknown", err)
	}
	putActivation(t, as, activation("jdoe", tokenHash(3)))
	wantUserActivation(t, as, "jdoe", tokenHash(3))
}
