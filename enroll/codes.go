package enroll

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

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
