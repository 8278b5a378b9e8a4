package templates

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"unicode/utf8"
)

// wantMessages is the contract with the code that sends messages: every key
// it relies on and the arguments it must pass.
var wantMessages = map[string][]string{
	"sms.reset.ok":             {"password", "username"},
	"sms.reset.ok_must_change": {"password", "username"},
	"sms.reset.rate_limited":   {"minutes"},
	"sms.reset.no_app":         {},
	"sms.reset.need_code":      nil,
	"sms.reset.bad_code":       nil,
	"sms.reset.failed":         nil,
	"sms.reset.sim_swap":       nil,
	"sms.reset.line_type":      nil,
	"sms.reset.lookup_down":    nil,
	"sms.try_later":            nil,
	"sms.frozen":               nil,
	"sms.unlock.ok":            {"username"},
	"sms.unlock.not_locked":    {"username"},
	"sms.status":               {"locked", "must_change", "username"},
	"sms.help":                 nil,
	"sms.generic":              nil,
	"sms.stop":                 nil,
	"sms.start":                nil,
	"sms.enrolled":             nil,
	"sms.notme.ok":             nil,
	"sms.lockout.alert":        {"time", "username"},
	"sms.reminder.expiry":      {"days", "username"},
	"sms.reminder.expiry_1day": {"username"},
	"sms.code":                 {"code", "minutes"},
	"voice.code":               {"digits"},
	"sms.deactivated":          {"username"},
	"sms.phone.changed_away":   {"username"},
	"sms.phone.changed_to":     {"username"},
	"word.yes":                 nil,
	"word.no":                  nil,
}

func loadTestCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := LoadCatalog()
	if err != nil {
		t.Fatalf("LoadCatalog: %v", err)
	}
	return c
}

func TestLoadCatalogEmbedded(t *testing.T) {
	c := loadTestCatalog(t)
	if got := c.Languages(); !slices.Equal(got, []string{"en", "fr"}) {
		t.Errorf("Languages() = %v, want [en fr]", got)
	}
	if !slices.Equal(c.Languages(), supportedLanguages) {
		t.Errorf("embedded languages %v differ from supportedLanguages %v", c.Languages(), supportedLanguages)
	}
	for key, want := range wantMessages {
		for _, lang := range c.Languages() {
			text, ok := c.messages[lang][key]
			if !ok {
				t.Errorf("%s: message %q missing", lang, key)
				continue
			}
			got, err := placeholders(text)
			if err != nil {
				t.Errorf("%s %q: %v", lang, key, err)
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s %q: placeholders %v, want %v", lang, key, got, want)
			}
		}
	}
}

// typicalArgs fills every placeholder with a realistic value: a 20-character
// sAMAccountName is the longest AD allows.
func typicalArgs(c *Catalog, lang, username string) map[string]string {
	return map[string]string{
		"username":    username,
		"password":    "Kp7m-Rx4t-Wq9z",
		"minutes":     "40",
		"days":        "14",
		"time":        "10:42",
		"code":        "123456",
		"digits":      "1, 2, 3, 4, 5, 6",
		"locked":      c.Text(lang, "word.yes", nil),
		"must_change": c.Text(lang, "word.no", nil),
		"n":           "5",
	}
}

func TestSMSTextsFitOneGSM7Segment(t *testing.T) {
	c := loadTestCatalog(t)
	for _, lang := range c.Languages() {
		for _, key := range sortedKeys(keySet(c.messages[lang])) {
			for _, user := range []string{"jdoe", "jean.dupont", "abcdefghijklmnopqrst"} {
				text := c.Text(lang, key, typicalArgs(c, lang, user))
				n, ok := gsm7Septets(text)
				if !ok {
					t.Errorf("%s %q: not GSM-7 encodable (character %q): %q", lang, key, firstNonGSM7(text), text)
					continue
				}
				if strings.Contains(text, "?}") || strings.Contains(text, "[missing") {
					t.Errorf("%s %q: unfilled placeholder: %q", lang, key, text)
				}
				if n > 160 {
					t.Errorf("%s %q: %d septets with username %q, more than one SMS segment: %q", lang, key, n, user, text)
				}
				if user == "jean.dupont" {
					t.Logf("%s %-26s %3d septets", lang, key, n)
				}
			}
		}
	}
}

func TestResetOKShowsPasswordOnItsOwnLine(t *testing.T) {
	c := loadTestCatalog(t)
	const password = "Kp7m-Rx4t-Wq9z"
	for _, lang := range c.Languages() {
		for _, key := range []string{"sms.reset.ok", "sms.reset.ok_must_change"} {
			text := c.Text(lang, key, map[string]string{"username": "jdoe", "password": password})
			lines := strings.Split(text, "\n")
			if !slices.Contains(lines, password) {
				t.Errorf("%s %q: password is not alone on a line: %q", lang, key, text)
			}
			if strings.Count(text, password) != 1 {
				t.Errorf("%s %q: password should appear once: %q", lang, key, text)
			}
			if !strings.Contains(text, "jdoe") {
				t.Errorf("%s %q: username missing: %q", lang, key, text)
			}
		}
	}
	en := c.Text("en", "sms.reset.ok_must_change", map[string]string{"username": "jdoe", "password": password})
	if !strings.Contains(en, "You must change it at next logon.") || !strings.Contains(en, "Not you? Reply NOT ME.") {
		t.Errorf("en must-change text: %q", en)
	}
	if strings.Contains(c.Text("en", "sms.reset.ok", map[string]string{"username": "jdoe", "password": password}), "change it") {
		t.Error("en sms.reset.ok must not mention must-change")
	}
}

func TestContractTexts(t *testing.T) {
	c := loadTestCatalog(t)
	tests := []struct {
		lang, key string
		args      map[string]string
		want      string
	}{
		{"en", "sms.enrolled", nil, "You're enrolled. Text RESET to this number to reset your password."},
		{"en", "sms.lockout.alert", map[string]string{"username": "jdoe", "time": "10:42"},
			"ReplyReset: your account jdoe was locked at 10:42. Reply UNLOCK to unlock it, RESET for a new password, or NOT ME if this wasn't you."},
		{"en", "sms.status", map[string]string{"username": "jdoe", "locked": "no", "must_change": "yes"},
			"Account jdoe: enrolled with this number. Locked: no. Password must change: yes."},
		{"en", "sms.code", map[string]string{"code": "123456", "minutes": "40"},
			"Your ReplyReset verification code is 123456. It expires in 40 minutes."},
		{"fr", "sms.code", map[string]string{"code": "123456", "minutes": "40"},
			"Votre code de vérification ReplyReset est 123456. Il expire dans 40 minutes."},
		{"en", "word.yes", nil, "yes"},
		{"fr", "word.no", nil, "non"},
	}
	for _, tt := range tests {
		if got := c.Text(tt.lang, tt.key, tt.args); got != tt.want {
			t.Errorf("Text(%q, %q) = %q, want %q", tt.lang, tt.key, got, tt.want)
		}
	}
}

// TestGenericReplyRevealsNothing guards the no-enumeration rule at the text
// level: the generic and help replies take no argument, so nothing about the
// sender can leak into them.
func TestGenericReplyRevealsNothing(t *testing.T) {
	c := loadTestCatalog(t)
	for _, lang := range c.Languages() {
		for _, key := range []string{"sms.generic", "sms.help", "sms.stop", "sms.start"} {
			names, err := placeholders(c.messages[lang][key])
			if err != nil || len(names) != 0 {
				t.Errorf("%s %q: must have no placeholders, got %v %v", lang, key, names, err)
			}
		}
	}
}

func TestText(t *testing.T) {
	c := loadTestCatalog(t)
	args := map[string]string{"code": "123456", "minutes": "40"}
	en := c.Text("en", "sms.code", args)
	fr := c.Text("fr", "sms.code", args)
	if en == fr {
		t.Fatalf("en and fr texts are identical: %q", en)
	}
	for _, lang := range []string{"fr-CA", "FR", "fr_FR", "fr-CH, fr;q=0.9, en;q=0.8"} {
		if got := c.Text(lang, "sms.code", args); got != fr {
			t.Errorf("Text(%q) = %q, want the French text", lang, got)
		}
	}
	for _, lang := range []string{"", "de", "xx-YY", "*", "\xff"} {
		if got := c.Text(lang, "sms.code", args); got != en {
			t.Errorf("Text(%q) = %q, want the English fallback", lang, got)
		}
	}

	// A missing argument stays visible instead of vanishing or panicking.
	got := c.Text("en", "sms.code", map[string]string{"code": "123456"})
	if want := "It expires in {minutes?} minutes."; !strings.Contains(got, want) {
		t.Errorf("missing arg: got %q, want it to contain %q", got, want)
	}
	if got := c.Text("en", "sms.code", nil); !strings.Contains(got, "{code?}") {
		t.Errorf("nil args: got %q", got)
	}
	if got := c.Text("en", "no.such.key", nil); got != "[missing message: no.such.key]" {
		t.Errorf("unknown key: got %q", got)
	}

	// Values are inserted literally, never expanded again.
	got = c.Text("en", "sms.unlock.ok", map[string]string{"username": "{password}"})
	if !strings.Contains(got, "account {password} is unlocked") {
		t.Errorf("value re-expanded: %q", got)
	}
	// Extra arguments are ignored.
	if got := c.Text("en", "sms.generic", map[string]string{"username": "jdoe"}); strings.Contains(got, "jdoe") {
		t.Errorf("extra arg leaked: %q", got)
	}
}

func TestTextConcurrent(t *testing.T) {
	c := loadTestCatalog(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			lang := []string{"en", "fr"}[i%2]
			for range 100 {
				_ = c.Text(lang, "sms.lockout.alert", map[string]string{"username": "jdoe", "time": "10:42"})
			}
		})
	}
	wg.Wait()
}

func TestNormalizeLanguage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"en", "en"},
		{"fr", "fr"},
		{"FR", "fr"},
		{"Fr", "fr"},
		{"fr-CA", "fr"},
		{"fr_FR", "fr"},
		{"fr-Latn-CH", "fr"},
		{"en-US", "en"},
		{"en_GB", "en"},
		{" fr ", "fr"},
		{"fr-CH, fr;q=0.9, en;q=0.8", "fr"},
		{"en-US,en;q=0.9,fr;q=0.8", "en"},
		{"de-DE, de;q=0.9, fr;q=0.5, en;q=0.4", "fr"},
		{"en;q=0.5, fr;q=0.8", "fr"},
		{"fr;q=0, en", "en"},
		{"fr;q=0.000", ""},
		{"en;q=0.5, fr;q=0.5", "en"},
		{"fr ; q=0.7 , en ; q=0.6", "fr"},
		{"fr;q=abc, en;q=0.1", "en"},
		{"de, *;q=0.1", ""},
		{"*", ""},
		{"de", ""},
		{"french", ""},
		{"f", ""},
		{"", ""},
		{",,,;;;", ""},
		{"\xff\xfe", ""},
	}
	for _, tt := range tests {
		if got := NormalizeLanguage(tt.in); got != tt.want {
			t.Errorf("NormalizeLanguage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadCatalogRejectsBadCatalogs(t *testing.T) {
	good := `{"a.b": "Hello {name}.", "c": "Bye."}`
	tests := []struct {
		name    string
		en, fr  string
		noFR    bool
		extra   map[string]string
		wantErr []string
	}{
		{name: "valid", en: good, fr: `{"c": "Salut.", "a.b": "Bonjour {name}."}`},
		{name: "key missing in fr", en: good, fr: `{"a.b": "Bonjour {name}."}`,
			wantErr: []string{`"c"`, `missing in "fr"`}},
		{name: "key missing in en", en: `{"a.b": "Hello {name}."}`, fr: `{"c": "Salut.", "a.b": "Bonjour {name}."}`,
			wantErr: []string{`"c"`, `missing in "en"`}},
		{name: "placeholder renamed", en: good, fr: `{"c": "Salut.", "a.b": "Bonjour {nom}."}`,
			wantErr: []string{`"a.b"`, "placeholders differ", "{name}", "{nom}"}},
		{name: "placeholder dropped", en: good, fr: `{"c": "Salut {name}.", "a.b": "Bonjour."}`,
			wantErr: []string{`"a.b"`, `"c"`, "no placeholders"}},
		{name: "bad placeholder", en: good, fr: `{"c": "Salut.", "a.b": "Bonjour {Name}."}`,
			wantErr: []string{`"a.b"`, "{Name}"}},
		{name: "unclosed brace", en: good, fr: `{"c": "Salut {.", "a.b": "Bonjour {name}."}`,
			wantErr: []string{`"c"`, "unclosed"}},
		{name: "stray closing brace", en: good, fr: `{"c": "Salut }.", "a.b": "Bonjour {name}."}`,
			wantErr: []string{`"c"`, "unmatched"}},
		{name: "duplicate key", en: `{"c": "Bye.", "c": "Bye again.", "a.b": "Hello {name}."}`, fr: good,
			wantErr: []string{"messages_en.json", `"c"`, "defined twice"}},
		{name: "empty text", en: `{"c": " ", "a.b": "Hello {name}."}`, fr: good,
			wantErr: []string{`"c"`, "empty"}},
		{name: "not a string", en: `{"c": 3, "a.b": "Hello {name}."}`, fr: good,
			wantErr: []string{`"c"`, "string"}},
		{name: "not an object", en: `["c"]`, fr: good, wantErr: []string{"messages_en.json", "JSON object"}},
		{name: "trailing data", en: good + `{}`, fr: good, wantErr: []string{"messages_en.json", "after"}},
		{name: "broken json", en: `{"c": "Bye."`, fr: good, wantErr: []string{"messages_en.json"}},
		{name: "missing language", en: good, noFR: true, wantErr: []string{`"fr"`, "messages_fr.json"}},
		{name: "unsupported language", en: good, fr: good, extra: map[string]string{"messages_de.json": good},
			wantErr: []string{"messages_de.json", "not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"messages_en.json": {Data: []byte(tt.en)}}
			if !tt.noFR {
				fsys["messages_fr.json"] = &fstest.MapFile{Data: []byte(tt.fr)}
			}
			for name, data := range tt.extra {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			c, err := loadCatalog(fsys)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := c.Text("fr", "a.b", map[string]string{"name": "Ana"}); got != "Bonjour Ana." {
					t.Errorf("Text = %q", got)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error, got nil")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func keySet(m map[string]string) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// GSM 03.38 default alphabet (without the escape code) and its extension
// table, whose characters cost two septets.
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Extension = "\f^{}\\[~]|€"
)

// gsm7Septets returns the length of s in GSM-7 septets, and false when s has
// a character outside GSM-7 (the message would be sent as UCS-2, 70 per
// segment).
func gsm7Septets(s string) (int, bool) {
	if !utf8.ValidString(s) {
		return 0, false
	}
	n := 0
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			n++
		case strings.ContainsRune(gsm7Extension, r):
			n += 2
		default:
			return n, false
		}
	}
	return n, true
}

func firstNonGSM7(s string) string {
	for _, r := range s {
		if !strings.ContainsRune(gsm7Basic, r) && !strings.ContainsRune(gsm7Extension, r) {
			return string(r)
		}
	}
	return ""
}

func TestGSM7Septets(t *testing.T) {
	tests := []struct {
		in string
		n  int
		ok bool
	}{
		{"abc", 3, true},
		{"é è à", 5, true},
		{"€5", 3, true},
		{"ç", 0, false}, // only capital Ç is in the default alphabet
		{"ê", 0, false},
		{"’", 0, false},
		{"œ", 0, false},
	}
	for _, tt := range tests {
		n, ok := gsm7Septets(tt.in)
		if ok != tt.ok || (ok && n != tt.n) {
			t.Errorf("gsm7Septets(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
}
