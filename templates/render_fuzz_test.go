package templates

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// fuzzPageView has the fields of the enrollment pages' view (web.pageView)
// that the templates read.
type fuzzPageView struct {
	CSRF, Base, Back                                 string
	Name, Phone                                      string
	Methods                                          []string
	Method, ExpiresAt, CodeUntil, ResendAt, ResendIn string
	ResendMethods                                    []string
	Secret, QR, AppLink                              string
	Notice                                           *Msg
	Delivery                                         any
	Reload                                           bool
	Error                                            *Msg
	ErrorField                                       string
	AttemptsLeft                                     *Msg
	Title                                            Msg
	Next                                             *Msg
	Continue, ContinueText, RequestID, Return        string
	ResetLink                                        bool
}

// fuzzLoginView has the fields of the admin login page's view.
type fuzzLoginView struct {
	CSRF, Admin, Section string
	Sections             []string
	Back, Zone           string
	Notice, Error        *Msg
	Title                Msg
	RequestID            string
	Events               []struct{}
	Login                *struct{ Username, Next string }
}

// tagOpen matches the start of a tag, a comment or a processing instruction.
var tagOpen = regexp.MustCompile(`<[A-Za-z/!?]`)

// structure is what must not change when a value changes: the markup
// delimiters and quotes html/template never lets a value produce.
func structure(s string) [4]int {
	return [4]int{strings.Count(s, "<"), strings.Count(s, ">"), strings.Count(s, `"`), strings.Count(s, "'")}
}

// wantEscaped fails if out's markup differs from ref's (the same page with
// plain values) or if out holds a value with a tag in it raw.
func wantEscaped(t *testing.T, what, out, ref string, values ...string) {
	t.Helper()
	if structure(out) != structure(ref) {
		t.Fatalf("%s: the values %q changed the markup:\n%s", what, values, out)
	}
	for _, v := range values {
		// (The page's own markup may hold a short value such as "<a".)
		if tagOpen.MatchString(v) && strings.Contains(out, v) && !strings.Contains(ref, v) {
			t.Fatalf("%s: the value %q is in the page unescaped", what, v)
		}
	}
}

// FuzzRenderUserText renders every page and mail that shows text a user
// or the directory supplies (names, phones, usernames, links) with hostile
// values: rendering never fails or panics, values are escaped (the markup
// is exactly that of a plain value) and a mail subject stays one line.
func FuzzRenderUserText(f *testing.F) {
	for _, s := range []string{"Zoë O'Brien", `<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`,
		"\u202eevil\u202c", "🙂🔑", "\xff\xfe", "a\r\nBcc: x@example.com", "javascript:alert(1)", "{{.Data.CSRF}}",
		"&amp;&lt;", "+33 6 12 34 56 78", "\x00"} {
		f.Add(s, s)
	}
	pages, err := LoadPages()
	if err != nil {
		f.Fatal(err)
	}
	mails, err := LoadMails()
	if err != nil {
		f.Fatal(err)
	}
	render := func(t *testing.T, page, lang string, data any) string {
		t.Helper()
		var buf bytes.Buffer
		if err := pages.Render(&buf, page, lang, data); err != nil {
			t.Fatalf("render %s: %v", page, err)
		}
		return buf.String()
	}
	enrollView := func(name, phone string) fuzzPageView {
		msg := &Msg{Key: "err.resend", Args: map[string]string{"time": name, "wait": phone}}
		return fuzzPageView{CSRF: "csrf", Base: "/enroll/tok", Name: name, Phone: phone, Methods: []string{"sms", "voice", "app"},
			Method: "sms", ExpiresAt: name, CodeUntil: phone, ResendAt: name, ResendIn: phone, ResendMethods: []string{"sms"},
			Secret: name, QR: "/enroll/tok/qr.png", Notice: msg, Error: msg, ErrorField: "phone", AttemptsLeft: msg,
			Title: Msg{Key: "err.new_link"}, Next: msg}
	}
	loginView := func(name, next string) fuzzLoginView {
		return fuzzLoginView{CSRF: "csrf", Login: &struct{ Username, Next string }{name, next},
			Error: &Msg{Key: "admin.login.expired"}}
	}
	f.Fuzz(func(t *testing.T, name, phone string) {
		// plain is a harmless value that takes the same branches in the
		// templates as v: empty or not, and the same non-blank lines.
		plain := func(v string) string {
			if v == "" {
				return ""
			}
			var b strings.Builder
			for line := range strings.Lines(v) {
				if strings.TrimSpace(line) != "" {
					b.WriteString("x")
				}
				if strings.HasSuffix(line, "\n") {
					b.WriteString("\n")
				}
			}
			if b.Len() == 0 {
				return " "
			}
			return b.String()
		}
		for _, lang := range []string{"en", "fr"} {
			for _, page := range []string{PagePhone, PageVerify, PageDone, PageError, PageApp} {
				out := render(t, page, lang, enrollView(name, phone))
				ref := render(t, page, lang, enrollView(plain(name), plain(phone)))
				wantEscaped(t, page, out, ref, name, phone)
			}
			out := render(t, AdminLogin, lang, loginView(name, phone))
			ref := render(t, AdminLogin, lang, loginView(plain(name), plain(phone)))
			wantEscaped(t, AdminLogin, out, ref, name, phone)

			for mail, keys := range mailData {
				data, plainData := map[string]string{}, map[string]string{}
				for i, k := range keys {
					v := name
					if i%2 == 1 {
						v = phone
					}
					data[k], plainData[k] = v, plain(v)
				}
				subject, _, html, err := mails.RenderMail(lang, mail, data)
				if err != nil {
					t.Fatalf("mail %s: %v", mail, err)
				}
				if strings.ContainsAny(subject, "\r\n") {
					t.Fatalf("mail %s: the subject %q is not one line", mail, subject)
				}
				_, _, refHTML, err := mails.RenderMail(lang, mail, plainData)
				if err != nil {
					t.Fatalf("mail %s: %v", mail, err)
				}
				wantEscaped(t, "mail "+mail, html, refHTML, name, phone)
			}
		}
	})
}
