package templates

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// The one list of languages: everything that names languages derives from
// Languages, and every per-language table covers exactly those.
func TestLanguagesIsTheOneList(t *testing.T) {
	langs := Languages()
	if !slices.Equal(langs, []string{"en", "fr"}) {
		t.Fatalf("Languages() = %v, want [en fr]", langs)
	}
	if langs[0] != DefaultLanguage {
		t.Errorf("Languages()[0] = %q, want DefaultLanguage %q first", langs[0], DefaultLanguage)
	}
	langs[0] = "xx"
	if Languages()[0] != DefaultLanguage {
		t.Fatal("Languages() returned the list itself: a caller changed it")
	}
	for _, l := range Languages() {
		if !SupportedLanguage(l) {
			t.Errorf("SupportedLanguage(%q) = false", l)
		}
		if got := NormalizeLanguage(l); got != l {
			t.Errorf("NormalizeLanguage(%q) = %q", l, got)
		}
	}
	for _, l := range []string{"", "de", "FR", "fr-CA", "en ", "english"} {
		if SupportedLanguage(l) {
			t.Errorf("SupportedLanguage(%q) = true, want exact codes only", l)
		}
	}
	if got := slices.Sorted(maps.Keys(monthNames)); !slices.Equal(got, slices.Sorted(slices.Values(Languages()))) {
		t.Errorf("month names for %v, want exactly %v", got, Languages())
	}

	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Languages(), Languages()) {
		t.Errorf("SMS catalogs %v, want %v", c.Languages(), Languages())
	}
	p, err := LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.text.Languages(), Languages()) {
		t.Errorf("page texts %v, want %v", p.text.Languages(), Languages())
	}
	m, err := LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(m.mails)); !slices.Equal(got, Languages()) {
		t.Errorf("mails in %v, want %v", got, Languages())
	}

	// The choice of language on a page lists every language, named in itself.
	v := view{p: p, Lang: "fr"}
	want := []Language{{"en", "English"}, {"fr", "Français"}}
	if got := v.Languages(); !slices.Equal(got, want) {
		t.Errorf("view.Languages() = %v, want %v", got, want)
	}
	if got := v.OtherLanguages(); !slices.Equal(got, want[:1]) {
		t.Errorf("view.OtherLanguages() in fr = %v, want %v", got, want[:1])
	}

	// An unsupported language falls back to the default's date format.
	d := time.Date(2026, time.March, 1, 10, 42, 0, 0, time.UTC)
	if got, want := FormatDate("de", d), FormatDate(DefaultLanguage, d); got != want {
		t.Errorf("FormatDate(de) = %q, want the default language's %q", got, want)
	}
}
