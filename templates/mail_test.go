package templates

import (
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

const testActivationLink = "https://reset.example.com/enroll/Zq3xV9kP_2mRt-8LwYc4HnB6sJd1FgA0eUoI7yTbQvXr5NpMz"

// realisticMailData is what the enrollment service passes, per mail.
func realisticMailData(lang, name string) map[string]string {
	when := time.Date(2026, time.March, 12, 10, 42, 0, 0, time.UTC)
	switch name {
	case MailActivation:
		return map[string]string{
			"display_name": "Zoé Lefèvre",
			"username":     "zlefevre",
			"link":         testActivationLink,
			"expires":      FormatDate(lang, when.AddDate(0, 0, 7)),
			"helpdesk":     "it@example.com, +1 555 0100",
		}
	case MailEnrolled:
		return map[string]string{
			"display_name": "Zoé Lefèvre",
			"phone":        "+33612345678",
			"method":       "sms",
			"time":         FormatDateTime(lang, when),
		}
	case MailPhoneChanged:
		return map[string]string{
			"display_name": "Zoé Lefèvre",
			"old_phone":    "+33612345678",
			"new_phone":    "+33798765421",
			"time":         FormatDateTime(lang, when),
		}
	case MailLockoutStorm:
		return map[string]string{
			"accounts": "zlefevre (Zoé Lefèvre), 10:41\njdoe (John Doe), 10:41\nasmith (Ann Smith), 10:42",
			"count":    "3",
			"window":   "5 minutes",
			"time":     FormatDateTime(lang, when),
		}
	case MailSMSBudget:
		return map[string]string{
			"budget": "sms.budgets.per_country_day.FR",
			"limit":  "50",
			"time":   FormatDateTime(lang, when),
		}
	case MailCarrierFiltered:
		return map[string]string{
			"code":     "30007",
			"phone":    "+33612345678",
			"username": "zlefevre",
			"time":     FormatDateTime(lang, when),
		}
	case MailSIMSwap:
		return map[string]string{
			"display_name": "Zoé Lefèvre",
			"username":     "zlefevre",
			"phone":        "+33612345678",
			"swapped":      FormatDateTime(lang, when.Add(-3*time.Hour)),
			"time":         FormatDateTime(lang, when),
		}
	case MailNotMe, MailPasswordReset, MailWebReset:
		return map[string]string{
			"display_name": "Zoé Lefèvre",
			"username":     "zlefevre",
			"phone":        "+33612345678",
			"time":         FormatDateTime(lang, when),
		}
	}
	return nil
}

func loadTestMails(t *testing.T) *Mails {
	t.Helper()
	m, err := LoadMails()
	if err != nil {
		t.Fatalf("LoadMails: %v", err)
	}
	return m
}

func TestRenderEveryMail(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		for name := range mailData {
			t.Run(name+"_"+lang, func(t *testing.T) {
				data := realisticMailData(lang, name)
				subject, text, html, err := m.RenderMail(lang, name, data)
				if err != nil {
					t.Fatal(err)
				}
				if subject == "" || strings.ContainsAny(subject, "\r\n") {
					t.Errorf("subject %q is not one line", subject)
				}
				if !strings.HasSuffix(text, "\n") || strings.HasSuffix(text, "\n\n") {
					t.Errorf("text body does not end with exactly one newline")
				}
				if name != MailSMSBudget && name != MailCarrierFiltered && (!strings.Contains(text, "Zoé Lefèvre") || !strings.Contains(html, "Zoé Lefèvre")) {
					t.Errorf("display name missing")
				}
				for _, want := range []string{"<!DOCTYPE html>", `<html lang="` + lang + `">`, `<meta charset="utf-8">`,
					"<title>" + subject + "</title>", `role="presentation"`} {
					if !strings.Contains(html, want) {
						t.Errorf("HTML lacks %s", want)
					}
				}
				if strings.Contains(text, "<no value>") || strings.Contains(html, "<no value>") {
					t.Errorf("a value is missing")
				}
				if strings.Contains(text, "{{") || strings.Contains(html, "{{") {
					t.Errorf("template syntax leaked")
				}
			})
		}
	}
}

func TestActivationLinkVerbatim(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		_, text, html, err := m.RenderMail(lang, MailActivation, realisticMailData(lang, MailActivation))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "\n"+testActivationLink+"\n") {
			t.Errorf("%s: the text body does not give the link on a line of its own", lang)
		}
		if n := strings.Count(html, `href="`+testActivationLink+`"`); n != 1 {
			t.Errorf("%s: the HTML body has %d links to the activation URL, want one button", lang, n)
		}
		if n := strings.Count(html, "<a "); n != 1 {
			t.Errorf("%s: the HTML body has %d links, want one", lang, n)
		}
		if n := strings.Count(html, testActivationLink); n != 2 {
			t.Errorf("%s: the HTML body shows the link %d times, want 2 (button and written out)", lang, n)
		}
	}
}

func TestMailHTMLEscapesHostileData(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		for name := range mailData {
			data := realisticMailData(lang, name)
			data["display_name"] = `<script>alert("x")</script>`
			if name == MailLockoutStorm { // no display_name: the names are in the list
				data["accounts"] += "\n" + data["display_name"]
				delete(data, "display_name")
			}
			if name == MailSMSBudget { // names no one: a hostile budget key stands in
				data["budget"] = data["display_name"]
				delete(data, "display_name")
			}
			if name == MailCarrierFiltered { // no display name: a hostile username stands in
				data["username"] = data["display_name"]
				delete(data, "display_name")
			}
			if name == MailActivation {
				data["username"] = `"><img src=x onerror=alert(1)>`
				data["link"] = "javascript:alert(1)"
			}
			_, text, html, err := m.RenderMail(lang, name, data)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"<script>", "<img", `href="javascript:`} {
				if strings.Contains(html, bad) {
					t.Errorf("%s %s: HTML holds %q unescaped", name, lang, bad)
				}
			}
			if name == MailActivation && !strings.Contains(html, `href="#ZgotmplZ"`) {
				t.Errorf("%s %s: the javascript: link was not neutralised", name, lang)
			}
			if !strings.Contains(html, "&lt;script&gt;") {
				t.Errorf("%s %s: the display name is not shown escaped", name, lang)
			}
			// Plain text is shown as text; nothing to escape.
			if !strings.Contains(text, `<script>alert("x")</script>`) {
				t.Errorf("%s %s: text body changed the display name", name, lang)
			}
		}
	}
}

func TestMailMasksPhones(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		for _, name := range []string{MailEnrolled, MailPhoneChanged, MailNotMe, MailPasswordReset} {
			subject, text, html, err := m.RenderMail(lang, name, realisticMailData(lang, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, full := range []string{"612345678", "798765421"} {
				for part, s := range map[string]string{"subject": subject, "text": text, "html": html} {
					if strings.Contains(s, full[:len(full)-2]) {
						t.Errorf("%s %s: the %s shows more than the last two digits", name, lang, part)
					}
				}
			}
			if !strings.Contains(text, "•78") {
				t.Errorf("%s %s: the last two digits are not shown", name, lang)
			}
		}
	}
}

func TestEnrolledWordsTheMethod(t *testing.T) {
	m := loadTestMails(t)
	want := map[string]map[string]string{
		"en": {"sms": "text message", "voice": "phone call", "app": "authenticator app", "helpdesk": "in person"},
		"fr": {"sms": "SMS", "voice": "appel", "app": "application d’authentification", "helpdesk": "en personne"},
	}
	for lang, methods := range want {
		for method, words := range methods {
			data := realisticMailData(lang, MailEnrolled)
			data["method"] = method
			_, text, html, err := m.RenderMail(lang, MailEnrolled, data)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, words) || !strings.Contains(html, words) {
				t.Errorf("%s, method %s: %q not in both bodies", lang, method, words)
			}
		}
	}
}

func TestRenderMailErrors(t *testing.T) {
	m := loadTestMails(t)
	data := realisticMailData("en", MailActivation)
	delete(data, "link")
	if _, _, _, err := m.RenderMail("en", MailActivation, data); err == nil || !strings.Contains(err.Error(), "link") {
		t.Errorf("missing data key: err = %v, want one naming link", err)
	}
	if _, _, _, err := m.RenderMail("en", "welcome", nil); err == nil {
		t.Error("unknown mail: no error")
	}
	data = realisticMailData("en", MailActivation)
	data["lang"] = "de"
	if _, _, _, err := m.RenderMail("en", MailActivation, data); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("reserved key: err = %v", err)
	}
}

func TestRenderMailLanguage(t *testing.T) {
	m := loadTestMails(t)
	for lang, want := range map[string]string{"fr-CA": "fr", "FR": "fr", "de": "en", "": "en", "en-GB": "en"} {
		_, _, html, err := m.RenderMail(lang, MailActivation, realisticMailData(want, MailActivation))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(html, `<html lang="`+want+`">`) {
			t.Errorf("RenderMail(%q) is not in %s", lang, want)
		}
	}
}

func TestRenderMailConcurrent(t *testing.T) {
	m := loadTestMails(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			lang := supportedLanguages[i%len(supportedLanguages)]
			if _, _, _, err := m.RenderMail(lang, MailActivation, realisticMailData(lang, MailActivation)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// mailFS copies the embedded mail templates, to be broken by a test.
func mailFS(t *testing.T) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(mailFiles, "mail", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(mailFiles, p)
		out[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadMailsFailsOnEveryProblem(t *testing.T) {
	if _, err := loadMails(mailFS(t)); err != nil {
		t.Fatalf("the copy does not load: %v", err)
	}
	edit := func(file, old, new string) func(fstest.MapFS) {
		return func(fsys fstest.MapFS) {
			src := string(fsys[file].Data)
			if !strings.Contains(src, old) {
				panic(file + " lacks " + old)
			}
			fsys[file] = &fstest.MapFile{Data: []byte(strings.Replace(src, old, new, 1))}
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(fstest.MapFS)
		want   []string
	}{
		{"missing html", func(f fstest.MapFS) { delete(f, "mail/enrolled_fr.html.tmpl") },
			[]string{"enrolled_fr.html.tmpl"}},
		{"missing text", func(f fstest.MapFS) { delete(f, "mail/activation_en.txt.tmpl") },
			[]string{"activation_en.txt.tmpl"}},
		{"missing layout", func(f fstest.MapFS) { delete(f, "mail/layout.html.tmpl") },
			[]string{"layout.html.tmpl"}},
		{"unknown mail", func(f fstest.MapFS) { f["mail/welcome_en.txt.tmpl"] = &fstest.MapFile{Data: []byte("x")} },
			[]string{"welcome_en.txt.tmpl", `no mail is called "welcome"`}},
		{"unsupported language", func(f fstest.MapFS) {
			f["mail/activation_de.txt.tmpl"] = f["mail/activation_en.txt.tmpl"]
		}, []string{`language "de" is not supported`}},
		{"parse error", edit("mail/phone_changed_fr.txt.tmpl", "{{.old_phone}}", "{{.old_phone"),
			[]string{"phone_changed_fr.txt.tmpl"}},
		{"no subject", edit("mail/phone_changed_en.txt.tmpl", `{{define "subject"}}`, `{{define "title"}}`),
			[]string{"phone_changed_en.txt.tmpl", `defines no "subject"`}},
		{"no content", edit("mail/enrolled_en.html.tmpl", `{{define "content" -}}`, `{{define "main" -}}`),
			[]string{"enrolled_en.html.tmpl", `defines no "content"`}},
		{"text outside define", func(f fstest.MapFS) {
			f["mail/activation_fr.txt.tmpl"] = &fstest.MapFile{Data: append([]byte("Bonjour\n"), f["mail/activation_fr.txt.tmpl"].Data...)}
		}, []string{"activation_fr.txt.tmpl", "outside {{define}}"}},
		{"unknown data key", edit("mail/activation_fr.html.tmpl", "{{.helpdesk}}", "{{.helpdesk_phone}}"),
			[]string{`"activation" (fr)`, "helpdesk_phone"}},
		{"data key left out", edit("mail/activation_en.txt.tmpl", "\n{{.link}}\n", "\n"),
			[]string{`"activation" (en)`, "text body does not show {{.link}}"}},
		{"unsafe HTML", edit("mail/activation_en.html.tmpl", `<p style`, `<script>var u = {{.username}};<p style`),
			[]string{`"activation" (en)`}},
		{"empty subject", edit("mail/enrolled_fr.txt.tmpl",
			`{{define "subject"}}Votre téléphone est enregistré pour réinitialiser votre mot de passe{{end}}`,
			`{{define "subject"}} {{end}}`),
			[]string{`"enrolled" (fr)`, "subject is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := mailFS(t)
			tc.mutate(fsys)
			_, err := loadMails(fsys)
			if err == nil {
				t.Fatal("loaded")
			}
			t.Log(err)
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+33612345678":    "+•••••••••78",
		"+1 555 010 0142": "+• ••• ••• ••42",
		"+•••••••••78":    "+•••••••••78",
		"42":              "42",
		"":                "",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatDate(t *testing.T) {
	d := time.Date(2026, time.August, 1, 9, 5, 0, 0, time.UTC)
	for _, tc := range []struct{ lang, date, dateTime string }{
		{"en", "August 1, 2026", "August 1, 2026 at 09:05 UTC"},
		{"fr", "1er août 2026", "1er août 2026 à 09:05 UTC"},
		{"fr-CA", "1er août 2026", "1er août 2026 à 09:05 UTC"},
		{"de", "August 1, 2026", "August 1, 2026 at 09:05 UTC"},
	} {
		if got := FormatDate(tc.lang, d); got != tc.date {
			t.Errorf("FormatDate(%s) = %q, want %q", tc.lang, got, tc.date)
		}
		if got := FormatDateTime(tc.lang, d); got != tc.dateTime {
			t.Errorf("FormatDateTime(%s) = %q, want %q", tc.lang, got, tc.dateTime)
		}
	}
	if got := FormatDate("fr", d.AddDate(0, 0, 11)); got != "12 août 2026" {
		t.Errorf("FormatDate(fr, 12th) = %q", got)
	}
}
