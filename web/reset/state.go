package reset

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/web"
)

// cookieName holds the reset under way, sealed; never a URL.
const cookieName = "replyreset_reset"

// statePurpose seals the state to this use: it opens nowhere else.
const statePurpose = "web-reset-state"

// stateSize is the length the state is padded to before it is sealed, so
// that the cookie of a known, an unknown and an app-enrolled name alike
// has one length. A login is at most maxLogin bytes, which JSON may
// escape to six times as many.
const stateSize = 2048

// maxLogin bounds the name typed.
const maxLogin = 256

// state is the reset under way, as the browser holds it (sealed).
type state struct {
	ID       string    `json:"id"`        // random: the key of its guards and marks in the store
	Login    string    `json:"login"`     // as typed, shown on the code page
	Username string    `json:"username"`  // the enrolled account; "" when no enrollment matched
	Method   string    `json:"method"`    // how the code went: sms | voice | app; "" when none did
	CodeHash string    `json:"code_hash"` // the SMS or call's code, hashed for this ID; a dead one otherwise
	Expires  time.Time `json:"expires"`   // the code's end; once Verified, the end of the choice
	Verified bool      `json:"verified"`  // the right code was typed
	Pad      string    `json:"pad"`
}

// errNoState: the browser holds no reset, or one that is not ours or has
// ended.
var errNoState = errors.New("reset: no reset under way")

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// seal turns st into the cookie's value, padded to stateSize.
func (s *Site) seal(st state) (string, error) {
	st.Pad = ""
	plain, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("reset: encode the state: %w", err)
	}
	if len(plain) > stateSize {
		return "", fmt.Errorf("reset: state of %d bytes is over %d", len(plain), stateSize)
	}
	st.Pad = strings.Repeat(" ", stateSize-len(plain))
	if plain, err = json.Marshal(st); err != nil {
		return "", fmt.Errorf("reset: encode the state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.d.Sealer.Seal(plain, statePurpose)), nil
}

// open reads the reset the request belongs to: errNoState unless the
// browser holds a live one sealed by us.
func (s *Site) open(c echo.Context) (state, error) {
	v, ok := web.ReadCookie(c, s.d.Secure, cookieName)
	if !ok || v == "" || len(v) > 2*stateSize {
		return state{}, errNoState
	}
	sealed, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return state{}, errNoState
	}
	plain, err := s.d.Sealer.Open(sealed, statePurpose)
	if err != nil {
		return state{}, errNoState
	}
	var st state
	if err := json.Unmarshal(plain, &st); err != nil || st.ID == "" || !s.now().Before(st.Expires) {
		return state{}, errNoState
	}
	return st, nil
}

func (s *Site) keep(c echo.Context, st state) error {
	v, err := s.seal(st)
	if err != nil {
		return err
	}
	web.SetCookie(c, s.d.Secure, cookieName, v, int(verifiedTTL/time.Second)+int(codeTTL/time.Second))
	return nil
}

func (s *Site) forget(c echo.Context) { web.SetCookie(c, s.d.Secure, cookieName, "", -1) }

// codeHash hashes a code for the reset id, so it checks nowhere else.
func (s *Site) codeHash(id, code string) string { return s.d.Sealer.Hash("web-reset-code:"+id, code) }

// accountKey names the account a reset is about in the store's guards and
// limits: the enrolled username, else the name typed, so that unknown
// names are counted as known ones are.
func (st state) accountKey() string {
	if st.Username != "" {
		return strings.ToLower(st.Username)
	}
	return strings.ToLower(st.Login)
}
