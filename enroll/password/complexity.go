package password

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/replyreset/replyreset/directory"
)

// pwTrigrams is a sorted set of case-folded printable-ASCII trigrams.
type pwTrigrams []uint32

func pwKey(a, b, c byte) uint32 {
	return uint32(pwLowerASCII(a))<<16 | uint32(pwLowerASCII(b))<<8 | uint32(pwLowerASCII(c))
}

func pwLowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// pwUserTrigrams returns the trigrams a password for u must not contain: every
// run of three characters of the username and of each display-name token,
// folded, keeping only those a printable-ASCII password could contain.
func pwUserTrigrams(u directory.User) pwTrigrams {
	var t pwTrigrams
	t = appendPWTrigrams(t, u.Username)
	for _, tok := range strings.FieldsFunc(u.DisplayName, isDisplayNameDelimiter) {
		t = appendPWTrigrams(t, tok)
	}
	slices.Sort(t)
	return slices.Compact(t)
}

func appendPWTrigrams(t pwTrigrams, s string) pwTrigrams {
	var w [3]rune
	n := 0
	for _, r := range s {
		w[0], w[1], w[2] = w[1], w[2], pwFold(r)
		n++
		if n >= 3 && pwPrintable(w[0]) && pwPrintable(w[1]) && pwPrintable(w[2]) {
			t = append(t, pwKey(byte(w[0]), byte(w[1]), byte(w[2])))
		}
	}
	return t
}

func pwPrintable(r rune) bool { return r > ' ' && r < 0x7f }

func (t pwTrigrams) has(k uint32) bool {
	_, ok := slices.BinarySearch(t, k)
	return ok
}

// hits reports whether b contains a trigram of t.
func (t pwTrigrams) hits(b []byte) bool {
	if len(t) == 0 {
		return false
	}
	for i := 0; i+3 <= len(b); i++ {
		if t.has(pwKey(b[i], b[i+1], b[i+2])) {
			return true
		}
	}
	return false
}

func pwHasAllClasses(b []byte) bool {
	var seen uint8
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			seen |= 1 << pwUpper
		case 'a' <= c && c <= 'z':
			seen |= 1 << pwLower
		case '0' <= c && c <= '9':
			seen |= 1 << pwDigit
		default:
			seen |= 1 << pwSymbol
		}
	}
	return seen == 1<<pwClasses-1
}

// isDisplayNameDelimiter reports the characters AD splits a display name on.
func isDisplayNameDelimiter(r rune) bool {
	switch r {
	case ',', '.', '-', '_', ' ', '#', '\t':
		return true
	}
	return false
}

// pwFold maps a rune to its case-insensitive form: lowercase, and to an ASCII
// letter when any case form of r is one (Kelvin sign K, long s, dotted and
// dotless i), so that a name can never sneak past the check through Unicode.
func pwFold(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(pwLowerASCII(byte(r)))
	}
	l := unicode.ToLower(r)
	if l < utf8.RuneSelf {
		return l
	}
	if up := unicode.ToUpper(r); up < utf8.RuneSelf {
		return rune(pwLowerASCII(byte(up)))
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return rune(pwLowerASCII(byte(f)))
		}
	}
	return l
}

func pwFoldString(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = utf8.AppendRune(b, pwFold(r))
	}
	return b
}

// MeetsComplexity checks password against the Active Directory complexity
// rule for u and returns nil or a *directory.PolicyError (errors.Is
// directory.ErrPolicy) naming the rule that failed; the error never contains
// the password.
//
//   - It must hold characters from at least 3 of AD's 5 categories: uppercase
//     letters, lowercase letters, digits 0-9, the symbols
//     ~!@#$%^&*_-+=`|\(){}[]:;"'<>,.?/ and letters without case.
//   - Compared case-insensitively, it must not contain any run of three or more
//     characters of u.Username, nor of any token of u.DisplayName (split on
//     , . - _ space # and tab; tokens under three characters are ignored).
//
// The name rule is stricter than AD's own, which only looks for the whole
// username and whole tokens.
func MeetsComplexity(password string, u directory.User) error {
	var upper, lower, digit, symbol, other int
	for _, r := range password {
		switch {
		case '0' <= r && r <= '9':
			digit = 1
		case r < utf8.RuneSelf && strings.ContainsRune(pwASCIISymbols, r):
			symbol = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsLetter(r):
			other = 1
		}
	}
	if upper+lower+digit+symbol+other < 3 {
		return &directory.PolicyError{Reason: "the password must contain characters from at least 3 of these categories: uppercase letters, lowercase letters, digits, symbols, letters without case"}
	}
	folded := pwFoldString(password)
	if pwSharesRun(folded, u.Username) {
		return &directory.PolicyError{Reason: "the password must not contain 3 or more consecutive characters of the username"}
	}
	for _, tok := range strings.FieldsFunc(u.DisplayName, isDisplayNameDelimiter) {
		if pwSharesRun(folded, tok) {
			return &directory.PolicyError{Reason: "the password must not contain 3 or more consecutive characters of the display name"}
		}
	}
	return nil
}

// pwSharesRun reports whether the folded password contains a folded run of
// three characters of name.
func pwSharesRun(folded []byte, name string) bool {
	var w [3]rune
	var run [3 * utf8.UTFMax]byte
	n := 0
	for _, r := range name {
		w[0], w[1], w[2] = w[1], w[2], pwFold(r)
		n++
		if n < 3 {
			continue
		}
		b := utf8.AppendRune(run[:0], w[0])
		b = utf8.AppendRune(b, w[1])
		b = utf8.AppendRune(b, w[2])
		if bytes.Contains(folded, b) {
			return true
		}
	}
	return false
}
