package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// Axe finds what a page breaks (an image without a text, an unlabelled
// field, no lang) and nothing on a clean page, at both viewports.
func TestAxe(t *testing.T) {
	pages := map[string]string{
		"/bad": `<!doctype html><html><head><title>x</title></head><body><main><img src="/x.png"><input type="text"></main></body></html>`,
		"/good": `<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>Good</title></head><body><main><h1>Good</h1>` +
			`<label for="f">Name</label><input id="f" type="text"></main></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	ctx := New(t)
	for _, v := range Viewports {
		SetViewport(t, ctx, v)
		Open(t, ctx, srv.URL+"/bad")
		got := map[string]bool{}
		for _, v := range Axe(t, ctx) {
			got[v.ID] = true
		}
		for _, want := range []string{"image-alt", "label", "html-has-lang"} {
			if !got[want] {
				t.Errorf("%s: /bad: no %q violation in %v", v.Name, want, got)
			}
		}
		Open(t, ctx, srv.URL+"/good")
		if vs := Axe(t, ctx); len(vs) != 0 {
			t.Errorf("%s: /good: %d violations: %v", v.Name, len(vs), vs)
		}
		if w := Eval(t, ctx, `String(window.innerWidth)`); w != strconv.FormatInt(v.Width, 10) {
			t.Errorf("%s: window width %s, want %d", v.Name, w, v.Width)
		}
	}
}
