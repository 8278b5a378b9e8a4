package enroll

import (
	"encoding/base64"
	"math"
	"strings"
	"testing"
)

func TestNewCodeIsSixUniformDigits(t *testing.T) {
	const n = 60000
	var counts [6][10]int
	seen := map[string]bool{}
	for range n {
		c := newCode()
		if len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q is not 6 ASCII digits", c)
		}
		seen[c] = true
		for i := range c {
			counts[i][c[i]-'0']++
		}
	}
	// Chi-square over each position's digits (9 degrees of freedom): a
	// uniform source exceeds 45 about once in a million runs per position;
	// a grossly biased one (a leading digit never 0, digits from a
	// truncated byte) scores in the hundreds or thousands.
	for pos, cs := range counts {
		var chi float64
		for _, c := range cs {
			d := float64(c) - n/10.0
			chi += d * d / (n / 10.0)
		}
		if chi > 45 {
			t.Errorf("digit %d: chi-square %.1f over %v: not uniform", pos, chi, cs)
		}
	}
	// 60,000 draws from 10^6 codes repeat about 1,760 times (birthday):
	// far more means a weak source.
	if dup := n - len(seen); math.Abs(float64(dup)-1764) > 300 {
		t.Errorf("%d repeated codes in %d draws, want about 1,760", dup, n)
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken()
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != 32 || len(tok) != 43 {
			t.Fatalf("token %q: %d bytes, %v; want 32 bytes in 43 base64url characters", tok, len(raw), err)
		}
		if !wellFormedToken(tok) {
			t.Fatalf("wellFormedToken(%q) = false", tok)
		}
		if seen[tok] {
			t.Fatal("a token repeated")
		}
		seen[tok] = true
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 42), strings.Repeat("A", 44),
		strings.Repeat("A", 42) + "+", strings.Repeat("A", 42) + "/", strings.Repeat("A", 42) + "=",
		strings.Repeat("A", 42) + "B"} { // last: non-zero padding bits, refused by Strict
		if wellFormedToken(bad) {
			t.Errorf("wellFormedToken(%q) = true", bad)
		}
	}
}

func TestCleanCodeAndSpokenDigits(t *testing.T) {
	for in, want := range map[string]string{
		"123456": "123456", " 123 456 ": "123456", "123-456": "123456", "１２３４５６": "123456",
		"١٢٣٤٥٦": "123456", "12a456": "12a456", "": "",
	} {
		if got := cleanCode(in); got != want {
			t.Errorf("cleanCode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := spokenDigits("042917"); got != "0, 4, 2, 9, 1, 7" {
		t.Errorf("spokenDigits = %q", got)
	}
}
