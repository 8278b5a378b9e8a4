package password

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
)

//go:embed words.txt
var passwordWordsFile string

// pwWordList is a parsed word list with an index from letter trigram to the
// words containing it.
type pwWordList struct {
	words []string
	index map[uint32][]uint16
}

var pwDefaultWords = sync.OnceValues(func() (*pwWordList, error) {
	wl, err := parsePWWordList(passwordWordsFile)
	if err == nil && len(wl.words) < pwMinWordList {
		err = fmt.Errorf("password: words.txt holds %d words, fewer than %d", len(wl.words), pwMinWordList)
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
			return nil, fmt.Errorf("password: words.txt line %d: %q is not 3-7 lowercase letters", n+1, line)
		}
		if seen[line] {
			return nil, fmt.Errorf("password: words.txt line %d: %q repeated", n+1, line)
		}
		seen[line] = true
		if len(wl.words) == 1<<16 {
			return nil, fmt.Errorf("password: words.txt: more than %d words", 1<<16)
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
		return nil, errors.New("password: words.txt holds no words")
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
