package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// The mails the product sends. LoadMails fails when any is missing in any
// language.
const (
	MailActivation    = "activation"     // the single-use enrollment link
	MailEnrolled      = "enrolled"       // a phone was registered
	MailPhoneChanged  = "phone_changed"  // the registered phone was replaced
	MailLockoutStorm  = "lockout_storm"  // to admins: many accounts locked at once, texts paused
	MailNotMe         = "not_me"         // to admins: a user answered NOT ME
	MailPasswordReset = "password_reset" // to the user: the password was reset by SMS
	MailWebReset      = "web_reset"      // to the user: the password was changed from /reset
	MailSIMSwap       = "sim_swap"       // to admins: a recent SIM swap blocked a reset by SMS
	MailSMSBudget     = "sms_budget"     // to admins: an SMS budget was reached, sends refused
	// MailCarrierFiltered, to admins: a carrier filtered a text (Twilio 30007).
	MailCarrierFiltered = "carrier_filtered"
)

// mailData is the contract with the code that sends mails: the data keys
// each mail is rendered with. Every key must appear in both bodies of every
// language; the templates may use no other.
//
//   - display_name, username: from the directory
//   - link: the activation URL, shown as a button and written out
//   - expires, time: already formatted for the language (FormatDate,
//     FormatDateTime); swapped too (the SIM swap's date), or "" when the
//     carrier gives no date, which the sim_swap templates word
//   - helpdesk: how to reach the IT service desk, e.g. "it@example.com"
//   - method: sms | voice | app | helpdesk, worded by the templates
//   - phone, old_phone, new_phone: masked by RenderMail to the last two
//     digits, whatever the caller passes
//   - accounts: one account per line (the HTML body lists them with the
//     template function lines); count: how many; window: the storm
//     window, worded for the language ("5 minutes")
var mailData = map[string][]string{
	MailActivation:    {"display_name", "expires", "helpdesk", "link", "username"},
	MailEnrolled:      {"display_name", "method", "phone", "time"},
	MailPhoneChanged:  {"display_name", "new_phone", "old_phone", "time"},
	MailLockoutStorm:  {"accounts", "count", "time", "window"},
	MailNotMe:         {"display_name", "phone", "time", "username"},
	MailPasswordReset: {"display_name", "phone", "time", "username"},
	MailWebReset:      {"display_name", "phone", "time", "username"},
	MailSIMSwap:       {"display_name", "phone", "swapped", "time", "username"},
	MailSMSBudget:     {"budget", "limit", "time"}, // budget: its configuration key; limit: per 24 hours
	// code: the provider's error code; username: "-" when the message had none
	MailCarrierFiltered: {"code", "phone", "time", "username"},
}

// mailFuncs are the functions mail templates may call:
//
//   - lines splits a multi-line value (accounts) into its non-empty lines
var mailFuncs = map[string]any{
	"lines": func(s string) []string {
		var out []string
		for line := range strings.Lines(s) {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
		return out
	},
}

// phoneKeys are masked before rendering.
var phoneKeys = []string{"phone", "old_phone", "new_phone"}

// Keys RenderMail adds for the HTML layout; callers may not pass them.
const (
	mailKeyLang    = "lang"
	mailKeySubject = "subject"
)

// Each mail has, per language, mail/<name>_<lang>.txt.tmpl (text/template,
// defining "subject" and "body") and mail/<name>_<lang>.html.tmpl
// (html/template, defining "content", shown inside mail/layout.html.tmpl).
//
//go:embed mail/*.tmpl
var mailFiles embed.FS

// Mails holds the parsed mail templates of every language. It is immutable
// once loaded and safe for concurrent use; it is the notify.MailRenderer.
type Mails struct {
	mails map[string]map[string]*mailTemplate // language → mail name
}

type mailTemplate struct {
	text *texttemplate.Template // "subject" and "body"
	html *htmltemplate.Template // "layout" around "content"
}

// LoadMails parses the embedded mail templates once, at start-up. It fails,
// naming every problem, when a template is missing, unexpected or does not
// parse, or when rendering any mail with sample data fails, leaves a part
// empty, or leaves out one of the mail's data keys.
func LoadMails() (*Mails, error) {
	return loadMails(mailFiles)
}

func loadMails(fsys fs.FS) (*Mails, error) {
	var layout *htmltemplate.Template
	src, err := fs.ReadFile(fsys, "mail/layout.html.tmpl")
	if err == nil {
		layout, err = htmltemplate.New("layout.html.tmpl").Funcs(mailFuncs).Option("missingkey=error").Parse(string(src))
	}
	if err == nil && layout.Lookup("layout") == nil {
		err = errors.New(`defines no "layout"`)
	}
	if err != nil {
		return nil, fmt.Errorf("templates: mail/layout.html.tmpl: %w", err)
	}
	files, err := fs.Glob(fsys, "mail/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	var errs []error
	for _, file := range files {
		if err := checkMailFileName(path.Base(file)); err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", file, err))
		}
	}
	m := &Mails{mails: make(map[string]map[string]*mailTemplate)}
	for _, lang := range supportedLanguages {
		m.mails[lang] = make(map[string]*mailTemplate)
		for _, name := range slices.Sorted(maps.Keys(mailData)) {
			t, err := parseMail(fsys, layout, name, lang)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			m.mails[lang][name] = t
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, lang := range supportedLanguages {
		for _, name := range slices.Sorted(maps.Keys(mailData)) {
			if err := m.checkSample(lang, name); err != nil {
				errs = append(errs, fmt.Errorf("templates: mail %q (%s): %w", name, lang, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// checkMailFileName accepts the layout and <name>_<lang>.{txt,html}.tmpl of
// a known mail and a supported language.
func checkMailFileName(base string) error {
	if base == "layout.html.tmpl" {
		return nil
	}
	stem, ok := strings.CutSuffix(base, ".txt.tmpl")
	if !ok {
		if stem, ok = strings.CutSuffix(base, ".html.tmpl"); !ok {
			return errors.New("want <mail>_<lang>.txt.tmpl or <mail>_<lang>.html.tmpl")
		}
	}
	i := strings.LastIndexByte(stem, '_')
	if i < 0 {
		return errors.New("want <mail>_<lang>.txt.tmpl or <mail>_<lang>.html.tmpl")
	}
	name, lang := stem[:i], stem[i+1:]
	if _, ok := mailData[name]; !ok {
		return fmt.Errorf("no mail is called %q", name)
	}
	if !slices.Contains(supportedLanguages, lang) {
		return fmt.Errorf("language %q is not supported", lang)
	}
	return nil
}

func parseMail(fsys fs.FS, layout *htmltemplate.Template, name, lang string) (*mailTemplate, error) {
	var errs []error
	txtFile := "mail/" + name + "_" + lang + ".txt.tmpl"
	var text *texttemplate.Template
	src, err := fs.ReadFile(fsys, txtFile)
	if err == nil {
		text, err = texttemplate.New(path.Base(txtFile)).Funcs(mailFuncs).Option("missingkey=error").Parse(string(src))
	}
	if err == nil {
		err = definesOnly(text.Tree, func(n string) bool { return text.Lookup(n) != nil }, "subject", "body")
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("templates: %s: %w", txtFile, err))
	}
	htmlFile := "mail/" + name + "_" + lang + ".html.tmpl"
	html, err := layout.Clone()
	if err == nil {
		src, err = fs.ReadFile(fsys, htmlFile)
	}
	if err == nil {
		_, err = html.New(path.Base(htmlFile)).Parse(string(src))
	}
	if err == nil {
		err = definesOnly(html.Lookup(path.Base(htmlFile)).Tree, func(n string) bool { return html.Lookup(n) != nil }, "content")
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("templates: %s: %w", htmlFile, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &mailTemplate{text: text, html: html}, nil
}

// definesOnly checks that a file defines the wanted templates and holds
// nothing outside {{define}} but white space, which would be lost.
func definesOnly(file *parse.Tree, defined func(string) bool, want ...string) error {
	if file != nil && file.Root != nil && strings.TrimSpace(file.Root.String()) != "" {
		return errors.New("text outside {{define}} would never be shown")
	}
	for _, name := range want {
		if !defined(name) {
			return fmt.Errorf("defines no %q", name)
		}
	}
	return nil
}

// checkSample renders a mail with sample data and checks that every data
// key shows in both bodies. The sample values are left alone by HTML
// escaping, so they can be searched for as they are.
func (m *Mails) checkSample(lang, name string) error {
	data := make(map[string]string)
	for _, key := range mailData[name] {
		data[key] = "sample-" + strings.ReplaceAll(key, "_", "-")
	}
	data["link"] = "https://reset.example.com/enroll/sample-token"
	for _, key := range phoneKeys {
		data[key] = "0600000" + strconv.Itoa(10+slices.Index(phoneKeys, key))
	}
	subject, text, html, err := m.render(lang, name, data)
	if err != nil {
		return err
	}
	var errs []error
	for part, s := range map[string]string{"subject": subject, "text body": text, "HTML body": html} {
		if strings.TrimSpace(s) == "" {
			errs = append(errs, fmt.Errorf("the %s is empty", part))
		}
	}
	for _, key := range mailData[name] {
		v := data[key]
		if slices.Contains(phoneKeys, key) {
			v = MaskPhone(v)
		}
		if !strings.Contains(text, v) {
			errs = append(errs, fmt.Errorf("the text body does not show {{.%s}}", key))
		}
		if !strings.Contains(html, v) {
			errs = append(errs, fmt.Errorf("the HTML body does not show {{.%s}}", key))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// RenderMail renders mail name in lang (any tag NormalizeLanguage
// understands; an unknown one falls back to English) with data, whose keys
// are listed at mailData. A key a template needs but data lacks is an
// error, so no mail goes out with a hole in it. The subject is one line;
// the text body ends with a newline; the HTML body is a whole document
// whose values html/template has escaped.
func (m *Mails) RenderMail(lang, name string, data map[string]string) (subject, text, html string, err error) {
	lang = NormalizeLanguage(lang)
	if lang == "" {
		lang = DefaultLanguage
	}
	subject, text, html, err = m.render(lang, name, data)
	if err != nil {
		return "", "", "", fmt.Errorf("templates: mail %q (%s): %w", name, lang, err)
	}
	return subject, text, html, nil
}

// render is RenderMail for a supported lang, with errors unprefixed.
func (m *Mails) render(lang, name string, data map[string]string) (subject, text, html string, err error) {
	t, ok := m.mails[lang][name]
	if !ok {
		return "", "", "", errors.New("no such mail")
	}
	d := make(map[string]string, len(data)+2)
	for k, v := range data {
		if k == mailKeyLang || k == mailKeySubject {
			return "", "", "", fmt.Errorf("data key %q is reserved", k)
		}
		if slices.Contains(phoneKeys, k) {
			v = MaskPhone(v)
		}
		d[k] = v
	}
	var buf bytes.Buffer
	if err := t.text.ExecuteTemplate(&buf, "subject", d); err != nil {
		return "", "", "", err
	}
	subject = strings.Join(strings.Fields(buf.String()), " ")
	buf.Reset()
	if err := t.text.ExecuteTemplate(&buf, "body", d); err != nil {
		return "", "", "", err
	}
	text = strings.TrimSpace(buf.String()) + "\n"
	buf.Reset()
	d[mailKeyLang], d[mailKeySubject] = lang, subject
	if err := t.html.ExecuteTemplate(&buf, "layout", d); err != nil {
		return "", "", "", err
	}
	return subject, text, buf.String(), nil
}

// MaskPhone hides every digit of a phone number but the last two:
// "+33612345678" gives "+••••••••••78". Masking a masked number changes
// nothing.
func MaskPhone(phone string) string {
	digits := 0
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	var b strings.Builder
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			if digits > 2 {
				r = '•'
			}
			digits--
		}
		b.WriteRune(r)
	}
	return b.String()
}

var monthNames = map[string][12]string{
	"en": {"January", "February", "March", "April", "May", "June",
		"July", "August", "September", "October", "November", "December"},
	"fr": {"janvier", "février", "mars", "avril", "mai", "juin",
		"juillet", "août", "septembre", "octobre", "novembre", "décembre"},
}

// FormatDate writes the day of t in lang: "March 5, 2026", "5 mars 2026",
// "1er mars 2026". The caller chooses the time zone (t.In).
func FormatDate(lang string, t time.Time) string {
	month := t.Month() - 1
	if NormalizeLanguage(lang) == "fr" {
		day := strconv.Itoa(t.Day())
		if t.Day() == 1 {
			day = "1er"
		}
		return day + " " + monthNames["fr"][month] + " " + strconv.Itoa(t.Year())
	}
	return monthNames["en"][month] + " " + strconv.Itoa(t.Day()) + ", " + strconv.Itoa(t.Year())
}

// FormatDateTime writes t to the minute, with its zone, in lang:
// "March 5, 2026 at 10:42 UTC", "5 mars 2026 à 10:42 UTC".
func FormatDateTime(lang string, t time.Time) string {
	at := " at "
	if NormalizeLanguage(lang) == "fr" {
		at = " à "
	}
	return FormatDate(lang, t) + at + t.Format("15:04 MST")
}
