package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// session is one signed-in admin. Sessions live in memory: a restart signs
// every admin out, which is the safe side. The map is keyed by a hash of
// the cookie value, so a heap dump holds no usable session ID.
type session struct {
	username string // the directory's spelling
	display  string // shown in the header
	lang     string
	created  time.Time
	expires  time.Time // absolute: admin.session_ttl after sign-in
	checked  time.Time // last admin-group check
}

type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[[32]byte]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: make(map[[32]byte]*session)}
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte("admin-session:" + id)) }

// create starts a session for u (whose membership was just checked) and
// returns its new random ID.
func (s *sessions) create(u directory.User, lang string, now time.Time) (string, *session) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	id := base64.RawURLEncoding.EncodeToString(b)
	display := u.DisplayName
	if display == "" {
		display = u.Username
	}
	sess := &session{username: u.Username, display: display, lang: lang, created: now, expires: now.Add(s.ttl), checked: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // expired sessions go when a new one comes
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[sessionKey(id)] = sess
	return id, sess
}

// get returns a copy of the live session for id.
func (s *sessions) get(id string, now time.Time) (*session, bool) {
	if id == "" || len(id) > 128 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(id)
	sess, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if !now.Before(sess.expires) {
		delete(s.m, k)
		return nil, false
	}
	cp := *sess
	return &cp, true
}

func (s *sessions) checkedAt(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.m[sessionKey(id)]; ok {
		sess.checked = now
	}
}

func (s *sessions) setLanguage(id, lang string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.m[sessionKey(id)]; ok {
		sess.lang = lang
	}
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sessionKey(id))
}
