package storetest

import (
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

// sessionTTL is the fixtures' admin.session_ttl.
const sessionTTL = 8 * time.Hour

func sessionStore(t *testing.T, open Opener) (enroll.Store, enroll.SessionStore, string) {
	t.Helper()
	s, dir := newStore(t, open)
	return s, s, dir
}

// adminSession is a fixture: a session signed in n minutes after t0, and
// its key (the hex SHA-256 of an imaginary ID).
func adminSession(n int, username string) (enroll.AdminSession, string) {
	at := t0.Add(time.Duration(n) * time.Minute)
	return enroll.AdminSession{Username: username, Display: "Admin " + username, Language: "fr", Source: "192.0.2.7",
		CreatedAt: at, ExpiresAt: at.Add(sessionTTL), CheckedAt: at}, fmt.Sprintf("%064x", 5000+n)
}

func putSession(t *testing.T, ss enroll.SessionStore, key string, sess enroll.AdminSession) {
	t.Helper()
	if err := ss.PutSession(t.Context(), key, sess); err != nil {
		t.Fatalf("PutSession(%s): %v", sess.Username, err)
	}
}

// getSession returns the session under key live at now.
func getSession(t *testing.T, ss enroll.SessionStore, key string, now time.Time) enroll.AdminSession {
	t.Helper()
	sess, err := ss.Session(t.Context(), key, now)
	if err != nil {
		t.Fatalf("Session at %s: %v", now, err)
	}
	return sess
}

// wantNoSession wants Session(key) at now to be ErrNotFound.
func wantNoSession(t *testing.T, ss enroll.SessionStore, key string, now time.Time, why string) {
	t.Helper()
	if sess, err := ss.Session(t.Context(), key, now); !isNotFound(err) {
		t.Errorf("Session %s: %+v, %v; want ErrNotFound", why, sess, err)
	}
}

func wantSession(t *testing.T, got, want enroll.AdminSession) {
	t.Helper()
	if got.Username != want.Username || got.Display != want.Display || got.Language != want.Language ||
		got.Source != want.Source || !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.CheckedAt.Equal(want.CheckedAt) {
		t.Errorf("session = %+v\nwant      %+v", got, want)
	}
}

func testSessionPutGet(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	a, ka := adminSession(1, "Helpdesk")
	wantNoSession(t, ss, ka, a.CreatedAt, "of an unknown key")
	putSession(t, ss, ka, a)
	wantSession(t, getSession(t, ss, ka, a.CreatedAt), a)

	// A key is used once: a second session under it is refused, the first kept.
	b, kb := adminSession(2, "jdoe")
	if err := ss.PutSession(t.Context(), ka, b); !errors.Is(err, enroll.ErrInvalid) {
		t.Errorf("PutSession under a stored key: %v, want ErrInvalid", err)
	}
	wantSession(t, getSession(t, ss, ka, a.CreatedAt), a)
	// Other keys are independent; a session needs no display, language or source.
	b.Display, b.Language, b.Source = "", "", ""
	putSession(t, ss, kb, b)
	wantSession(t, getSession(t, ss, kb, b.CreatedAt), b)
	wantSession(t, getSession(t, ss, ka, b.CreatedAt), a)
}

func testSessionExpiry(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	ctx := t.Context()
	a, ka := adminSession(0, "helpdesk")
	b, kb := adminSession(60, "jdoe") // signed in an hour later
	putSession(t, ss, ka, a)
	putSession(t, ss, kb, b)
	end := a.ExpiresAt
	wantSession(t, getSession(t, ss, ka, end.Add(-time.Nanosecond)), a)
	wantNoSession(t, ss, ka, end, "at its expiry") // the TTL counts from the sign-in, checks or not
	if err := ss.UpdateSession(ctx, ka, end, func(s *enroll.AdminSession) error { s.Language = "en"; return nil }); !isNotFound(err) {
		t.Errorf("UpdateSession of an expired session: %v, want ErrNotFound", err)
	}
	// Expired but not yet purged: still live at an earlier now.
	wantSession(t, getSession(t, ss, ka, end.Add(-time.Minute)), a)

	if n, err := ss.PurgeSessions(ctx, end.Add(-time.Nanosecond)); err != nil || n != 0 {
		t.Errorf("PurgeSessions before any expiry = %d, %v; want 0", n, err)
	}
	if n, err := ss.PurgeSessions(ctx, end); err != nil || n != 1 {
		t.Errorf("PurgeSessions at the first expiry = %d, %v; want 1", n, err)
	}
	wantNoSession(t, ss, ka, end.Add(-time.Minute), "after the purge")
	wantSession(t, getSession(t, ss, kb, end), b)
	if n, err := ss.PurgeSessions(ctx, end.Add(24*time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeSessions of everything = %d, %v; want 1", n, err)
	}
	if n, err := ss.PurgeSessions(ctx, end.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeSessions of an empty store = %d, %v; want 0", n, err)
	}
}

func testSessionUpdate(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	ctx := t.Context()
	a, ka := adminSession(0, "helpdesk")
	putSession(t, ss, ka, a)
	now := a.CreatedAt.Add(time.Minute)
	if err := ss.UpdateSession(ctx, ka, now, func(s *enroll.AdminSession) error {
		s.CheckedAt, s.Language = now, "en"
		return nil
	}); err != nil {
		t.Fatalf("UpdateSession: %v", err)
	}
	want := a
	want.CheckedAt, want.Language = now, "en"
	wantSession(t, getSession(t, ss, ka, now), want)

	// fn's error changes nothing and comes back.
	boom := errors.New("boom")
	if err := ss.UpdateSession(ctx, ka, now, func(s *enroll.AdminSession) error { s.Language = "de"; return boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateSession with a failing fn: %v, want its error", err)
	}
	// Never extended, never handed over.
	for name, edit := range map[string]func(*enroll.AdminSession){
		"extend":      func(s *enroll.AdminSession) { s.ExpiresAt = s.ExpiresAt.Add(time.Hour) },
		"re-sign-in":  func(s *enroll.AdminSession) { s.CreatedAt = now },
		"hand over":   func(s *enroll.AdminSession) { s.Username = "jdoe" },
		"no checked":  func(s *enroll.AdminSession) { s.CheckedAt = time.Time{} },
		"bad display": func(s *enroll.AdminSession) { s.Display = "\xff" },
	} {
		err := ss.UpdateSession(ctx, ka, now, func(s *enroll.AdminSession) error { edit(s); return nil })
		if !errors.Is(err, enroll.ErrInvalid) {
			t.Errorf("UpdateSession that would %s: %v, want ErrInvalid", name, err)
		}
	}
	wantSession(t, getSession(t, ss, ka, now), want)
	_, unknown := adminSession(9, "nobody")
	if err := ss.UpdateSession(ctx, unknown, now, func(*enroll.AdminSession) error { return nil }); !isNotFound(err) {
		t.Errorf("UpdateSession of an unknown key: %v, want ErrNotFound", err)
	}
}

func testSessionDelete(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	ctx := t.Context()
	a, ka := adminSession(0, "helpdesk")
	b, kb := adminSession(1, "helpdesk") // the same admin in another browser
	putSession(t, ss, ka, a)
	putSession(t, ss, kb, b)
	if err := ss.DeleteSession(ctx, ka); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNoSession(t, ss, ka, a.CreatedAt.Add(time.Minute), "after DeleteSession")
	wantSession(t, getSession(t, ss, kb, b.CreatedAt), b)
	if err := ss.DeleteSession(ctx, ka); err != nil {
		t.Errorf("DeleteSession twice: %v, want nil", err)
	}
	// A deleted key cannot come back by an update.
	if err := ss.UpdateSession(ctx, ka, a.CreatedAt, func(*enroll.AdminSession) error { return nil }); !isNotFound(err) {
		t.Errorf("UpdateSession after DeleteSession: %v, want ErrNotFound", err)
	}
}

func testSessionConcurrent(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	ctx := t.Context()
	// Many sign-ins at once: each lands.
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			sess, key := adminSession(i, fmt.Sprintf("admin%d", i))
			if err := ss.PutSession(ctx, key, sess); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range concurrency {
		sess, key := adminSession(i, fmt.Sprintf("admin%d", i))
		wantSession(t, getSession(t, ss, key, sess.CreatedAt), sess)
	}

	// One key, many writers: exactly one wins.
	var won atomic.Int32
	_, shared := adminSession(1000, "x")
	for i := range concurrency {
		wg.Go(func() {
			sess, _ := adminSession(i, "helpdesk")
			err := ss.PutSession(ctx, shared, sess)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, enroll.ErrInvalid):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Errorf("%d of %d concurrent PutSession under one key succeeded, want 1", n, concurrency)
	}

	// Concurrent checks of one session: no update is lost, so the latest
	// check time wins whatever the order.
	a, ka := adminSession(0, "helpdesk")
	if err := ss.DeleteSession(ctx, ka); err != nil {
		t.Fatal(err)
	}
	putSession(t, ss, ka, a)
	for i := range concurrency {
		wg.Go(func() {
			at := a.CreatedAt.Add(time.Duration(i+1) * time.Second)
			err := ss.UpdateSession(ctx, ka, at, func(s *enroll.AdminSession) error {
				if at.After(s.CheckedAt) {
					s.CheckedAt = at
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	want := a.CreatedAt.Add(concurrency * time.Second)
	if got := getSession(t, ss, ka, want).CheckedAt; !got.Equal(want) {
		t.Errorf("after %d concurrent checks, CheckedAt = %s, want the latest %s (an update was lost)", concurrency, got, want)
	}
}

func sessionCalls(ss enroll.SessionStore) map[string]func(context.Context) error {
	a, ka := adminSession(0, "helpdesk")
	return map[string]func(context.Context) error{
		"PutSession": func(ctx context.Context) error { return ss.PutSession(ctx, ka, a) },
		"Session": func(ctx context.Context) error {
			_, err := ss.Session(ctx, ka, t0)
			return err
		},
		"UpdateSession": func(ctx context.Context) error {
			return ss.UpdateSession(ctx, ka, t0, func(*enroll.AdminSession) error { return nil })
		},
		"DeleteSession": func(ctx context.Context) error { return ss.DeleteSession(ctx, ka) },
		"PurgeSessions": func(ctx context.Context) error {
			_, err := ss.PurgeSessions(ctx, t0)
			return err
		},
	}
}

// wantNoSessions checks that nothing was stored: the purge far in the
// future finds nothing to remove.
func wantNoSessions(t *testing.T, ss enroll.SessionStore) {
	t.Helper()
	if n, err := ss.PurgeSessions(t.Context(), t0.Add(100*24*time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeSessions after failing calls = %d, %v; want 0 sessions stored", n, err)
	}
}

func testSessionInvalidInput(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	ctx := t.Context()
	a, ka := adminSession(0, "helpdesk")
	put := func(key string, edit func(*enroll.AdminSession)) func() error {
		return func() error {
			s := a
			edit(&s)
			return ss.PutSession(ctx, key, s)
		}
	}
	same := func(*enroll.AdminSession) {}
	noop := func(*enroll.AdminSession) error { return nil }
	// A session ID (32 random bytes in base64url) is not a key: the store
	// refuses it rather than keep it in clear.
	id := "q3Jx0mZc9Vb8Hk2Lw5Tn7Ry4Ue1Io6Pa0Sd3Fg8Jh2K"
	bad := map[string]func() error{
		"put empty key":          put("", same),
		"put session ID as key":  put(id, same),
		"put upper-case hex key": put(strings.Repeat("AB", 32), same),
		"put short key":          put(ka[:63], same),
		"put no username":        put(ka, func(s *enroll.AdminSession) { s.Username = "" }),
		"put spaced username":    put(ka, func(s *enroll.AdminSession) { s.Username = " helpdesk" }),
		"put zero sign-in":       put(ka, func(s *enroll.AdminSession) { s.CreatedAt = time.Time{} }),
		"put zero check":         put(ka, func(s *enroll.AdminSession) { s.CheckedAt = time.Time{} }),
		"put expiry at sign-in":  put(ka, func(s *enroll.AdminSession) { s.ExpiresAt = s.CreatedAt }),
		"put no expiry":          put(ka, func(s *enroll.AdminSession) { s.ExpiresAt = time.Time{} }),
		"put display too long":   put(ka, func(s *enroll.AdminSession) { s.Display = strings.Repeat("a", 1025) }),
		"put source not UTF-8":   put(ka, func(s *enroll.AdminSession) { s.Source = "\xff" }),
		"get bad key": func() error {
			_, err := ss.Session(ctx, id, t0)
			return err
		},
		"get zero now": func() error {
			_, err := ss.Session(ctx, ka, time.Time{})
			return err
		},
		"update bad key":  func() error { return ss.UpdateSession(ctx, "", t0, noop) },
		"update zero now": func() error { return ss.UpdateSession(ctx, ka, time.Time{}, noop) },
		"update nil fn":   func() error { return ss.UpdateSession(ctx, ka, t0, nil) },
		"delete bad key":  func() error { return ss.DeleteSession(ctx, id) },
		"purge zero now": func() error {
			_, err := ss.PurgeSessions(ctx, time.Time{})
			return err
		},
	}
	wantInvalid(t, bad)
	wantNoSessions(t, ss)
}

func testSessionCancelled(t *testing.T, open Opener) {
	_, ss, _ := sessionStore(t, open)
	wantEachFails(t, cancelled(t), sessionCalls(ss), context.Canceled, "with a cancelled context")
	wantNoSessions(t, ss)
}

func testSessionClosed(t *testing.T, open Opener) {
	s, ss, _ := sessionStore(t, open)
	wantClosedFails(t, s, sessionCalls(ss))
}

// A session survives a restart: Close, open again, still signed in.
func testSessionReopen(t *testing.T, open Opener) {
	s, ss, dir := sessionStore(t, open)
	a, ka := adminSession(0, "helpdesk")
	b, kb := adminSession(1, "jdoe")
	putSession(t, ss, ka, a)
	putSession(t, ss, kb, b)
	now := a.CreatedAt.Add(time.Hour)
	if err := ss.UpdateSession(t.Context(), ka, now, func(s *enroll.AdminSession) error { s.CheckedAt = now; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := ss.DeleteSession(t.Context(), kb); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ss = openAt(t, open, dir)
	a.CheckedAt = now
	wantSession(t, getSession(t, ss, ka, now), a)
	wantNoSession(t, ss, kb, now, "deleted before the restart")
}
