package templates

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
)

// DefaultLanguage is the language every catalog must have and the one Text
// falls back to.
const DefaultLanguage = "en"

// supportedLanguages is the one list of the product's languages, in the
// order Languages reports them. The embedded catalogs, pages and mails must
// be exactly these; every other place that validates a language or falls
// back to one derives from it (Languages, SupportedLanguage,
// NormalizeLanguage, DefaultLanguage).
var supportedLanguages = []string{"en", "fr"}

// Languages returns the product's language codes (en, fr), DefaultLanguage
// first: the values the `language` setting, the language switches and an
// enrollment's language may take.
func Languages() []string { return slices.Clone(supportedLanguages) }

// SupportedLanguage reports whether lang is exactly one of the product's
// language codes (Languages).
func SupportedLanguage(lang string) bool { return slices.Contains(supportedLanguages, lang) }

//go:embed messages_*.json
var messageFiles embed.FS

// Catalog holds the user-facing messages (SMS texts and words used in them)
// of every language, keyed by language then message key. It is immutable
// once loaded and safe for concurrent use.
type Catalog struct {
	messages map[string]map[string]string
}

// LoadCatalog parses the embedded message catalogs. It fails, naming every
// offending key, when a language lacks a key another language has, when the
// placeholders of a key differ between languages, or when a text has a
// malformed placeholder. Call it once at start-up.
func LoadCatalog() (*Catalog, error) {
	return loadCatalog(messageFiles)
}

// loadCatalog reads messages_<lang>.json files from fsys.
func loadCatalog(fsys fs.FS) (*Catalog, error) {
	names, err := fs.Glob(fsys, "messages_*.json")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	c := &Catalog{messages: make(map[string]map[string]string)}
	var errs []error
	for _, name := range names {
		lang := strings.TrimSuffix(strings.TrimPrefix(path.Base(name), "messages_"), ".json")
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", name, err))
			continue
		}
		msgs, err := parseMessages(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", name, err))
			continue
		}
		c.messages[lang] = msgs
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, lang := range supportedLanguages {
		if _, ok := c.messages[lang]; !ok {
			errs = append(errs, fmt.Errorf("templates: no message catalog for language %q (messages_%s.json)", lang, lang))
		}
	}
	for lang := range c.messages {
		if !slices.Contains(supportedLanguages, lang) {
			errs = append(errs, fmt.Errorf("templates: messages_%s.json: language %q is not supported", lang, lang))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseMessages decodes one flat JSON object of key to text. Unlike
// json.Unmarshal it rejects duplicate keys, which would otherwise silently
// keep the last text.
func parseMessages(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("want one JSON object of message key to text")
	}
	msgs := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("message key %v is not a string", tok)
		}
		var text string
		if err := dec.Decode(&text); err != nil {
			return nil, fmt.Errorf("message %q: text must be a string: %w", key, err)
		}
		if _, dup := msgs[key]; dup {
			return nil, fmt.Errorf("message %q: defined twice", key)
		}
		if strings.TrimSpace(text) == "" {
			return nil, fmt.Errorf("message %q: empty text", key)
		}
		msgs[key] = text
	}
	if _, err := dec.Token(); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return msgs, nil
}

// check verifies that every key exists in every language with the same
// placeholders, and that every brace in a text belongs to a placeholder.
func (c *Catalog) check() error {
	keys := make(map[string]bool)
	for _, msgs := range c.messages {
		for k := range msgs {
			keys[k] = true
		}
	}
	var errs []error
	for _, key := range sortedKeys(keys) {
		var (
			refLang string
			refSet  []string
		)
		for _, lang := range c.Languages() {
			text, ok := c.messages[lang][key]
			if !ok {
				errs = append(errs, fmt.Errorf("templates: message %q: missing in %q", key, lang))
				continue
			}
			names, err := placeholders(text)
			if err != nil {
				errs = append(errs, fmt.Errorf("templates: message %q (%s): %w", key, lang, err))
				continue
			}
			if refLang == "" {
				refLang, refSet = lang, names
				continue
			}
			if !slices.Equal(refSet, names) {
				errs = append(errs, fmt.Errorf("templates: message %q: placeholders differ: %s has %s, %s has %s",
					key, refLang, braceList(refSet), lang, braceList(names)))
			}
		}
	}
	return errors.Join(errs...)
}

// Languages returns the catalog's languages, sorted.
func (c *Catalog) Languages() []string {
	return slices.Sorted(maps.Keys(c.messages))
}

// Text returns message key in lang with its {name} placeholders replaced by
// args. lang may be any tag NormalizeLanguage understands; an unknown or empty
// one falls back to English. Values are inserted as they are and never read
// as placeholders themselves. Text never panics: an unknown key gives
// "[missing message: key]" and a placeholder without an argument is shown as
// "{name?}", so a wiring mistake is visible in tests and the demo outbox.
func (c *Catalog) Text(lang, key string, args map[string]string) string {
	msgs, ok := c.messages[NormalizeLanguage(lang)]
	if !ok {
		msgs = c.messages[DefaultLanguage]
	}
	text, ok := msgs[key]
	if !ok {
		return "[missing message: " + key + "]"
	}
	if !strings.Contains(text, "{") {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 32)
	for {
		start := strings.IndexByte(text, '{')
		if start < 0 {
			b.WriteString(text)
			break
		}
		end := strings.IndexByte(text[start:], '}')
		if end < 0 {
			b.WriteString(text)
			break
		}
		end += start
		name := text[start+1 : end]
		b.WriteString(text[:start])
		switch value, ok := args[name]; {
		case !isPlaceholderName(name):
			b.WriteString(text[start : end+1])
		case ok:
			b.WriteString(value)
		default:
			b.WriteString("{" + name + "?}")
		}
		text = text[end+1:]
	}
	return b.String()
}

// PluralKey is the key of the form of key that counts n in lang: key+".one"
// or key+".other". A catalog text that counts has both forms, each with
// its {n}. English takes the singular for 1 only; French for 0 and 1
// ("0 utilisateur", "1 utilisateur", "2 utilisateurs").
func PluralKey(lang, key string, n int) string {
	one := n == 1
	if NormalizeLanguage(lang) == "fr" {
		one = n == 0 || n == 1
	}
	if one {
		return key + ".one"
	}
	return key + ".other"
}

// Plural returns the form of key that counts n in lang, with {n} and args
// filled in.
func (c *Catalog) Plural(lang, key string, n int, args map[string]string) string {
	all := map[string]string{"n": strconv.Itoa(n)}
	for k, v := range args {
		all[k] = v
	}
	return c.Text(lang, PluralKey(lang, key, n), all)
}

// NormalizeLanguage maps a language tag ("fr-CA", "FR", "fr_FR") or an
// Accept-Language header value ("fr-CH, fr;q=0.9, en;q=0.8") to a supported
// language code, "en" or "fr". It returns "" when nothing supported is asked
// for, so the caller applies its configured default.
func NormalizeLanguage(tag string) string {
	type choice struct {
		lang string
		q    float64
	}
	var choices []choice
	for _, part := range strings.Split(tag, ",") {
		name, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				f = 0
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.TrimSpace(name), "-")
		primary, _, _ = strings.Cut(primary, "_")
		primary = strings.ToLower(primary)
		if q > 0 && slices.Contains(supportedLanguages, primary) {
			choices = append(choices, choice{primary, q})
		}
	}
	// Stable: among equal weights the first listed wins.
	slices.SortStableFunc(choices, func(a, b choice) int { return cmp.Compare(b.q, a.q) })
	if len(choices) == 0 {
		return ""
	}
	return choices[0].lang
}

// placeholders returns the sorted, distinct placeholder names of text, or an
// error for a brace that does not open or close a {name} placeholder.
func placeholders(text string) ([]string, error) {
	seen := make(map[string]bool)
	rest := text
	for {
		start := strings.IndexAny(rest, "{}")
		if start < 0 {
			break
		}
		if rest[start] == '}' {
			return nil, errors.New("unmatched }")
		}
		end := strings.IndexByte(rest[start:], '}')
		if end < 0 {
			return nil, errors.New("unclosed {")
		}
		end += start
		name := rest[start+1 : end]
		if !isPlaceholderName(name) {
			return nil, fmt.Errorf("bad placeholder {%s}: want {lowercase_name}", name)
		}
		seen[name] = true
		rest = rest[end+1:]
	}
	return sortedKeys(seen), nil
}

// isPlaceholderName accepts lowercase ASCII letters, digits and underscores,
// starting with a letter.
func isPlaceholderName(name string) bool {
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}

func braceList(names []string) string {
	if len(names) == 0 {
		return "no placeholders"
	}
	return "{" + strings.Join(names, "}, {") + "}"
}
