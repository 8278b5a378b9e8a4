package enroll

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strings"
)

// Sealer protects the secrets the data file must hold (TOTP secrets,
// queued message bodies) and keys the hashes of codes and tokens. Its key
// lives in a separate file (data_dir/replyreset.key, mode 0600), so a copy
// of the data file alone reveals no secret and allows no offline guessing of
// 6-digit codes.
type Sealer struct {
	aead        cipher.AEAD
	macKey      []byte
	fingerprint string
}

// keySize is the length of the key file: AES-256 key and HMAC key.
const keySize = 64

// ErrSealed is returned when sealed data cannot be opened (wrong key,
// corrupted, or sealed for another purpose).
var ErrSealed = errors.New("enroll: sealed data cannot be opened")

// LoadOrCreateKey reads the key file at path, creating it (mode 0600, 64
// random bytes) when it does not exist. A key file readable by group or
// others is refused.
func LoadOrCreateKey(path string) (*Sealer, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, keySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("enroll: create key file: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("enroll: write key file %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("enroll: write key file %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("enroll: write key file %s: %w", path, err)
		}
		return NewSealer(key)
	}
	if err != nil {
		return nil, fmt.Errorf("enroll: key file: %w", err)
	}
	return LoadKey(path)
}

// LoadKey reads the key file at path, which must exist, be readable by
// its owner only and hold a 64-byte key.
func LoadKey(path string) (*Sealer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("enroll: key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("enroll: key file %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("enroll: read key file: %w", err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("enroll: key file %s holds %d bytes, not the %d of a replyreset key (a truncated or foreign file?)", path, len(key), keySize)
	}
	return NewSealer(key)
}

// NewSealer makes a Sealer from a 64-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("enroll: key must be %d bytes, not %d", keySize, len(key))
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, macKey: append([]byte(nil), key[32:]...), fingerprint: fingerprint(key)}, nil
}

// fingerprintLabel separates the fingerprint's hash from any other use of
// SHA-256 over the key.
const fingerprintLabel = "replyreset seal key fingerprint"

// fingerprint is the first 16 hex digits of SHA-256(label || key).
func fingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte(fingerprintLabel))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Fingerprint names the key without revealing it: the first 16 hex digits
// of SHA-256("replyreset seal key fingerprint" || key). The store records
// it (SealKeyStore), so that a node started with another key file is
// refused before it writes secrets the other nodes cannot open. It is not
// secret: 64 bits of a hash say nothing of a 512-bit random key.
func (s *Sealer) Fingerprint() string { return s.fingerprint }

// Seal encrypts plain for purpose (for example "totp:jdoe" or "outbox"):
// data sealed for one purpose does not open for another.
func (s *Sealer) Seal(plain []byte, purpose string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("enroll: crypto/rand failed: " + err.Error()) // cannot happen since Go 1.24
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(purpose))
}

// Open decrypts data sealed for purpose.
func (s *Sealer) Open(sealed []byte, purpose string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrSealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// Hash is the keyed hash (HMAC-SHA-256, hex) under which codes and tokens
// are stored and looked up; purpose separates uses ("token", "code").
func (s *Sealer) Hash(purpose, secret string) string {
	m := hmac.New(sha256.New, s.macKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// Equal compares two hashes in constant time.
func Equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// tokenBytes is the entropy of an activation token: 256 bits, far beyond
// guessing, so the token itself needs no attempt counter.
const tokenBytes = 32

// tokenLen is the length of a token in unpadded base64url.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

// codeDigits is the length of a verification code.
const codeDigits = 6

var codeSpace = big.NewInt(1_000_000) // 10^codeDigits

// newToken returns a fresh activation token: 32 random bytes in unpadded
// base64url, safe in a URL path.
func newToken() string {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		panic("enroll: crypto/rand failed: " + err.Error()) // cannot happen since Go 1.24
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormedToken reports whether token could be one newToken made, so
// that junk is refused before it costs a hash and a store read.
func wellFormedToken(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

// newCode returns a uniformly random 6-digit code ("000000" to "999999");
// rand.Int draws without modulo bias.
func newCode() string {
	n, err := rand.Int(rand.Reader, codeSpace)
	if err != nil {
		panic("enroll: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%0*d", codeDigits, n.Int64())
}

// cleanCode strips the spaces and dashes people type inside a code
// ("123 456", "123-456") and turns full-width and Arabic-Indic digits into
// ASCII ones, as NormalizePhone does. Anything else is left for the
// comparison to refuse.
func cleanCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch d := asciiDigit(r); {
		case d >= 0:
			return rune('0' + d)
		case r == ' ' || r == '-' || r == '\t':
			return -1
		}
		return r
	}, strings.TrimSpace(code))
}

// spokenDigits spells a code for a voice call: "1, 2, 3, 4, 5, 6", so that
// text-to-speech reads the digits one by one instead of "one hundred and
// twenty-three thousand ...".
func spokenDigits(code string) string {
	parts := make([]string, 0, len(code))
	for _, r := range code {
		parts = append(parts, string(r))
	}
	return strings.Join(parts, ", ")
}

// codeMatches compares a typed code with the stored hash in constant time.
func (s *Service) codeMatches(typed, hash string) bool {
	return hash != "" && Equal(s.deps.Sealer.Hash("code", cleanCode(typed)), hash)
}

// The secrets a store holds, by how they are protected (Sealer):
//
// Sealed (AES-256-GCM under the key, opened with it):
//
//	Enrollment.TOTPSealed    "totp:"+Username   the authenticator app's secret
//	Activation.TOTPSealed    "totp:"+Username   the same, while it is set up
//	Activation.CodeSealed    "code:"+TokenHash  the code, to send it again
//	OutboundMessage.Sealed   "outbox"           the SMS text, or the call's words
//	QueuedMail.Sealed        "mail"             the subject, text and HTML
//
// Hashed (HMAC-SHA-256 keyed with the key's second half; the secret
// itself is never stored, so a hash cannot be recomputed for another key):
//
//	Activation.TokenHash     "token" or "phone-change": the activation link's or phone change's token
//	API token hash           "api-token": the API token's secret
//	Activation.CodeHash      "code": recomputed by a Resealer from CodeSealed
//
// Hashed without the key (SHA-256): the admin sessions' keys. Usernames,
// phone numbers, addresses and times are stored in clear.

// Resealer moves secrets from a store sealed with one key (From) to one
// sealed with another (To): each sealed field is opened with From and
// sealed again with To for the same purpose; a pending code's hash is
// recomputed with To from the code CodeSealed holds. Keyed hashes of
// secrets that are not stored (activation and phone-change tokens, API
// tokens) cannot be moved: they are copied as they are and counted in
// Stale, as they only match under From.
type Resealer struct {
	From, To *Sealer
	// Resealed counts the fields sealed again, Stale the keyed hashes
	// copied that only From matches.
	Resealed, Stale int
}

// NewResealer is the Resealer from one key to another.
func NewResealer(from, to *Sealer) *Resealer { return &Resealer{From: from, To: to} }

// Same reports whether both keys are one: nothing needs re-sealing.
func (r *Resealer) Same() bool { return r.From.Fingerprint() == r.To.Fingerprint() }

// reseal opens sealed with From and seals it with To, for purpose; what
// names the field in errors. Empty stays empty.
func (r *Resealer) reseal(sealed []byte, purpose, what string) ([]byte, error) {
	if sealed == nil || r.Same() {
		return sealed, nil
	}
	plain, err := r.From.Open(sealed, purpose)
	if err != nil {
		return nil, fmt.Errorf("%s does not open with the key of fingerprint %s (is it the key of this data?): %w",
			what, r.From.Fingerprint(), err)
	}
	r.Resealed++
	return r.To.Seal(plain, purpose), nil
}

// Enrollment re-seals e's authenticator secret.
func (r *Resealer) Enrollment(e *Enrollment) error {
	v, err := r.reseal(e.TOTPSealed, totpPurpose(e.Username), "the authenticator secret of enrollment "+e.Username)
	e.TOTPSealed = v
	return err
}

// Activation re-seals a's authenticator secret and code, and hashes the
// code again with To; its token hash is copied (Stale).
func (r *Resealer) Activation(a *Activation) error {
	var err error
	if a.TOTPSealed, err = r.reseal(a.TOTPSealed, totpPurpose(a.Username), "the authenticator secret of the activation of "+a.Username); err != nil {
		return err
	}
	if r.Same() {
		return nil
	}
	r.Stale++
	if a.CodeSealed == nil {
		return nil
	}
	code, err := r.From.Open(a.CodeSealed, codePurpose(a.TokenHash))
	if err != nil {
		return fmt.Errorf("the code of the activation of %s does not open with the key of fingerprint %s: %w", a.Username, r.From.Fingerprint(), err)
	}
	a.CodeSealed = r.To.Seal(code, codePurpose(a.TokenHash))
	if a.CodeHash != "" {
		a.CodeHash = r.To.Hash("code", string(code))
	}
	r.Resealed++
	return nil
}

// OutboundMessage re-seals m's body.
func (r *Resealer) OutboundMessage(m *OutboundMessage) error {
	v, err := r.reseal(m.Sealed, "outbox", fmt.Sprintf("the body of outbox message %d", m.ID))
	m.Sealed = v
	return err
}

// QueuedMail re-seals m's subject and body.
func (r *Resealer) QueuedMail(m *QueuedMail) error {
	v, err := r.reseal(m.Sealed, "mail", fmt.Sprintf("the body of queued mail %d", m.ID))
	m.Sealed = v
	return err
}

// APITokenHash counts an API token's hash, copied as it is.
func (r *Resealer) APITokenHash() {
	if !r.Same() {
		r.Stale++
	}
}
