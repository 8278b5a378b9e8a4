package password

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/replyreset/replyreset/directory"
)

var pwStyles = []string{StyleReadable, StyleRandom, StyleWords}

func newTestGenerator(t testing.TB, style string, length int) *Generator {
	t.Helper()
	g, err := NewGenerator(Config{Length: length, Style: style})
	if err != nil {
		t.Fatalf("NewGenerator(%s, %d): %v", style, length, err)
	}
	return g
}

// naiveViolates is an independent, simple-minded version of the name rule.
func naiveViolates(pw string, u directory.User) bool {
	lp := strings.ToLower(pw)
	shares := func(s string) bool {
		r := []rune(strings.ToLower(s))
		for i := 0; i+3 <= len(r); i++ {
			if strings.Contains(lp, string(r[i:i+3])) {
				return true
			}
		}
		return false
	}
	if shares(u.Username) {
		return true
	}
	for _, tok := range strings.FieldsFunc(u.DisplayName, func(r rune) bool { return strings.ContainsRune(",.-_ #\t", r) }) {
		if shares(tok) {
			return true
		}
	}
	return false
}

func hasFourClasses(pw string) bool {
	var up, lo, di, sy bool
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			up = true
		case unicode.IsLower(r):
			lo = true
		case unicode.IsDigit(r):
			di = true
		default:
			sy = true
		}
	}
	return up && lo && di && sy
}

// checkGenerated asserts everything a generated password promises.
func checkGenerated(t testing.TB, g *Generator, pw string, u directory.User) {
	t.Helper()
	switch g.style {
	case StyleWords:
		if len(pw) < g.length {
			t.Fatalf("words password has %d characters, want at least %d", len(pw), g.length)
		}
	default:
		if len(pw) != g.length {
			t.Fatalf("%s password has %d characters, want %d", g.style, len(pw), g.length)
		}
	}
	if err := MeetsComplexity(pw, u); err != nil {
		t.Fatalf("%s password %q for %+v: %v", g.style, pw, u, err)
	}
	if naiveViolates(pw, u) {
		t.Fatalf("%s password %q shares a run of 3 with %q / %q", g.style, pw, u.Username, u.DisplayName)
	}
	if !hasFourClasses(pw) {
		t.Fatalf("%s password %q lacks a character class", g.style, pw)
	}
}

// checkWordsShape parses a words password: Word sep Word sep ... Word.
func checkWordsShape(t testing.TB, pw string, length int, words map[string]bool) []string {
	t.Helper()
	var got []string
	i := 0
	for i < len(pw) {
		if len(got) > 0 {
			if !strings.ContainsRune(pwWordSeparators, rune(pw[i])) {
				t.Fatalf("words password %q: %q is not a separator", pw, pw[i])
			}
			i++
		}
		j := i + 1
		for j < len(pw) && 'a' <= pw[j] && pw[j] <= 'z' {
			j++
		}
		if i >= len(pw) || pw[i] < 'A' || pw[i] > 'Z' {
			t.Fatalf("words password %q: word at %d not capitalised", pw, i)
		}
		w := strings.ToLower(pw[i:j])
		if !words[w] {
			t.Fatalf("words password %q: %q not in the list", pw, w)
		}
		got = append(got, w)
		i = j
	}
	if len(got) != pwWordCount(length) {
		t.Fatalf("words password %q has %d words, want %d", pw, len(got), pwWordCount(length))
	}
	return got
}

func TestPasswordAlphabets(t *testing.T) {
	// random: exactly the printable ASCII characters but space, each once.
	var want []byte
	for c := byte('!'); c <= '~'; c++ {
		want = append(want, c)
	}
	got := []byte(pwRandom.all)
	slices.Sort(got)
	if string(got) != string(want) {
		t.Fatalf("random alphabet\n got %q\nwant %q", got, want)
	}
	for _, cs := range []*pwCharset{pwReadable, pwRandom} {
		for class, set := range cs.classes {
			for i := range len(set) {
				if pwClassOf(set[i]) != class {
					t.Fatalf("%q filed under class %d", set[i], class)
				}
			}
		}
		seen := map[rune]bool{}
		for _, r := range cs.all {
			if seen[r] {
				t.Fatalf("%q twice in %q", r, cs.all)
			}
			seen[r] = true
		}
	}
	// readable: a subset of random, with no look-alike or awkward character.
	for _, r := range pwReadable.all {
		if !strings.ContainsRune(pwRandom.all, r) {
			t.Fatalf("readable %q not printable ASCII", r)
		}
	}
	const banned = "0Oo1lIQ" + // look-alikes
		"CSUVWXZ" + // capitals that are a bigger lowercase
		"`~\\^|'\" " + // hard on phones or in SMS
		".,:;@#%*+=<>[]{}_"
	for _, r := range banned {
		if strings.ContainsRune(pwReadable.all, r) {
			t.Fatalf("readable alphabet contains %q", r)
		}
	}
	if len(pwReadable.all) != 56 || len(pwRandom.all) != 94 {
		t.Fatalf("alphabet sizes %d and %d, want 56 and 94", len(pwReadable.all), len(pwRandom.all))
	}
	if pwWordSeparators != "23456789!$&()-/?" {
		t.Fatalf("separators %q", pwWordSeparators)
	}
}

func pwClassOf(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return pwUpper
	case 'a' <= c && c <= 'z':
		return pwLower
	case '0' <= c && c <= '9':
		return pwDigit
	}
	return pwSymbol
}

func TestPasswordWordList(t *testing.T) {
	wl, err := pwDefaultWords()
	if err != nil {
		t.Fatal(err)
	}
	if len(wl.words) < 1000 {
		t.Fatalf("%d words, want at least 1000", len(wl.words))
	}
	seen := map[string]bool{}
	for _, w := range wl.words {
		if len(w) < 3 || len(w) > 7 || strings.Trim(w, pwASCIILower) != "" {
			t.Errorf("%q: not 3-7 lowercase letters", w)
		}
		if strings.Contains(w, "rn") || w[0] == 'i' {
			t.Errorf("%q: look-alike trouble (rn, or a leading I)", w)
		}
		if seen[w] {
			t.Errorf("%q twice", w)
		}
		seen[w] = true
	}
	for _, w := range []string{"color", "colour", "gray", "grey", "center", "centre", "gun", "kill", "drug", "beer", "sex", "fat", "dumb", "ugly"} {
		if seen[w] {
			t.Errorf("%q must not be in the list", w)
		}
	}
	// The index finds every word by each of its trigrams.
	for i, w := range wl.words {
		for j := 0; j+3 <= len(w); j++ {
			if !slices.Contains(wl.index[pwKey(w[j], w[j+1], w[j+2])], uint16(i)) {
				t.Fatalf("index misses %q under %q", w, w[j:j+3])
			}
		}
	}
	for _, bad := range []string{"ab\n", "Maple\n", "toolong1\n", "maple\nmaple\n", "# only a comment\n", "map1e\n"} {
		if _, err := parsePWWordList(bad); err == nil {
			t.Errorf("parsePWWordList(%q) accepted", bad)
		}
	}
}

func TestPasswordNewGeneratorErrors(t *testing.T) {
	for _, c := range []Config{
		{Length: 7, Style: StyleReadable},
		{Length: 65, Style: StyleRandom},
		{Length: 0, Style: StyleWords},
		{Length: -12, Style: StyleReadable},
		{Length: 12, Style: ""},
		{Length: 12, Style: "Readable"},
		{Length: 12, Style: "pin"},
		{Length: 3, Style: "xkcd"},
	} {
		g, err := NewGenerator(c)
		if err == nil || g != nil {
			t.Errorf("NewGenerator(%+v) = %v, %v; want an error", c, g, err)
			continue
		}
		if c.Length < 8 || c.Length > 64 {
			if !strings.Contains(err.Error(), "length") {
				t.Errorf("NewGenerator(%+v): %v does not name the length", c, err)
			}
		}
		if c.Style != StyleReadable && c.Style != StyleRandom && c.Style != StyleWords && !strings.Contains(err.Error(), "style") {
			t.Errorf("NewGenerator(%+v): %v does not name the style", c, err)
		}
	}
	for _, style := range pwStyles {
		for _, n := range []int{8, 64} {
			newTestGenerator(t, style, n)
		}
	}
	if _, err := NewGenerator(DefaultConfig()); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestGeneratePasswordLengthAndAlphabet(t *testing.T) {
	wl, _ := pwDefaultWords()
	words := map[string]bool{}
	for _, w := range wl.words {
		words[w] = true
	}
	u := directory.User{Username: "jdoe", DisplayName: "Doe, John"}
	for _, style := range pwStyles {
		for _, n := range []int{8, 9, 12, 13, 16, 33, 64} {
			g := newTestGenerator(t, style, n)
			for range 300 {
				pw, err := g.Generate(u)
				if err != nil {
					t.Fatal(err)
				}
				checkGenerated(t, g, pw, u)
				switch style {
				case StyleReadable:
					if strings.Trim(pw, pwReadable.all) != "" {
						t.Fatalf("readable password %q outside the readable alphabet", pw)
					}
				case StyleRandom:
					if strings.Trim(pw, pwRandom.all) != "" {
						t.Fatalf("random password %q outside printable ASCII", pw)
					}
				case StyleWords:
					checkWordsShape(t, pw, n, words)
				}
			}
		}
	}
}

func TestGeneratePasswordComplexity(t *testing.T) {
	u := directory.User{Username: "jdoe", DisplayName: "Doe, John"}
	for _, style := range pwStyles {
		g := newTestGenerator(t, style, 12)
		seen := make(map[string]bool, 10000)
		for range 10000 {
			pw, err := g.Generate(u)
			if err != nil {
				t.Fatal(err)
			}
			checkGenerated(t, g, pw, u)
			if seen[pw] {
				t.Fatalf("%s: %q generated twice", style, pw)
			}
			seen[pw] = true
		}
	}
}

func TestGeneratePasswordAvoidsNames(t *testing.T) {
	users := []directory.User{
		{Username: "abcdefghijkmnpqrstuvwxyz"}, // only readable letters
		{Username: "ABDEFGHJKLMNPRTYabc23456789!$&()-/?"},
		{Username: "abc"},
		{Username: "xyz"},
		{Username: "k2!"},
		{Username: "a$b"},
		{DisplayName: "Smith, John-Paul_de#la\tCruz.Jr"},
		{Username: "jdoe", DisplayName: "Doe, Jane (IT Service Desk) - Paris"},
		{Username: "maple", DisplayName: "River Stone Cloud Garden Summer Winter"},
		{Username: "j.smith", DisplayName: "Zoë Ångström-Éclair"},
		{Username: "\u212Aim", DisplayName: "ſam İlker Işık"},
		{Username: "AbCdEfGhJkMnPqRsTuVwXyZ", DisplayName: "the and ing ent ion her for tha nth int ere tio ter est ers"},
	}
	for _, style := range pwStyles {
		for _, n := range []int{8, 12} {
			g := newTestGenerator(t, style, n)
			for _, u := range users {
				for range 1000 {
					pw, err := g.Generate(u)
					if err != nil {
						t.Fatalf("%s for %+v: %v", style, u, err)
					}
					checkGenerated(t, g, pw, u)
				}
			}
		}
	}
}

// TestGeneratePasswordDistribution checks that every character of the
// alphabet turns up and none is far from the mean. Length 64 makes the bias
// from requiring all four classes negligible; 1.5x (and 0.5x) the mean over
// 200,000 characters is dozens of standard deviations away.
func TestGeneratePasswordDistribution(t *testing.T) {
	for _, cs := range []struct {
		style string
		set   string
	}{{StyleReadable, pwReadable.all}, {StyleRandom, pwRandom.all}} {
		g := newTestGenerator(t, cs.style, 64)
		counts := map[rune]int{}
		total := 0
		for total < 200000 {
			pw, err := g.Generate(directory.User{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range pw {
				counts[r]++
			}
			total += len(pw)
		}
		checkSpread(t, cs.style, []byte(cs.set), counts, total)
	}

	// words: each word and each separator.
	g := newTestGenerator(t, StyleWords, 12)
	wl, _ := pwDefaultWords()
	words := map[string]bool{}
	for _, w := range wl.words {
		words[w] = true
	}
	wordCounts := map[string]int{}
	sepCounts := map[rune]int{}
	nWords, nSeps := 0, 0
	for nWords < 200000 {
		pw, err := g.Generate(directory.User{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range checkWordsShape(t, pw, 12, words) {
			wordCounts[w]++
			nWords++
		}
		for _, r := range pw {
			if strings.ContainsRune(pwWordSeparators, r) {
				sepCounts[r]++
				nSeps++
			}
		}
	}
	checkSpread(t, "separators", []byte(pwWordSeparators), sepCounts, nSeps)
	mean := float64(nWords) / float64(len(wl.words))
	for _, w := range wl.words {
		c := float64(wordCounts[w])
		if c == 0 || c > 1.5*mean || c < 0.5*mean {
			t.Errorf("word %q drawn %v times, mean %.1f", w, c, mean)
		}
	}
}

func checkSpread(t *testing.T, name string, set []byte, counts map[rune]int, total int) {
	t.Helper()
	mean := float64(total) / float64(len(set))
	chi2 := 0.0
	for _, c := range set {
		n := float64(counts[rune(c)])
		if n == 0 || n > 1.5*mean || n < 0.5*mean {
			t.Errorf("%s: %q drawn %v times, mean %.1f", name, c, n, mean)
		}
		chi2 += (n - mean) * (n - mean) / mean
		delete(counts, rune(c))
	}
	if len(counts) > 0 {
		t.Errorf("%s: characters outside the alphabet: %v", name, counts)
	}
	t.Logf("%s: %d draws over %d symbols, chi-square %.1f (%d degrees of freedom)", name, total, len(set), chi2, len(set)-1)
}

func TestMeetsComplexity(t *testing.T) {
	jdoe := directory.User{Username: "jdoe", DisplayName: "Doe, John"}
	for _, c := range []struct {
		pw   string
		u    directory.User
		want string // "" for nil, else a word of the reason
	}{
		{"Password1!", jdoe, ""},
		{"Passw0rd", jdoe, ""},
		{"qwertyuiop", jdoe, "categories"},
		{"PASSWORD12", jdoe, "categories"},
		{"pass word1", jdoe, "categories"}, // space is no symbol
		{"ab1€€€", jdoe, "categories"},     // nor is the euro sign
		{"Ab1€€€", jdoe, ""},
		{"日本語Ab", jdoe, ""}, // letters without case are a fifth category
		{"", directory.User{}, "categories"},
		{"xJDO3!k", jdoe, "username"},
		{"jd!Oe12A", jdoe, ""},
		{"Ab1!ohnx", jdoe, "display name"},
		{"Smi7h!ab", directory.User{DisplayName: "Smith, John"}, "display name"},
		{"Jo!Li99aA", directory.User{Username: "Jo", DisplayName: "Jo Li"}, ""}, // too short to count
		{"Ab1!zoëx", directory.User{DisplayName: "Zoë Renée"}, "display name"},
		{"Kim!2345a", directory.User{Username: "\u212Aim"}, "username"},  // Kelvin sign
		{"Ab1!sam9", directory.User{DisplayName: "ſam"}, "display name"}, // long s
		{"Ab1!Ilk9", directory.User{DisplayName: "İlker"}, "display name"},
		{"Ab1!Kil9", directory.User{DisplayName: "Kılıç"}, "display name"}, // dotless i
		{"Xa.b1!", directory.User{Username: "a.b"}, "username"},            // the username is not split
		{"Jrr!Tol1", directory.User{DisplayName: "J.R.R. Tolkien"}, "display name"},
		{"J.R.R.x1A", directory.User{DisplayName: "J.R.R. Tolkien"}, ""},
		{"Xx-Ab1!mi", directory.User{DisplayName: "Ab-Mi Xx"}, ""},
		{"abc#DEF1", directory.User{DisplayName: "x#ab#cd#ef"}, ""},
		{"Q!9cdefgh", directory.User{DisplayName: "Zz_Cde_Zz"}, "display name"},
	} {
		err := MeetsComplexity(c.pw, c.u)
		if c.want == "" {
			if err != nil {
				t.Errorf("MeetsComplexity(%q, %+v) = %v, want nil", c.pw, c.u, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("MeetsComplexity(%q, %+v) = nil, want %s error", c.pw, c.u, c.want)
			continue
		}
		var pe *directory.PolicyError
		if !errors.Is(err, directory.ErrPolicy) || !errors.As(err, &pe) {
			t.Errorf("MeetsComplexity(%q): %v is not a *directory.PolicyError", c.pw, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("MeetsComplexity(%q, %+v) = %v, want a %s error", c.pw, c.u, err, c.want)
		}
		if c.pw != "" && strings.Contains(err.Error(), c.pw) {
			t.Errorf("error %q echoes the password", err)
		}
	}
}

// deBruijn returns a string over alphabet holding every run of n characters.
func deBruijn(alphabet string, n int) string {
	k := len(alphabet)
	a := make([]int, k*n+1)
	var seq []byte
	var db func(t, p int)
	db = func(t, p int) {
		if t > n {
			if n%p == 0 {
				for _, v := range a[1 : p+1] {
					seq = append(seq, alphabet[v])
				}
			}
			return
		}
		a[t] = a[t-p]
		db(t+1, p)
		for j := a[t-p] + 1; j < k; j++ {
			a[t] = j
			db(t+1, t)
		}
	}
	db(1, 1)
	return string(seq) + string(seq[:n-1])
}

// TestGeneratePasswordConstructive forbids every readable trigram without a
// dash: uniform draws essentially never pass, the constructive fallback must.
func TestGeneratePasswordConstructive(t *testing.T) {
	alpha := strings.ReplaceAll(pwReadableLower+"l"+pwReadableDigits+pwReadableSymbols, "-", "")
	u := directory.User{Username: deBruijn(alpha, 3)}
	if got := len(pwUserTrigrams(u)); got != 40*40*40 {
		t.Fatalf("%d trigrams, want %d", got, 40*40*40)
	}
	for _, style := range []string{StyleReadable, StyleWords} {
		g := newTestGenerator(t, style, 12)
		for range 20 {
			pw, err := g.Generate(u)
			if err != nil {
				t.Fatalf("%s: %v", style, err)
			}
			if len(pw) != 12 || strings.Trim(pw, pwReadable.all) != "" {
				t.Fatalf("%s: %q is not a readable password", style, pw) // words falls back
			}
			checkGenerated(t, &Generator{length: 12, style: StyleReadable}, pw, u)
			for i := 0; i+3 <= len(pw); i++ {
				if !strings.Contains(pw[i:i+3], "-") {
					t.Fatalf("%q: %q has no dash", pw, pw[i:i+3])
				}
			}
		}
	}
}

func TestGeneratePasswordImpossible(t *testing.T) {
	u := directory.User{Username: deBruijn(pwReadableLower+"l"+pwReadableDigits+pwReadableSymbols, 3)}
	for _, style := range []string{StyleReadable, StyleWords} {
		pw, err := newTestGenerator(t, style, 8).Generate(u)
		if err == nil || !errors.Is(err, directory.ErrPolicy) || pw != "" {
			t.Fatalf("%s: Generate = %q, %v; want an directory.ErrPolicy error", style, pw, err)
		}
	}
}

func TestGeneratePasswordWordsFallback(t *testing.T) {
	wl, err := parsePWWordList("# test\nmaple\nriver\nstone\ncloud\nbread\nlemon\ntiger\nhappy\n")
	if err != nil {
		t.Fatal(err)
	}
	g := &Generator{length: 12, style: StyleWords, words: wl}
	words := map[string]bool{}
	for _, w := range wl.words {
		words[w] = true
	}
	pw, err := g.Generate(directory.User{Username: "jdoe"})
	if err != nil {
		t.Fatal(err)
	}
	checkWordsShape(t, pw, 12, words)
	// A user whose names rule out a word of a list this small gets a
	// readable password instead.
	u := directory.User{Username: "jdoe", DisplayName: "Maple Syrup"}
	for range 100 {
		pw, err := g.Generate(u)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 12 || strings.Trim(pw, pwReadable.all) != "" {
			t.Fatalf("fallback %q is not readable", pw)
		}
		checkGenerated(t, g, pw, u)
	}
}

type pwCycleReader struct{ next byte }

func (c *pwCycleReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

// TestPasswordRandIntn feeds every byte value once: an unbiased intn(n) must
// return each value in [0, n) equally often and skip the top 256%n bytes.
func TestPasswordRandIntn(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8, 16, 24, 56, 94, 100, 200, 255, 256} {
		src := pwRandSource{r: &pwCycleReader{}}
		src.pos = len(src.buf)
		limit := 256 - 256%n
		counts := make([]int, n)
		for range limit {
			v, err := src.intn(n)
			if err != nil {
				t.Fatal(err)
			}
			counts[v]++
		}
		for v, c := range counts {
			if c != limit/n {
				t.Fatalf("intn(%d): %d drawn %d times, want %d", n, v, c, limit/n)
			}
		}
		if v, _ := src.intn(n); v != 0 {
			t.Fatalf("intn(%d) did not reject the top bytes: got %d", n, v)
		}
	}
	var src pwRandSource
	src.pos = len(src.buf)
	for _, n := range []int{257, 2074, 1 << 20, 1 << 31} {
		for range 1000 {
			if v, err := src.intn(n); err != nil || v < 0 || v >= n {
				t.Fatalf("intn(%d) = %d, %v", n, v, err)
			}
		}
	}
}

type pwFailingReader struct{}

func (pwFailingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestGeneratePasswordRandFailure(t *testing.T) {
	for _, style := range pwStyles {
		g := newTestGenerator(t, style, 12)
		g.rand = pwFailingReader{}
		if pw, err := g.Generate(directory.User{}); err == nil || pw != "" {
			t.Fatalf("%s: Generate = %q, %v; want an error", style, pw, err)
		}
	}
}

func TestGeneratePasswordConcurrent(t *testing.T) {
	u := directory.User{Username: "jdoe", DisplayName: "Doe, John"}
	for _, style := range pwStyles {
		g := newTestGenerator(t, style, 12)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 300 {
					pw, err := g.Generate(u)
					if err != nil || MeetsComplexity(pw, u) != nil {
						t.Errorf("%s: %v", style, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// pwEntropyBits is the exact entropy of a fresh generator's output for a user
// without names: log2 of the number of equally likely passwords.
func pwEntropyBits(style string, length int) float64 {
	count := new(big.Int)
	switch style {
	case StyleWords:
		wl, _ := pwDefaultWords()
		k := pwWordCount(length)
		nd, ns := int64(len(pwReadableDigits)), int64(len(pwReadableSymbols))
		seps := new(big.Int).Exp(big.NewInt(nd+ns), big.NewInt(int64(k-1)), nil)
		seps.Sub(seps, new(big.Int).Exp(big.NewInt(nd), big.NewInt(int64(k-1)), nil))
		seps.Sub(seps, new(big.Int).Exp(big.NewInt(ns), big.NewInt(int64(k-1)), nil))
		count.Exp(big.NewInt(int64(len(wl.words))), big.NewInt(int64(k)), nil)
		count.Mul(count, seps)
	default:
		cs := pwReadable
		if style == StyleRandom {
			cs = pwRandom
		}
		// Inclusion-exclusion over the classes left out.
		for mask := range 1 << pwClasses {
			size := len(cs.all)
			sign := int64(1)
			for c := range pwClasses {
				if mask&(1<<c) != 0 {
					size -= len(cs.classes[c])
					sign = -sign
				}
			}
			term := new(big.Int).Exp(big.NewInt(int64(size)), big.NewInt(int64(length)), nil)
			count.Add(count, term.Mul(term, big.NewInt(sign)))
		}
	}
	f, _ := new(big.Float).SetInt(count).Float64()
	if !math.IsInf(f, 0) {
		return math.Log2(f)
	}
	shift := count.BitLen() - 60
	f, _ = new(big.Float).SetInt(new(big.Int).Rsh(count, uint(shift))).Float64()
	return math.Log2(f) + float64(shift)
}

func TestPasswordEntropy(t *testing.T) {
	floors := map[string]float64{StyleReadable: 44, StyleRandom: 50, StyleWords: 36} // at length 8; words: any list of 1,000+
	for _, style := range pwStyles {
		var line []string
		for _, n := range []int{8, 12, 16, 64} {
			bits := pwEntropyBits(style, n)
			if n == 8 && bits < floors[style] {
				t.Errorf("%s at 8: %.1f bits, want at least %.0f", style, bits, floors[style])
			}
			line = append(line, fmt.Sprintf("%d: %.1f bits", n, bits))
		}
		t.Logf("%-8s %s", style, strings.Join(line, ", "))
	}
}

func BenchmarkGenerate(b *testing.B) {
	u := directory.User{Username: "jdoe", DisplayName: "Doe, John"}
	for _, style := range pwStyles {
		b.Run(style, func(b *testing.B) {
			g := newTestGenerator(b, style, 12)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Generate(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzGenerate(f *testing.F) {
	for _, s := range [][2]string{
		{"jdoe", "Doe, John"},
		{"", ""},
		{"abc", "Smith, John-Paul"},
		{"a.b-c_d", "Jean-Luc Picard"},
		{"\u212Aim", "Zoë Ångström ſam İlker"},
		{"abcdefghijkmnpqrstuvwxyz", "ABDEFGHJKLMNPRTY 23456789 !$&()-/?"},
		{"maple", "River Stone\tCloud#Garden"},
		{"x", "de la Cruz, María José"},
	} {
		f.Add(s[0], s[1])
	}
	var gens []*Generator
	for _, style := range pwStyles {
		gens = append(gens, newTestGenerator(f, style, 8), newTestGenerator(f, style, 12))
	}
	printable := func(s string) bool {
		if !utf8.ValidString(s) {
			return false
		}
		for _, r := range s {
			if !unicode.IsPrint(r) && r != '\t' {
				return false
			}
		}
		return true
	}
	f.Fuzz(func(t *testing.T, username, displayName string) {
		if len(username) > 256 || len(displayName) > 512 || !printable(username) || !printable(displayName) {
			t.Skip()
		}
		u := directory.User{Username: username, DisplayName: displayName}
		for _, g := range gens {
			pw, err := g.Generate(u)
			if err != nil {
				t.Fatalf("%s/%d: Generate(%+v): %v", g.style, g.length, u, err)
			}
			checkGenerated(t, g, pw, u)
		}
	})
}
