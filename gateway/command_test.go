package gateway

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	reset := Command{Kind: Reset}
	code := Command{Kind: Reset, Code: "123456"}
	unknown := Command{}

	tests := []struct {
		name string
		body string
		want Command
	}{
		// RESET, every presentation.
		{"upper", "RESET", reset},
		{"lower", "reset", reset},
		{"title", "Reset", reset},
		{"mixed", "rEsEt", reset},
		{"spaces around", "   reset   ", reset},
		{"newline tab", "\n\treset\r\n", reset},
		{"bang", "reset!", reset},
		{"dot", "Reset.", reset},
		{"stars", "*RESET*", reset},
		{"guillemets", "«reset»", reset},
		{"quotes", `"reset"`, reset},
		{"curly quotes", "“Reset”", reset},
		{"repeated punctuation", "RESET!!!???", reset},
		{"emoji after", "reset 🙏", reset},
		{"emoji around", "🔑RESET🔑", reset},
		{"emoji with skin tone", "👍🏽 reset", reset},
		{"zwj emoji", "reset 👩‍💻", reset},
		{"zero-width space inside", "re\u200bset", reset},
		{"zero-width around", "\u200b\u200dRESET\ufeff", reset},
		{"soft hyphen inside", "RE\u00adSET", reset},
		{"full-width", "ＲＥＳＥＴ", reset},
		{"full-width lower", "ｒｅｓｅｔ", reset},
		{"accented letters", "RÉSÉT", reset},
		{"nbsp", "\u00a0reset\u00a0", reset},
		{"ideographic space", "\u3000reset\u3000", reset},
		{"french reset", "REINITIALISER", reset},
		{"french reset accented", "Réinitialiser", reset},
		{"french reset decomposed", "Re\u0301initialiser", reset},

		// RESET with the authenticator code.
		{"code", "RESET 123456", code},
		{"code lower", "reset 123456", code},
		{"code grouped", "reset 123 456", code},
		{"code colon", "RESET:123456", code},
		{"code glued", "reset123456", code},
		{"code dash", "RESET 123-456", code},
		{"code many spaces", "  RESET    123456  ", code},
		{"code newline", "RESET\n123456", code},
		{"code punctuation", "Reset: 123456.", code},
		{"code full-width digits", "RESET １２３４５６", code},
		{"code pairs", "reset 12 34 56", code},
		{"code keycap emoji", "RESET 1\ufe0f\u20e32\ufe0f\u20e33\ufe0f\u20e34\ufe0f\u20e35\ufe0f\u20e36\ufe0f\u20e3", code},
		{"code french", "réinitialiser 123456", code},
		{"code leading zeros", "RESET 000000", Command{Kind: Reset, Code: "000000"}},
		{"code 5 digits", "RESET 12345", unknown},
		{"code 7 digits", "RESET 1234567", unknown},
		{"code 6+1 groups", "RESET 123456 7", unknown},
		{"code with letter", "RESET 12345a", unknown},
		{"code arabic-indic digits", "RESET ١٢٣٤٥٦", unknown},
		{"code then words", "RESET 123456 thanks", unknown},
		{"code before reset", "123456 RESET", unknown},

		// RESET followed by something that is not a code.
		{"reset sentence", "reset my password please", unknown},
		{"reset twice", "RESET RESET", unknown},
		{"polite prefix", "please reset", unknown},
		{"typo", "RESTE", unknown},
		{"prefix word", "resets", unknown},
		{"cyrillic lookalike", "RЕSET", unknown},

		// Other commands.
		{"unlock", "UNLOCK", Command{Kind: Unlock}},
		{"unlock lower punct", "unlock.", Command{Kind: Unlock}},
		{"debloquer", "DEBLOQUER", Command{Kind: Unlock}},
		{"débloquer", "Débloquer", Command{Kind: Unlock}},
		{"DÉBLOQUER", "DÉBLOQUER !", Command{Kind: Unlock}},
		{"unlock with code", "UNLOCK 123456", unknown},
		{"status", "status", Command{Kind: Status}},
		{"statut", "Statut ?", Command{Kind: Status}},
		{"help", "HELP", Command{Kind: Help}},
		{"help question", "help?", Command{Kind: Help}},
		{"info", "Info", Command{Kind: Help}},
		{"aide", "AIDE", Command{Kind: Help}},
		{"turkish dotted info", "İNFO", Command{Kind: Help}},
		{"turkish dotless info", "ınfo", Command{Kind: Help}},
		{"not me", "NOT ME", Command{Kind: NotMe}},
		{"not me lower", "not me", Command{Kind: NotMe}},
		{"notme", "NOTME", Command{Kind: NotMe}},
		{"not-me", "Not-me!", Command{Kind: NotMe}},
		{"not me spaced", "  not \n  me ", Command{Kind: NotMe}},
		{"pas moi", "PAS MOI", Command{Kind: NotMe}},
		{"pas moi lower", "pas moi !", Command{Kind: NotMe}},
		{"not me sentence", "it was not me", unknown},

		// Carrier keywords.
		{"stop", "STOP", Command{Kind: Stop}},
		{"stop lower", "stop", Command{Kind: Stop}},
		{"stopall", "STOPALL", Command{Kind: Stop}},
		{"stop all", "stop all", Command{Kind: Stop}},
		{"unsubscribe", "Unsubscribe", Command{Kind: Stop}},
		{"cancel", "CANCEL", Command{Kind: Stop}},
		{"end", "end", Command{Kind: Stop}},
		{"quit", "QUIT", Command{Kind: Stop}},
		{"optout", "OPTOUT", Command{Kind: Stop}},
		{"revoke", "revoke", Command{Kind: Stop}},
		{"arret", "ARRET", Command{Kind: Stop}},
		{"arrêt", "Arrêt", Command{Kind: Stop}},
		{"ARRÊT", "ARRÊT", Command{Kind: Stop}},
		{"stop sentence", "stop texting me", unknown},
		{"start", "START", Command{Kind: Start}},
		{"yes", "yes", Command{Kind: Start}},
		{"unstop", "UNSTOP", Command{Kind: Start}},

		// Nothing usable.
		{"empty", "", unknown},
		{"spaces only", "     ", unknown},
		{"whitespace only", " \t\r\n\u00a0\u3000 ", unknown},
		{"zero-width only", "\u200b\u200c\u200d\ufeff", unknown},
		{"punctuation only", "?!.", unknown},
		{"emoji only", "🙏🔑", unknown},
		{"code only", "123456", unknown},
		{"hello", "hello", unknown},
		{"nul byte", "\x00", unknown},
		{"invalid utf-8", "RESET\xff", unknown},
		{"invalid utf-8 alone", "\xc3\x28", unknown},
		{"truncated utf-8", "reset \xe2\x82", unknown},
		{"surrogate half", "reset \xed\xa0\x80", unknown},
		{"too long", "RESET" + strings.Repeat(" ", maxBodyRunes), unknown},
		{"just long enough", "RESET" + strings.Repeat(" ", maxBodyRunes-5), reset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCommand(tt.body); got != tt.want {
				t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestCommandKindString(t *testing.T) {
	want := map[CommandKind]string{
		Unknown: "unknown",
		Reset:   "reset",
		Unlock:  "unlock",
		Status:  "status",
		Help:    "help",
		Stop:    "stop",
		Start:   "start",
		NotMe:   "not_me",
	}
	for k, s := range want {
		if got := k.String(); got != s {
			t.Errorf("CommandKind(%d).String() = %q, want %q", int(k), got, s)
		}
	}
	if got := CommandKind(99).String(); got != "CommandKind(99)" {
		t.Errorf("out of range: got %q", got)
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"RESET", "reset 123456", "RESET:123 456", "réinitialiser 123456",
		"ＲＥＳＥＴ １２３４５６", "re\u200bset", "NOT ME", "pas moi", "ARRÊT",
		"🔑reset🙏", "RESET 12345", "RESET\xff", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got := ParseCommand(body)
		if got.Kind < Unknown || got.Kind > NotMe {
			t.Fatalf("ParseCommand(%q): kind %d out of range", body, got.Kind)
		}
		if got.Code == "" {
			return
		}
		if got.Kind != Reset {
			t.Fatalf("ParseCommand(%q) = %+v: code on a non-reset command", body, got)
		}
		if len(got.Code) != codeDigits || !isASCIIDigits(got.Code) {
			t.Fatalf("ParseCommand(%q): code %q is not %d ASCII digits", body, got.Code, codeDigits)
		}
	})
}
