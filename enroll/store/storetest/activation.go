package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
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

func testPurgeActivations(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	ctx := t.Context()
	users := []string{"a", "b", "c"}
	for i, u := range users {
		a := activation(u, tokenHash(i))
		a.ExpiresAt = t0.Add(time.Duration(i+1) * time.Hour)
		putActivation(t, as, a)
	}
	purge := func(at time.Time, want int) {
		t.Helper()
		if n, err := as.PurgeActivations(ctx, at); err != nil || n != want {
			t.Errorf("PurgeActivations(%s) = %d, %v; want %d", at, n, err, want)
		}
	}
	purge(t0.Add(30*time.Minute), 0)
	purge(t0.Add(2*time.Hour), 2) // b expires at exactly t0+2h: Expired then
	wantTokenUnknown(t, as, tokenHash(0))
	wantTokenUnknown(t, as, tokenHash(1))
	wantUserActivation(t, as, "a", "")
	wantUserActivation(t, as, "b", "")
	wantUserActivation(t, as, "c", tokenHash(2))
	purge(t0.Add(2*time.Hour), 0)
	putActivation(t, as, activation("a", tokenHash(9)))
	wantUserActivation(t, as, "a", tokenHash(9))
}

// activationCalls exercises every ActivationStore method once with valid
// arguments, for the tests where each must fail the same way.
func activationCalls(as linkStore) map[string]func(context.Context) error {
	h := tokenHash(1)
	return map[string]func(context.Context) error{
		"PutActivation": func(ctx context.Context) error { return as.PutActivation(ctx, activation("jdoe", h)) },
		"ActivationByToken": func(ctx context.Context) error {
			_, err := as.ActivationByToken(ctx, h)
			return err
		},
		"ActivationByUser": func(ctx context.Context) error {
			_, err := as.ActivationByUser(ctx, "jdoe")
			return err
		},
		"UpdateActivation": func(ctx context.Context) error {
			return as.UpdateActivation(ctx, h, func(a *enroll.Activation) error { a.CodeAttempts++; return nil })
		},
		"CompleteActivation": func(ctx context.Context) error {
			return as.CompleteActivation(ctx, h, enrollment("jdoe", phone1, enroll.StateActive))
		},
		"DeleteActivation": func(ctx context.Context) error { return as.DeleteActivation(ctx, h) },
		"PurgeActivations": func(ctx context.Context) error {
			_, err := as.PurgeActivations(ctx, t0.Add(30*24*time.Hour))
			return err
		},
		"Activations": func(ctx context.Context) error {
			_, err := as.Activations(ctx)
			return err
		},
		"EndedLink": func(ctx context.Context) error {
			_, err := as.EndedLink(ctx, h)
			return err
		},
	}
}

// testActivationsList lists every activation, expired ones included, by
// username.
func testActivationsList(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	if list, err := as.Activations(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("Activations of an empty store = %v, %v", list, err)
	}
	old := activation("carol", tokenHash(3))
	old.ExpiresAt = t0.Add(time.Hour)
	for _, a := range []enroll.Activation{activation("bob", tokenHash(1)), activation("Alice", tokenHash(2)), old,
		activation("bob", tokenHash(4))} { // replaces bob's first
		putActivation(t, as, a)
	}
	list, err := as.Activations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range list {
		got = append(got, a.Username+":"+a.TokenHash[60:])
	}
	if want := "Alice:0002 bob:0004 carol:0003"; strings.Join(got, " ") != want {
		t.Errorf("Activations = %v, want %s", got, want)
	}
}

// testEndedLinks: a completed activation's link is remembered as used, a
// purged one as expired; neither can be used again, and both are
// forgotten after EndedLinkRetention.
func testEndedLinks(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	ctx := t.Context()
	h1, h2, h3 := tokenHash(1), tokenHash(2), tokenHash(3)
	for _, h := range []string{h1, h2, h3} {
		if l, err := as.EndedLink(ctx, h); !errors.Is(err, enroll.ErrTokenUnknown) {
			t.Fatalf("EndedLink of a live or unknown link = %+v, %v; want ErrTokenUnknown", l, err)
		}
	}
	putActivation(t, as, activation("JDoe", h1))
	short := activation("asmith", h2)
	short.ExpiresAt = t0.Add(time.Hour)
	putActivation(t, as, short)
	putActivation(t, as, activation("carol", h3))
	if l, err := as.EndedLink(ctx, h1); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Fatalf("EndedLink of a live link = %+v, %v; want ErrTokenUnknown", l, err)
	}

	e := enrollment("JDoe", phone1, enroll.StateActive)
	e.UpdatedAt = t0.Add(5 * time.Minute)
	if err := as.CompleteActivation(ctx, h1, e); err != nil {
		t.Fatal(err)
	}
	want := func(h string, w enroll.EndedLink) {
		t.Helper()
		l, err := as.EndedLink(ctx, h)
		if err != nil || l.TokenHash != w.TokenHash || l.Username != w.Username || l.Reason != w.Reason || !l.At.Equal(w.At) {
			t.Errorf("EndedLink(%.8s…) = %+v, %v; want %+v", h, l, err, w)
		}
	}
	want(h1, enroll.EndedLink{TokenHash: h1, Username: "JDoe", Reason: enroll.LinkUsed, At: t0.Add(5 * time.Minute)})
	wantTokenUnknown(t, as, h1)

	if n, err := as.PurgeActivations(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("PurgeActivations = %d, %v; want 1", n, err)
	}
	want(h2, enroll.EndedLink{TokenHash: h2, Username: "asmith", Reason: enroll.LinkExpired, At: t0.Add(time.Hour)})
	wantTokenUnknown(t, as, h2)
	if l, err := as.EndedLink(ctx, h3); !errors.Is(err, enroll.ErrTokenUnknown) {
		t.Errorf("the live link of carol is recorded as ended: %+v, %v", l, err)
	}

	// Kept for EndedLinkRetention, then forgotten.
	if _, err := as.PurgeActivations(ctx, t0.Add(5*time.Minute+enroll.EndedLinkRetention-time.Second)); err != nil {
		t.Fatal(err)
	}
	want(h1, enroll.EndedLink{TokenHash: h1, Username: "JDoe", Reason: enroll.LinkUsed, At: t0.Add(5 * time.Minute)})
	if _, err := as.PurgeActivations(ctx, t0.Add(2*time.Hour+enroll.EndedLinkRetention)); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{h1, h2} {
		if l, err := as.EndedLink(ctx, h); !errors.Is(err, enroll.ErrTokenUnknown) {
			t.Errorf("EndedLink after the retention = %+v, %v; want ErrTokenUnknown", l, err)
		}
	}
}

func testActivationInvalidInput(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	ctx := t.Context()
	kept := activation("asmith", tokenHash(7))
	putActivation(t, as, kept)
	puts := map[string]func(*enroll.Activation){
		"empty hash":      func(a *enroll.Activation) { a.TokenHash = "" },
		"empty username":  func(a *enroll.Activation) { a.Username = "" },
		"blank username":  func(a *enroll.Activation) { a.Username = "jdoe " },
		"zero created":    func(a *enroll.Activation) { a.CreatedAt = time.Time{} },
		"zero expiry":     func(a *enroll.Activation) { a.ExpiresAt = time.Time{} },
		"phone not E.164": func(a *enroll.Activation) { a.Phone = "2015550101" },
	}
	for name, change := range puts {
		a := activation("jdoe", tokenHash(1))
		change(&a)
		if err := as.PutActivation(ctx, a); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("put with %s: %v, want ErrInvalid", name, err)
		}
	}
	bad := map[string]func() error{
		"by token empty": func() error {
			_, err := as.ActivationByToken(ctx, "")
			return err
		},
		"by user empty": func() error {
			_, err := as.ActivationByUser(ctx, "")
			return err
		},
		"update empty hash": func() error {
			return as.UpdateActivation(ctx, "", func(*enroll.Activation) error { return nil })
		},
		"update nil fn":       func() error { return as.UpdateActivation(ctx, kept.TokenHash, nil) },
		"complete empty hash": func() error { return as.CompleteActivation(ctx, "", enrollment("jdoe", phone1, enroll.StateActive)) },
		"complete active without phone": func() error {
			return as.CompleteActivation(ctx, kept.TokenHash, enrollment("asmith", "", enroll.StateActive))
		},
		"complete unknown state": func() error {
			return as.CompleteActivation(ctx, kept.TokenHash, enrollment("asmith", phone1, "bogus"))
		},
		"delete empty hash": func() error { return as.DeleteActivation(ctx, "") },
		"purge zero time": func() error {
			_, err := as.PurgeActivations(ctx, time.Time{})
			return err
		},
	}
	for name, call := range bad {
		if err := call(); !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	wantActivation(t, as, kept.TokenHash, kept)
	wantUserActivation(t, as, "asmith", kept.TokenHash)
	wantUserActivation(t, as, "jdoe", "")
	if list, err := s.Enrollments(ctx); err != nil || len(list) != 0 {
		t.Errorf("Enrollments = %v, %v; want none", list, err)
	}
}

func testActivationCancelled(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range activationCalls(as) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	wantTokenUnknown(t, as, tokenHash(1))
	wantUserActivation(t, as, "jdoe", "")
	if list, err := s.Enrollments(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("Enrollments = %v, %v; want none", list, err)
	}
}

func testActivationClosed(t *testing.T, open Opener) {
	s, as, _ := activationStore(t, open)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range activationCalls(as) {
		if err := call(t.Context()); !errors.Is(err, enroll.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func testActivationReopen(t *testing.T, open Opener) {
	s, as, dir := activationStore(t, open)
	ctx := t.Context()
	h1, h2, h3 := tokenHash(1), tokenHash(2), tokenHash(3)
	a := activation("JDoe", h1)
	a.TOTPSealed = []byte("sealed")
	putActivation(t, as, a)
	if err := as.UpdateActivation(ctx, h1, func(a *enroll.Activation) error { a.Phone = phone1; return nil }); err != nil {
		t.Fatal(err)
	}
	a.Phone = phone1
	putActivation(t, as, activation("asmith", h2))
	putActivation(t, as, activation("asmith", h3))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	as = openAt(t, open, dir)
	wantActivation(t, as, h1, a)
	wantUserActivation(t, as, "jdoe", h1)
	wantTokenUnknown(t, as, h2)
	wantUserActivation(t, as, "asmith", h3)
	if err := as.CompleteActivation(ctx, h1, enrollment("JDoe", phone1, enroll.StateActive)); err != nil {
		t.Errorf("CompleteActivation after reopen: %v", err)
	}
	wantTokenUnknown(t, as, h1)
}

// testPurgeActivationsConcurrent expires and purges activations from many
// goroutines while other writes fail: every expired activation is counted
// exactly once.
func testPurgeActivationsConcurrent(t *testing.T, open Opener) {
	_, as, _ := activationStore(t, open)
	ctx := t.Context()
	keep := activation("keep", tokenHash(1<<20))
	putActivation(t, as, keep)
	var purged atomic.Int64
	purge := func() {
		n, err := as.PurgeActivations(ctx, t0.Add(time.Hour))
		if err != nil {
			t.Error(err)
		}
		purged.Add(int64(n))
	}
	const rounds = 5
	whileFailing(t, failActivation(as, keep.TokenHash), func(i int) {
		for r := range rounds {
			a := activation(fmt.Sprint("user", i, "-", r), tokenHash(1000*r+i))
			a.ExpiresAt = t0
			if err := as.PutActivation(ctx, a); err != nil {
				t.Error(err)
			}
			purge()
		}
	})
	purge()
	if n := purged.Load(); n != rounds*concurrency {
		t.Errorf("PurgeActivations calls reported %d purged in all, want %d", n, rounds*concurrency)
	}
	wantActivation(t, as, keep.TokenHash, keep)
}
