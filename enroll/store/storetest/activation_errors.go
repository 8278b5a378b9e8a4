package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// How the activation methods refuse bad input, a done context and a
// closed store, and what survives a reopen.

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
