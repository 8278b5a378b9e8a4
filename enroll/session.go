package enroll

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// AdminSession is one signed-in admin of the console, kept in the store so
// that any node answers it and a restart signs no one out. It is stored
// under the hash of its ID (the cookie value), never under the ID, and it
// holds no secret: the session's form tokens are derived from the ID, which
// only the admin's browser holds. A copy of the data file signs no one in.
type AdminSession struct {
	Username  string    `json:"username"`           // the directory's spelling
	Display   string    `json:"display,omitempty"`  // shown in the console's header
	Language  string    `json:"language,omitempty"` // the console's language
	Source    string    `json:"source,omitempty"`   // the client address that signed in
	CreatedAt time.Time `json:"created_at"`         // the sign-in
	ExpiresAt time.Time `json:"expires_at"`         // absolute: CreatedAt + admin.session_ttl
	CheckedAt time.Time `json:"checked_at"`         // the last admin-group check
}

// Live reports whether the session has not expired at now: it ends at
// ExpiresAt.
func (s AdminSession) Live(now time.Time) bool { return now.Before(s.ExpiresAt) }

// SessionStore keeps the admin console's sessions. Every Store must also be
// one; storetest checks it. A session is stored under key, the SHA-256 of
// its ID in lower-case hex (SessionKeyLen digits): the store never sees an
// ID. A session expired at now (ExpiresAt not after now) is absent for
// every method that takes a now, whether or not it was purged yet. The
// common rules of Store apply (ErrInvalid, ctx.Err(), ErrClosed; none of
// these changes anything).
type SessionStore interface {
	// PutSession stores a new session under key. ErrInvalid for a key
	// already stored, an invalid username, a zero CreatedAt or CheckedAt,
	// an ExpiresAt not after CreatedAt, or a field too long.
	PutSession(ctx context.Context, key string, s AdminSession) error
	// Session returns the session under key when it is live at now, or
	// ErrNotFound.
	Session(ctx context.Context, key string, now time.Time) (AdminSession, error)
	// UpdateSession reads the session under key live at now (ErrNotFound
	// otherwise), lets fn change it and writes it back in one transaction.
	// fn may run more than once and must only change the session; its error
	// changes nothing. A session is never extended nor handed to another
	// admin: a change of Username, CreatedAt or ExpiresAt is ErrInvalid.
	UpdateSession(ctx context.Context, key string, now time.Time, fn func(*AdminSession) error) error
	// DeleteSession removes the session under key; an absent one is not an
	// error (signing out twice is harmless).
	DeleteSession(ctx context.Context, key string) error
	// PurgeSessions removes the sessions expired at now and returns how
	// many.
	PurgeSessions(ctx context.Context, now time.Time) (int, error)
}

// SessionKeyLen is the length of a session key: a SHA-256 in hex.
const SessionKeyLen = 64

// maxSessionField bounds the free-form fields of a session in bytes.
const maxSessionField = 1024

// CheckSessionKey returns an ErrInvalid error unless key has the shape of
// a session key, so that an ID cannot be stored in clear by mistake.
func CheckSessionKey(key string) error {
	if len(key) != SessionKeyLen || strings.Trim(key, "0123456789abcdef") != "" {
		return Invalidf("session key must be %d lower-case hex digits (the SHA-256 of the session ID)", SessionKeyLen)
	}
	return nil
}

// checkSession validates a session before it is written.
func CheckSession(s AdminSession) error {
	if _, err := UsernameKey(s.Username); err != nil {
		return err
	}
	switch {
	case s.CreatedAt.IsZero():
		return Invalidf("session of %s has no sign-in time", s.Username)
	case !s.ExpiresAt.After(s.CreatedAt):
		return Invalidf("session of %s expires (%s) no later than it starts (%s)", s.Username, s.ExpiresAt, s.CreatedAt)
	case s.CheckedAt.IsZero():
		return Invalidf("session of %s has no admin-group check time", s.Username)
	}
	for name, v := range map[string]string{"display name": s.Display, "language": s.Language, "source": s.Source} {
		if len(v) > maxSessionField || !utf8.ValidString(v) {
			return Invalidf("session of %s: %s is not valid UTF-8 of at most %d bytes", s.Username, name, maxSessionField)
		}
	}
	return nil
}

// CheckSessionUpdate validates what an UpdateSession function made of was.
func CheckSessionUpdate(was, now AdminSession) error {
	if now.Username != was.Username || !now.CreatedAt.Equal(was.CreatedAt) || !now.ExpiresAt.Equal(was.ExpiresAt) {
		return Invalidf("a session update must not change the username, the sign-in or the expiry")
	}
	return CheckSession(now)
}
