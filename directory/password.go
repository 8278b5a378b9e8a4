package directory

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Password generation.
//
// Every generated password meets the Active Directory "password must meet
// complexity requirements" rule, and more:
//
//   - it contains all four classes: an uppercase letter, a lowercase letter, a
//     digit and a symbol (AD asks for three of five);
//   - it shares no run of three or more characters, compared case-insensitively,
//     with the username or with any token of the display name (AD splits the
//     display name on , . - _ space # and tab and ignores tokens shorter than
//     three characters; AD itself only refuses the whole sAMAccountName and whole
//     tokens, so this is stricter).
//
// Randomness comes from crypto/rand only and every choice is uniform (rejection
// sampling, no modulo bias). A candidate that breaks a rule is thrown away and a
// new one drawn, so readable and random passwords are uniform over the set of
// compliant strings; after a bounded number of draws (only reachable with
// adversarial names) a constructive fallback builds a compliant password
// character by character.
//
// Alphabets:
//
// readable (56 characters, 5.81 bits each) is for passwords read off a phone
// screen and typed on a PC, possibly with a French (AZERTY) or German (QWERTZ)
// keyboard:
//
//	uppercase  ABDEFGHJKLMNPRTY          (16)
//	lowercase  abcdefghijkmnpqrstuvwxyz  (24)
//	digits     23456789                  (8)
//	symbols    !$&()-/?                  (8)
//
//   - look-alikes out: 0 O o Q (zero and round letters), 1 l I (one, ell, eye);
//     lowercase i and j stay, their dot sets them apart in phone fonts, and
//     uppercase L stays because lowercase l is gone;
//   - letters whose capital is only a bigger lowercase (C S U V W X Z, and O)
//     are kept in lowercase only, so the case cannot be misread;
//   - symbols: only the eight on the first symbol page of both the iOS and the
//     Android keyboard, which are also typed without AltGr on AZERTY and QWERTZ
//     and are plain GSM-7 characters in an SMS. Left out: quotes (' " and the
//     phones' curly substitutes), backquote, ~ \ ^ | (hard to find, dead keys,
//     GSM extension table or not GSM at all), space, . , : ; (read as sentence
//     punctuation), @ (GSM code 0x00, mangled by some gateways) and the rest.
//
// random (94 characters, 6.55 bits each) is every printable ASCII character
// except space. Some of them ([ ] { } \ ^ ~ | and backquote) cost extra in an
// SMS or force UCS-2 encoding; that is the price of the style.
//
// words: Length/4+1 capitalised words from the embedded list words.txt (over
// 2,000 common words of 3-7 letters, about 11 bits each) joined by separators
// drawn from the readable digits and symbols (16, 4 bits each), at least one of
// each, e.g. "Maple7River-Stone(Cloud". Four words or more are at least
// 4*3+3 = 15 characters, so a words password is always at least Length long and
// usually nearly twice as long. For a user whose names rule out most of the list
// (fewer than 256 words left) the words style falls back to readable.

//go:embed words.txt
var passwordWordsFile string

const (
	minPasswordLength = 8
	maxPasswordLength = 64

	// pwUniformTries bounds the uniform draws before the constructive fallback;
	// with ordinary names a draw is accepted with probability above 0.4.
	pwUniformTries = 100
	// pwConstructTries bounds the constructive fallback.
	pwConstructTries = 200
	// pwMinWords: below this many usable words the words style falls back to
	// readable.
	pwMinWords = 256
	// pwMinWordList is the least the embedded list must hold.
	pwMinWordList = 1000
)

// Character classes of the generator (AD categories 1-4).
const (
	pwUpper = iota
	pwLower
	pwDigit
	pwSymbol
	pwClasses
)

const (
	pwReadableUpper   = "ABDEFGHJKLMNPRTY"
	pwReadableLower   = "abcdefghijkmnpqrstuvwxyz"
	pwReadableDigits  = "23456789"
	pwReadableSymbols = "!$&()-/?"

	pwASCIIUpper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	pwASCIILower  = "abcdefghijklmnopqrstuvwxyz"
	pwASCIIDigits = "0123456789"
	// pwASCIISymbols is every printable ASCII character that is neither a
	// letter, a digit nor space: exactly AD's "special characters".
	pwASCIISymbols = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

	// pwWordSeparators go between words: the readable digits and symbols.
	pwWordSeparators = pwReadableDigits + pwReadableSymbols
)

// pwCharset is an alphabet split by class.
type pwCharset struct {
	all     string
	classes [pwClasses]string
}

func newPWCharset(upper, lower, digits, symbols string) *pwCharset {
	return &pwCharset{
		all:     upper + lower + digits + symbols,
		classes: [pwClasses]string{upper, lower, digits, symbols},
	}
}

var (
	pwReadable = newPWCharset(pwReadableUpper, pwReadableLower, pwReadableDigits, pwReadableSymbols)
	pwRandom   = newPWCharset(pwASCIIUpper, pwASCIILower, pwASCIIDigits, pwASCIISymbols)
)

// Generator makes new passwords for users. It is safe for concurrent use.
type Generator struct {
	length int
	style  string
	chars  *pwCharset  // readable and random styles
	words  *pwWordList // words style
	rand   io.Reader   // nil: crypto/rand; tests substitute a reader
}

// NewGenerator returns a generator for the `password:` settings. Only Length
// (8-64) and Style are used.
func NewGenerator(c PasswordConfig) (*Generator, error) {
	var errs []error
	if c.Length < minPasswordLength || c.Length > maxPasswordLength {
		errs = append(errs, fmt.Errorf("directory: password length must be between %d and %d, not %d",
			minPasswordLength, maxPasswordLength, c.Length))
	}
	g := &Generator{length: c.Length, style: c.Style}
	switch c.Style {
	case StyleReadable:
		g.chars = pwReadable
	case StyleRandom:
		g.chars = pwRandom
	case StyleWords:
		wl, err := pwDefaultWords()
		if err != nil {
			errs = append(errs, err)
		}
		g.words = wl
	default:
		errs = append(errs, fmt.Errorf("directory: password style must be readable, random or words, not %q", c.Style))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return g, nil
}

// Generate returns a new password for u that meets MeetsComplexity and holds
// all four character classes. readable and random passwords are exactly Length
// characters; words passwords are at least Length characters.
//
// An error means the random source failed or, for names built to cover
// (nearly) every three-character sequence, that no compliant password exists;
// the latter wraps ErrPolicy.
func (g *Generator) Generate(u User) (string, error) {
	if g == nil || (g.chars == nil && g.words == nil) {
		return "", errors.New("directory: password generator not made by NewGenerator")
	}
	src := pwRandSource{r: g.rand}
	src.pos = len(src.buf)
	forbidden := pwUserTrigrams(u)
	if g.words != nil {
		return g.generateWords(&src, forbidden, u)
	}
	return g.generateChars(&src, g.chars, forbidden, u)
}

var errPWExhausted = fmt.Errorf("directory: no generated password avoids this user's names: %w", ErrPolicy)

// generateChars draws uniform strings until one is compliant, then falls back
// to building one.
func (g *Generator) generateChars(src *pwRandSource, cs *pwCharset, forbidden pwTrigrams, u User) (string, error) {
	buf := make([]byte, g.length)
	for range pwUniformTries {
		for i := range buf {
			k, err := src.intn(len(cs.all))
			if err != nil {
				return "", err
			}
			buf[i] = cs.all[k]
		}
		if s, ok := pwAccept(buf, forbidden, u); ok {
			return s, nil
		}
	}
	for range pwConstructTries {
		ok, err := pwConstruct(src, cs, buf, forbidden)
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		if s, ok := pwAccept(buf, forbidden, u); ok {
			return s, nil
		}
	}
	return "", errPWExhausted
}

// pwConstruct fills buf with one character of each class at random positions
// and uniform characters elsewhere, never choosing a character that completes a
// forbidden trigram. It reports false at a dead end.
func pwConstruct(src *pwRandSource, cs *pwCharset, buf []byte, forbidden pwTrigrams) (bool, error) {
	// required[i] is the class position i must hold, or -1.
	var required [maxPasswordLength]int8
	var order [maxPasswordLength]uint8
	n := len(buf)
	for i := range n {
		required[i] = -1
		order[i] = uint8(i)
	}
	// Partial Fisher-Yates: the first pwClasses entries of order are uniform
	// distinct positions.
	for c := range pwClasses {
		j, err := src.intn(n - c)
		if err != nil {
			return false, err
		}
		order[c], order[c+j] = order[c+j], order[c]
		required[order[c]] = int8(c)
	}
	var candidates [len(pwASCIISymbols) + 62]byte
	for i := range n {
		set := cs.all
		if required[i] >= 0 {
			set = cs.classes[required[i]]
		}
		m := 0
		for k := range len(set) {
			c := set[k]
			if i >= 2 && forbidden.has(pwKey(buf[i-2], buf[i-1], c)) {
				continue
			}
			candidates[m] = c
			m++
		}
		if m == 0 {
			return false, nil
		}
		k, err := src.intn(m)
		if err != nil {
			return false, err
		}
		buf[i] = candidates[k]
	}
	return true, nil
}

// pwAccept checks a candidate: all four classes, no forbidden trigram, and
// MeetsComplexity as the final word.
func pwAccept(buf []byte, forbidden pwTrigrams, u User) (string, bool) {
	if !pwHasAllClasses(buf) || forbidden.hits(buf) {
		return "", false
	}
	s := string(buf)
	if MeetsComplexity(s, u) != nil {
		return "", false
	}
	return s, true
}

// generateWords joins capitalised words with separators.
func (g *Generator) generateWords(src *pwRandSource, forbidden pwTrigrams, u User) (string, error) {
	wl := g.words
	banned, allowed := wl.banned(forbidden)
	if allowed < min(pwMinWords, len(wl.words)) {
		return g.generateChars(src, pwReadable, forbidden, u)
	}
	k := pwWordCount(g.length)
	var sepBuf [maxPasswordLength]byte
	seps := sepBuf[:k-1]
	buf := make([]byte, 0, k*8)
	for range pwUniformTries {
		if err := pwPickSeparators(src, seps); err != nil {
			return "", err
		}
		buf = buf[:0]
		for i := range k {
			if i > 0 {
				buf = append(buf, seps[i-1])
			}
			w, err := wl.pick(src, banned)
			if err != nil {
				return "", err
			}
			buf = append(buf, w[0]-'a'+'A')
			buf = append(buf, w[1:]...)
		}
		if s, ok := pwAccept(buf, forbidden, u); ok {
			return s, nil
		}
	}
	return "", errPWExhausted
}

// pwWordCount is the number of words for a length: the least k with
// 4k-1 >= length (k words of at least 3 letters and k-1 separators), so never
// fewer than 3 (two separators: one digit, one symbol).
func pwWordCount(length int) int { return (length + 4) / 4 }

// pwPickSeparators fills seps uniformly from the separators such that at least
// one digit and one symbol occur.
func pwPickSeparators(src *pwRandSource, seps []byte) error {
	for range 1000 {
		var digit, symbol bool
		for i := range seps {
			k, err := src.intn(len(pwWordSeparators))
			if err != nil {
				return err
			}
			seps[i] = pwWordSeparators[k]
			if k < len(pwReadableDigits) {
				digit = true
			} else {
				symbol = true
			}
		}
		if digit && symbol {
			return nil
		}
	}
	return errPWExhausted // (1/2)^1000: unreachable
}

// pwWordList is a parsed word list with an index from letter trigram to the
// words containing it.
type pwWordList struct {
	words []string
	index map[uint32][]uint16
}

var pwDefaultWords = sync.OnceValues(func() (*pwWordList, error) {
	wl, err := parsePWWordList(passwordWordsFile)
	if err == nil && len(wl.words) < pwMinWordList {
		err = fmt.Errorf("directory: words.txt holds %d words, fewer than %d", len(wl.words), pwMinWordList)
	}
	return wl, err
})

// parsePWWordList reads one word a line; blank lines and lines starting with #
// are skipped. Words must be 3-7 lowercase ASCII letters, each once.
func parsePWWordList(text string) (*pwWordList, error) {
	wl := &pwWordList{index: make(map[uint32][]uint16)}
	seen := make(map[string]bool)
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if len(line) < 3 || len(line) > 7 || strings.Trim(line, pwASCIILower) != "" {
			return nil, fmt.Errorf("directory: words.txt line %d: %q is not 3-7 lowercase letters", n+1, line)
		}
		if seen[line] {
			return nil, fmt.Errorf("directory: words.txt line %d: %q repeated", n+1, line)
		}
		seen[line] = true
		if len(wl.words) == 1<<16 {
			return nil, fmt.Errorf("directory: words.txt: more than %d words", 1<<16)
		}
		i := uint16(len(wl.words))
		wl.words = append(wl.words, line)
		for j := 0; j+3 <= len(line); j++ {
			k := pwKey(line[j], line[j+1], line[j+2])
			if ws := wl.index[k]; len(ws) == 0 || ws[len(ws)-1] != i {
				wl.index[k] = append(ws, i)
			}
		}
	}
	if len(wl.words) == 0 {
		return nil, errors.New("directory: words.txt holds no words")
	}
	return wl, nil
}

// banned returns a bit set of the words containing a forbidden trigram (nil
// when none does) and how many words are left.
func (wl *pwWordList) banned(forbidden pwTrigrams) ([]uint64, int) {
	var bits []uint64
	allowed := len(wl.words)
	for _, k := range forbidden {
		for _, i := range wl.index[k] {
			if bits == nil {
				bits = make([]uint64, (len(wl.words)+63)/64)
			}
			if bits[i/64]&(1<<(i%64)) == 0 {
				bits[i/64] |= 1 << (i % 64)
				allowed--
			}
		}
	}
	return bits, allowed
}

// pick returns a uniform word among those not banned.
func (wl *pwWordList) pick(src *pwRandSource, banned []uint64) (string, error) {
	for range 1 << 16 {
		i, err := src.intn(len(wl.words))
		if err != nil {
			return "", err
		}
		if banned == nil || banned[i/64]&(1<<(i%64)) == 0 {
			return wl.words[i], nil
		}
	}
	return "", errPWExhausted
}

// pwRandSource hands out uniform integers from crypto/rand (or r) through a
// small buffer.
type pwRandSource struct {
	r   io.Reader
	buf [128]byte
	pos int
}

func (s *pwRandSource) byte() (byte, error) {
	if s.pos == len(s.buf) {
		var err error
		if s.r == nil {
			_, err = rand.Read(s.buf[:]) // never fails since Go 1.24
		} else {
			_, err = io.ReadFull(s.r, s.buf[:])
		}
		if err != nil {
			return 0, fmt.Errorf("directory: reading random bytes: %w", err)
		}
		s.pos = 0
	}
	b := s.buf[s.pos]
	s.pos++
	return b, nil
}

// intn returns a uniform integer in [0, n), 0 < n <= 1<<31, by rejection:
// values at or above the largest multiple of n are drawn again.
func (s *pwRandSource) intn(n int) (int, error) {
	if n <= 0 || n > 1<<31 {
		panic("directory: intn out of range")
	}
	if n <= 256 {
		limit := 256 - 256%n
		for {
			b, err := s.byte()
			if err != nil {
				return 0, err
			}
			if int(b) < limit {
				return int(b) % n, nil
			}
		}
	}
	limit := uint64(1<<32) - uint64(1<<32)%uint64(n)
	for {
		var v uint64
		for range 4 {
			b, err := s.byte()
			if err != nil {
				return 0, err
			}
			v = v<<8 | uint64(b)
		}
		if v < limit {
			return int(v % uint64(n)), nil
		}
	}
}

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
func pwUserTrigrams(u User) pwTrigrams {
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
// rule for u and returns nil or a *PolicyError (errors.Is ErrPolicy) naming the
// rule that failed; the error never contains the password.
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
func MeetsComplexity(password string, u User) error {
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
		return &PolicyError{Reason: "the password must contain characters from at least 3 of these categories: uppercase letters, lowercase letters, digits, symbols, letters without case"}
	}
	folded := pwFoldString(password)
	if pwSharesRun(folded, u.Username) {
		return &PolicyError{Reason: "the password must not contain 3 or more consecutive characters of the username"}
	}
	for _, tok := range strings.FieldsFunc(u.DisplayName, isDisplayNameDelimiter) {
		if pwSharesRun(folded, tok) {
			return &PolicyError{Reason: "the password must not contain 3 or more consecutive characters of the display name"}
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
