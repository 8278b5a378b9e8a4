package reset

import (
	_ "embed"
	"slices"
	"strings"
	"unicode"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/templates"
)

// The banned list of chosen passwords (NIST SP 800-63B 5.1.1.2): the
// most common passwords, the company's names (Deps.Banned: cmd gives the
// base DN's and the mail domain's names) and the user's own (username,
// the name typed, the display name's words). Compared without case and
// without the digits and symbols people put around a word
// ("Password2024!" is "password"); a name of four letters or more is
// refused anywhere inside the password.

//go:embed common_passwords.txt
var commonList string

var common = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(commonList) {
		m[strings.ToLower(w)] = true
	}
	return m
}()

// minBannedName: shorter names are too common inside words to refuse.
const minBannedName = 4

// banned returns why password is refused, or nil.
func banned(password string, u directory.User, login string, company []string) *templates.Msg {
	lower := strings.ToLower(password)
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if common[lower] || common[core] || common[strings.Map(unleet, core)] {
		return &templates.Msg{Key: "reset.err.banned.common"}
	}
	names := []string{u.Username, login, strings.SplitN(login, "@", 2)[0], strings.SplitN(u.Mail, "@", 2)[0]}
	names = append(names, strings.FieldsFunc(u.DisplayName, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })...)
	for _, n := range names {
		if n = strings.ToLower(n); len([]rune(n)) >= minBannedName && strings.Contains(lower, n) {
			return &templates.Msg{Key: "reset.err.banned.name"}
		}
	}
	for _, n := range company {
		if n = strings.ToLower(n); len([]rune(n)) >= minBannedName && strings.Contains(strings.Map(unleet, lower), n) {
			return &templates.Msg{Key: "reset.err.banned.company"}
		}
	}
	return nil
}

// unleet undoes the usual look-alike swaps: P@ssw0rd is password.
func unleet(r rune) rune {
	switch r {
	case '@', '4':
		return 'a'
	case '0':
		return 'o'
	case '1', '!':
		return 'i'
	case '3':
		return 'e'
	case '$', '5':
		return 's'
	case '7':
		return 't'
	}
	return r
}

// CompanyNames are the words of a base DN and mail domains that name the
// company ("DC=example,DC=com" and "it@example.com" give "example"), for
// Deps.Banned; the top-level domains and short words are left out.
func CompanyNames(baseDN string, domains ...string) []string {
	var words []string
	for _, rdn := range strings.Split(baseDN, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(rdn), "="); ok && strings.EqualFold(k, "dc") {
			words = append(words, v)
		}
	}
	if len(words) > 0 {
		words = words[:len(words)-1] // the top-level domain
	}
	for _, d := range domains {
		_, host, _ := strings.Cut(d, "@")
		host = strings.Trim(host, "<> ")
		if parts := strings.Split(host, "."); len(parts) > 1 {
			words = append(words, parts[:len(parts)-1]...)
		}
	}
	var out []string
	for _, w := range words {
		if w = strings.ToLower(w); len(w) >= minBannedName && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
