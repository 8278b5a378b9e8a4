package password

import (
	"errors"
	"fmt"
	"io"

	"github.com/replyreset/replyreset/directory"
)

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
func NewGenerator(c Config) (*Generator, error) {
	var errs []error
	if c.Length < minPasswordLength || c.Length > maxPasswordLength {
		errs = append(errs, fmt.Errorf("password: length must be between %d and %d, not %d",
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
		errs = append(errs, fmt.Errorf("password: style must be readable, random or words, not %q", c.Style))
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
// the latter wraps directory.ErrPolicy.
func (g *Generator) Generate(u directory.User) (string, error) {
	if g == nil || (g.chars == nil && g.words == nil) {
		return "", errors.New("password: generator not made by NewGenerator")
	}
	src := pwRandSource{r: g.rand}
	src.pos = len(src.buf)
	forbidden := pwUserTrigrams(u)
	if g.words != nil {
		return g.generateWords(&src, forbidden, u)
	}
	return g.generateChars(&src, g.chars, forbidden, u)
}

var errPWExhausted = fmt.Errorf("password: no generated password avoids this user's names: %w", directory.ErrPolicy)

// generateChars draws uniform strings until one is compliant, then falls back
// to building one.
func (g *Generator) generateChars(src *pwRandSource, cs *pwCharset, forbidden pwTrigrams, u directory.User) (string, error) {
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
func pwAccept(buf []byte, forbidden pwTrigrams, u directory.User) (string, bool) {
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
func (g *Generator) generateWords(src *pwRandSource, forbidden pwTrigrams, u directory.User) (string, error) {
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
