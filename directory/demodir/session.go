package demodir

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"

	"github.com/jimlambrt/gldap"
)

// listener is one gldap server: LDAPS, or ldap:// with StartTLS.
type listener struct {
	srv   *gldap.Server
	ldaps bool
	addr  string     // host:port it listens on
	done  chan error // Run's result

	mu       sync.Mutex
	sessions map[int]*session // by gldap connection ID
}

// session is the state of one client connection.
type session struct {
	tls      bool
	boundKey string // "" while anonymous
	cursors  map[string]*cursor
	order    []string // cursor cookies, oldest first
}

// cursor is the rest of a paged search (RFC 2696).
type cursor struct {
	fingerprint string // the request it belongs to
	keys        []string
	sent        int
	sizeLimit   int
}

// maxCursors bounds the paged searches a connection may leave open.
const maxCursors = 16

func (l *listener) sessionLocked(id int) *session {
	if l.sessions == nil {
		l.sessions = map[int]*session{}
	}
	s := l.sessions[id]
	if s == nil {
		s = &session{tls: l.ldaps}
		l.sessions[id] = s
	}
	return s
}

// principal returns who the connection is bound as.
func (l *listener) principal(id int) principal {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessionLocked(id)
	return principal{key: s.boundKey, tls: s.tls}
}

func (l *listener) setBound(id int, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessionLocked(id).boundKey = key
}

func (l *listener) setTLS(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessionLocked(id).tls = true
}

// closed forgets a connection (gldap's OnClose).
func (l *listener) closed(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sessions, id)
}

// putCursor keeps c for the connection and returns its cookie.
func (l *listener) putCursor(id int, c *cursor) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	cookie := hex.EncodeToString(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessionLocked(id)
	if s.cursors == nil {
		s.cursors = map[string]*cursor{}
	}
	if len(s.order) >= maxCursors {
		delete(s.cursors, s.order[0])
		s.order = s.order[1:]
	}
	s.cursors[cookie] = c
	s.order = append(s.order, cookie)
	return cookie
}

// takeCursor removes and returns the cursor of cookie (nil: unknown).
func (l *listener) takeCursor(id int, cookie string) *cursor {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessionLocked(id)
	c := s.cursors[cookie]
	if c != nil {
		delete(s.cursors, cookie)
		s.order = slices.DeleteFunc(s.order, func(k string) bool { return k == cookie })
	}
	return c
}
