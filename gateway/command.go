package gateway

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// CommandKind is what an inbound SMS asks for. The zero value is Unknown, so a
// Command nobody filled in never triggers anything.
type CommandKind int

// The commands an employee can text. Unknown covers everything else and gets
// the one generic reply.
const (
	Unknown CommandKind = iota
	Reset
	Unlock
	Status
	Help
	Stop
	Start
	NotMe
)

// String returns the lowercase name used in the audit trail and logs.
func (k CommandKind) String() string {
	switch k {
	case Unknown:
		return "unknown"
	case Reset:
		return "reset"
	case Unlock:
		return "unlock"
	case Status:
		return "status"
	case Help:
		return "help"
	case Stop:
		return "stop"
	case Start:
		return "start"
	case NotMe:
		return "not_me"
	}
	return "CommandKind(" + strconv.Itoa(int(k)) + ")"
}

// Command is a parsed inbound SMS.
type Command struct {
	Kind CommandKind
	// Code is the 6-digit authenticator code texted after RESET, or "" when
	// none was given. It is only ever set for Kind Reset.
	Code string
}

// maxBodyRunes bounds the work done on a body: ten concatenated SMS segments.
// Anything longer is not a command typed by a person.
const maxBodyRunes = 160 * 10

// codeDigits is the length of an authenticator (TOTP) code.
const codeDigits = 6

// phrases maps a whole normalized message (words joined by one space) to its
// command. Carrier keywords follow Twilio's default opt-out, opt-in and help
// lists; French ones follow the Canadian carriers (ARRET, AIDE).
var phrases = map[string]CommandKind{
	"unlock":    Unlock,
	"debloquer": Unlock,

	"status": Status,
	"statut": Status,

	"help": Help,
	"info": Help,
	"aide": Help,

	"stop":        Stop,
	"stopall":     Stop,
	"stop all":    Stop,
	"unsubscribe": Stop,
	"cancel":      Stop,
	"end":         Stop,
	"quit":        Stop,
	"optout":      Stop,
	"opt out":     Stop,
	"revoke":      Stop,
	"arret":       Stop,

	"start":  Start,
	"yes":    Start,
	"unstop": Start,

	"not me":  NotMe,
	"notme":   NotMe,
	"pas moi": NotMe,
	"pasmoi":  NotMe,
}

// phraseLanguages is the language of the command words that belong to one
// catalog's language only (README: the commands, sms.help): a DEBLOQUER
// is French, an UNLOCK English. RESET, STOP and START are both languages'
// and have none here.
var phraseLanguages = map[string]string{
	"reinitialiser": "fr", "debloquer": "fr", "statut": "fr", "aide": "fr", "arret": "fr",
	"pas moi": "fr", "pasmoi": "fr",

	"unlock": "en", "status": "en", "help": "en", "info": "en", "not me": "en", "notme": "en",
	"stopall": "en", "stop all": "en", "unsubscribe": "en", "cancel": "en", "end": "en", "quit": "en",
	"optout": "en", "opt out": "en", "revoke": "en", "yes": "en", "unstop": "en",
}

// CommandLanguage is the language of body's command word ("en" or "fr"),
// read as ParseCommand reads it ("Débloquer!" is French, "reinitialiser
// 123456" too), or "" when body is no command or one whose word both
// languages use (RESET, STOP, START). It is what the webhook answers in
// when it cannot read the sender's language from the store.
func CommandLanguage(body string) string {
	if ParseCommand(body).Kind == Unknown {
		return ""
	}
	words := commandWords(body)
	if resetWords[words[0]] { // the code after it has no language
		return phraseLanguages[words[0]]
	}
	return phraseLanguages[strings.Join(words, " ")]
}

// resetWords are the words that start a reset; they may be followed by the
// authenticator code.
var resetWords = map[string]bool{
	"reset":         true,
	"reinitialiser": true,
}

// ParseCommand reads an inbound SMS body. It is deliberately forgiving about
// presentation and strict about content:
//
//   - case, accents (DÉBLOQUER), full-width letters, zero-width characters,
//     whitespace, punctuation and emoji around or between the words are
//     ignored, so "  *Reset!* 🙏" is a reset;
//   - the message must be exactly one command: "stop texting me" or
//     "reset my password please" are Unknown. A typo or a sentence never
//     triggers a reset, an unlock or an opt-out with surprising text;
//   - RESET may be followed by the 6-digit authenticator code, in one piece or
//     in digit groups ("RESET 123456", "reset 123 456", "RESET:123456",
//     "reset123456"). Anything else after RESET, including a code of the wrong
//     length, makes the message Unknown rather than a reset without code;
//   - invalid UTF-8 and bodies over 1600 runes are Unknown.
//
// ParseCommand never panics and does no I/O.
func ParseCommand(body string) Command {
	if !utf8.ValidString(body) || utf8.RuneCountInString(body) > maxBodyRunes {
		return Command{}
	}
	words := commandWords(body)
	if len(words) == 0 {
		return Command{}
	}
	if resetWords[words[0]] {
		return parseReset(words[1:])
	}
	if kind, ok := phrases[strings.Join(words, " ")]; ok {
		return Command{Kind: kind}
	}
	return Command{}
}

// parseReset reads what follows RESET: nothing, or digit groups that together
// make exactly one 6-digit code.
func parseReset(rest []string) Command {
	if len(rest) == 0 {
		return Command{Kind: Reset}
	}
	var code strings.Builder
	for _, w := range rest {
		if !isASCIIDigits(w) {
			return Command{}
		}
		code.WriteString(w)
		if code.Len() > codeDigits {
			return Command{}
		}
	}
	if code.Len() != codeDigits {
		return Command{}
	}
	return Command{Kind: Reset, Code: code.String()}
}

// commandWords splits a body into lowercase words of letters or of digits.
//
// NFKD maps full-width and other compatibility forms to plain ones (Ｒ→R,
// １→1, ﬁ→fi) and splits accented letters into base letter plus combining
// mark; the marks are then dropped (É→E). Format characters (zero-width
// space and joiners, BOM, soft hyphen) are dropped too, so they neither split
// nor join words. Every other rune that is not a letter or a digit (space,
// punctuation, symbols, emoji, controls) separates words, and a word also
// ends where letters turn into digits or back, so "reset123456" reads as
// "reset 123456".
func commandWords(body string) []string {
	var (
		words []string
		cur   strings.Builder
		class runeClass
	)
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
		class = classSeparator
	}
	for _, r := range norm.NFKD.String(body) {
		c := classify(r)
		switch c {
		case classIgnored:
			continue
		case classSeparator:
			flush()
			continue
		}
		if c != class {
			flush()
		}
		class = c
		cur.WriteRune(foldRune(r))
	}
	flush()
	return words
}

type runeClass int

const (
	classSeparator runeClass = iota
	classIgnored
	classLetter
	classDigit
)

func classify(r rune) runeClass {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsDigit(r):
		return classDigit
	case unicode.Is(unicode.Mark, r), unicode.Is(unicode.Cf, r):
		return classIgnored
	}
	return classSeparator
}

// foldRune lowercases a letter. The Turkish dotless ı becomes i so that a
// phone set to Turkish still sends a recognizable "info".
func foldRune(r rune) rune {
	if r == 'ı' {
		return 'i'
	}
	return unicode.ToLower(r)
}

func isASCIIDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
