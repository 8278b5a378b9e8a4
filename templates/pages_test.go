package templates

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// pageFS copies the embedded pages so a test can break one thing.
func pageFS(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(pageFiles, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(pageFiles, name)
		m[name] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadPagesEmbedded(t *testing.T) {
	p, err := LoadPages()
	if err != nil {
		t.Fatalf("LoadPages: %v", err)
	}
	if len(p.tmpl) != len(pageNames)+len(adminPageNames)+len(demoPageNames) {
		t.Fatalf("%d pages parsed, want %d", len(p.tmpl), len(pageNames)+len(adminPageNames)+len(demoPageNames))
	}
	if got := p.text.Languages(); len(got) != 2 || got[0] != "en" || got[1] != "fr" {
		t.Fatalf("page languages %v", got)
	}
	for _, lang := range []string{"en", "fr"} {
		if p.Text(lang, "lang.name", nil) == "" || strings.HasPrefix(p.Text(lang, "lang.name", nil), "[missing") {
			t.Errorf("%s has no name", lang)
		}
	}
	if p.Text("fr", "err.new_link", nil) == p.Text("en", "err.new_link", nil) {
		t.Error("French and English texts are the same")
	}
	css, err := fs.ReadFile(p.Static(), "site.css")
	if err != nil || !bytes.Contains(css, []byte(":focus-visible")) {
		t.Fatalf("site.css: %v", err)
	}
}

func TestLoadPagesFailsOnEveryProblem(t *testing.T) {
	tests := []struct {
		name    string
		breakFS func(fstest.MapFS)
		want    []string
	}{
		{"missing page", func(m fstest.MapFS) { delete(m, "pages/verify.html") }, []string{`page "verify"`}},
		{"missing layout", func(m fstest.MapFS) { delete(m, "pages/layout.html") }, []string{"layout"}},
		{"broken template", func(m fstest.MapFS) { m["pages/done.html"].Data = []byte(`{{define "main"}}{{.Data.Phone}`) },
			[]string{"pages/done.html"}},
		{"no main block", func(m fstest.MapFS) { m["pages/done.html"].Data = []byte(`{{define "title"}}x{{end}}`) },
			[]string{"pages/done.html", `"main"`}},
		{"unknown text", func(m fstest.MapFS) {
			m["pages/app.html"].Data = append(m["pages/app.html"].Data, []byte(`{{define "x"}}{{.T "app.nope"}}{{end}}`)...)
		}, []string{"pages/app.html", `"app.nope"`}},
		{"text missing in French", func(m fstest.MapFS) {
			m["pages/text_en.json"].Data = bytes.Replace(m["pages/text_en.json"].Data, []byte(`{`), []byte(`{"extra.key": "Extra",`), 1)
		}, []string{`"extra.key"`, `missing in "fr"`}},
		{"placeholders differ", func(m fstest.MapFS) {
			m["pages/text_fr.json"].Data = bytes.Replace(m["pages/text_fr.json"].Data, []byte("{phone}"), []byte("{numero}"), 1)
		}, []string{"placeholders differ"}},
		{"missing language", func(m fstest.MapFS) { delete(m, "pages/text_fr.json") }, []string{"text_fr.json"}},
		{"missing stylesheet", func(m fstest.MapFS) { delete(m, "static/site.css") }, []string{"site.css"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pageFS(t)
			if _, err := loadPages(m); err != nil {
				t.Fatalf("the unbroken copy fails: %v", err)
			}
			tt.breakFS(m)
			_, err := loadPages(m)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRender(t *testing.T) {
	p, err := LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	type data struct {
		CSRF, Base, Back, Name, Phone, Return, RequestID string
		ResetLink                                        bool
	}
	var buf bytes.Buffer
	if err := p.Render(&buf, PageDone, "fr-CA", data{Base: "/enroll/x", Phone: "+33612345678"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`<html lang="fr">`, p.Text("fr", "done.title", nil), `lang="en">English</button>`, `href="/static/site.css?v=`} {
		if !strings.Contains(out, want) {
			t.Errorf("done page lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := p.Render(&buf, PageDone, "de", data{}); err != nil || !strings.Contains(buf.String(), `<html lang="en">`) {
		t.Errorf("unknown language: %v, want the English page", err)
	}
	buf.Reset()
	if err := p.Render(&buf, "nope", "en", data{}); err == nil {
		t.Error("unknown page rendered")
	}
	// A template failing half-way writes nothing.
	if err := p.Render(&buf, PageVerify, "en", data{}); err == nil || buf.Len() != 0 {
		t.Errorf("render with missing fields: err %v, %d bytes written", err, buf.Len())
	}
}
