package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The end of a link: expiry and purge, the ended links remembered for
// their page, and the console's list of invitations.

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
