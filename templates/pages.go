package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

// funcs are the helpers page templates may call besides the view's methods.
var funcs = template.FuncMap{
	"add": func(a, b int) int { return a + b },
}

// The pages of the enrollment site. LoadPages fails when any is missing.
const (
	PagePhone  = "phone"  // enter the mobile number and choose how to verify it
	PageVerify = "verify" // type the code; ask for it again
	PageApp    = "app"    // scan the QR code, type the app's code
	PageDone   = "done"   // enrolled
	PageError  = "error"  // a whole-page message: unknown or expired link, lockout, too many requests
	PageHome   = "home"   // the start page (GET /): text RESET to the number, whom to ask
)

// The pages of the safe phone change (/phone/change): sign in with the
// directory password, the new number, its code, done.
const (
	PageChangeSignIn = "phone_change_signin"
	PageChangeNumber = "phone_change_number"
	PageChangeVerify = "phone_change_verify"
	PageChangeDone   = "phone_change_done"
)

// The pages of the reset from a browser (/reset): the account, its code,
// what to do, done.
const (
	PageReset       = "reset"
	PageResetCode   = "reset_code"
	PageResetChoose = "reset_choose"
	PageResetDone   = "reset_done"
	// PageResetPassword shows a generated password, once.
	PageResetPassword = "reset_password"
)

var pageNames = []string{PagePhone, PageVerify, PageApp, PageDone, PageError, PageHome,
	PageChangeSignIn, PageChangeNumber, PageChangeVerify, PageChangeDone,
	PageReset, PageResetCode, PageResetChoose, PageResetDone, PageResetPassword}

// The pages of the admin console, drawn in their own layout (navigation,
// the signed-in admin, sign out).
const (
	AdminLogin       = "admin_login"
	AdminDashboard   = "admin_dashboard"
	AdminUsers       = "admin_users"
	AdminResults     = "admin_results" // per-user results of an activation
	AdminEnrollments = "admin_enrollments"
	AdminEnrollment  = "admin_enrollment" // one enrollment's details and actions
	AdminLockouts    = "admin_lockouts"
	AdminAudit       = "admin_audit"
	AdminMail        = "admin_mail" // the mail queue: recipient, kind, state, attempts
	AdminError       = "admin_error"
	AdminConfirm     = "admin_confirm" // the confirmation step of a destructive action
)

var adminPageNames = []string{AdminLogin, AdminDashboard, AdminUsers, AdminResults, AdminEnrollments,
	AdminEnrollment, AdminLockouts, AdminAudit, AdminMail, AdminError, AdminConfirm}

// The pages of `replyreset demo`: the phone simulator and the mailbox.
const (
	DemoPhone = "demo_phone"
	DemoMail  = "demo_mail"
)

var demoPageNames = []string{DemoPhone, DemoMail}

// The page texts live apart from the SMS catalog: they are not bound to
// GSM-7 or to one SMS segment, so French keeps its ç, ê and apostrophes.
//
//go:embed pages/*.html pages/text_*.json static/*
var pageFiles embed.FS

// Msg is a page text to render in the page's language: a key of the page
// texts (pages/text_<lang>.json) and its {placeholder} values.
type Msg struct {
	Key  string
	Args map[string]string
}

// Pages holds the parsed page templates, their texts in every language and
// the static assets. It is immutable once loaded and safe for concurrent use.
type Pages struct {
	tmpl   map[string]*template.Template
	text   *Catalog
	static fs.FS
	assets map[string]string // file name → URL with a content hash
}

// LoadPages parses the embedded page templates and texts once, at start-up.
// It fails, naming every problem, when a page or the layout is missing or
// does not parse, when a text key a template uses is missing, or when the
// languages' texts differ in keys or placeholders.
func LoadPages() (*Pages, error) {
	return loadPages(pageFiles)
}

// textCall finds the literal keys templates pass to .T; pluralCall those
// passed to .N, which must have a .one and an .other form.
var (
	textCall   = regexp.MustCompile(`\.T\s+"([^"]*)"`)
	pluralCall = regexp.MustCompile(`\.N\s+"([^"]*)"`)
)

func loadPages(fsys fs.FS) (*Pages, error) {
	text, err := loadPageTexts(fsys)
	if err != nil {
		return nil, err
	}
	p := &Pages{tmpl: make(map[string]*template.Template), text: text, assets: make(map[string]string)}
	var errs []error
	layouts := make(map[string][]byte)
	for _, name := range []string{"layout.html", "admin_layout.html"} {
		if layouts[name], err = fs.ReadFile(fsys, "pages/"+name); err != nil {
			return nil, fmt.Errorf("templates: page layout: %w", err)
		}
	}
	for _, name := range slices.Concat(pageNames, adminPageNames, demoPageNames) {
		layoutName := "layout.html"
		if strings.HasPrefix(name, "admin_") {
			layoutName = "admin_layout.html"
		}
		layout := layouts[layoutName]
		file := "pages/" + name + ".html"
		src, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: page %q: %w", name, err))
			continue
		}
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err == nil {
			_, err = t.New(path.Base(file)).Parse(string(src))
		}
		if err == nil && t.Lookup("main") == nil {
			err = errors.New(`defines no "main" block`)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", file, err))
			continue
		}
		p.tmpl[name] = t
		for _, m := range textCall.FindAllStringSubmatch(string(layout)+string(src), -1) {
			if _, ok := text.messages[DefaultLanguage][m[1]]; !ok {
				errs = append(errs, fmt.Errorf("templates: %s: page text %q is missing", file, m[1]))
			}
		}
		for _, m := range pluralCall.FindAllStringSubmatch(string(layout)+string(src), -1) {
			for _, form := range []string{".one", ".other"} {
				if _, ok := text.messages[DefaultLanguage][m[1]+form]; !ok {
					errs = append(errs, fmt.Errorf("templates: %s: page text %q is missing", file, m[1]+form))
				}
			}
		}
	}
	p.static, err = fs.Sub(fsys, "static")
	if err == nil {
		err = fs.WalkDir(p.static, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(p.static, name)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			p.assets[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
			return nil
		})
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("templates: static assets: %w", err))
	}
	if _, ok := p.assets["site.css"]; !ok {
		errs = append(errs, errors.New("templates: static/site.css is missing"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// loadPageTexts reads pages/text_<lang>.json for every supported language
// and checks them as the SMS catalog is checked.
func loadPageTexts(fsys fs.FS) (*Catalog, error) {
	c := &Catalog{messages: make(map[string]map[string]string)}
	var errs []error
	for _, lang := range supportedLanguages {
		name := "pages/text_" + lang + ".json"
		data, err := fs.ReadFile(fsys, name)
		if err == nil {
			c.messages[lang], err = parseMessages(data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Render writes page in lang (any tag NormalizeLanguage understands; an
// unknown one falls back to English) with data, which the templates see as
// .Data. Nothing is written when the template fails.
func (p *Pages) Render(w io.Writer, page, lang string, data any) error {
	t, ok := p.tmpl[page]
	if !ok {
		return fmt.Errorf("templates: no page %q", page)
	}
	lang = NormalizeLanguage(lang)
	if lang == "" {
		lang = DefaultLanguage
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", view{Lang: lang, Data: data, p: p}); err != nil {
		return fmt.Errorf("templates: page %q: %w", page, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Text returns page text key in lang with args filled in, for answers that
// are not pages (a plain-text refusal, a header).
func (p *Pages) Text(lang, key string, args map[string]string) string {
	return p.text.Text(lang, key, args)
}

// Plural returns the form of page text key that counts n in lang
// (Catalog.Plural).
func (p *Pages) Plural(lang, key string, n int, args map[string]string) string {
	return p.text.Plural(lang, key, n, args)
}

// Static returns the static assets (CSS), served under /static/.
func (p *Pages) Static() fs.FS { return p.static }

// view is what a page template sees as dot at the top level.
type view struct {
	Lang string // en | fr: <html lang>, and the language of every text
	Data any
	p    *Pages
}

// T returns the text key with placeholders filled from name, value pairs:
// {{.T "verify.resend_at" "time" .Data.ResendAt}}.
func (v view) T(key string, pairs ...any) string {
	var args map[string]string
	if len(pairs) > 0 {
		args = make(map[string]string, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			args[fmt.Sprint(pairs[i])] = fmt.Sprint(pairs[i+1])
		}
	}
	return v.p.text.Text(v.Lang, key, args)
}

// N returns the form of key that counts n ("1 user", "2 users"), with {n}
// and the placeholders of the name, value pairs filled in:
// {{.N "admin.enr.count" .Total}}.
func (v view) N(key string, n int, pairs ...any) string {
	args := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		args[fmt.Sprint(pairs[i])] = fmt.Sprint(pairs[i+1])
	}
	return v.p.text.Plural(v.Lang, key, n, args)
}

// Msg renders a text chosen by the handler.
func (v view) Msg(m Msg) string { return v.p.text.Text(v.Lang, m.Key, m.Args) }

// Language is one choice of the language switch, named in its own language.
type Language struct{ Code, Name string }

// OtherLanguages returns the languages other than the page's, for the
// language switch.
func (v view) OtherLanguages() []Language {
	var out []Language
	for _, l := range v.Languages() {
		if l.Code != v.Lang {
			out = append(out, l)
		}
	}
	return out
}

// Languages returns every language, each named in itself, for a choice of
// language (the admin console's enrollment form).
func (v view) Languages() []Language {
	var out []Language
	for _, l := range v.p.text.Languages() {
		out = append(out, Language{Code: l, Name: v.p.text.Text(l, "lang.name", nil)})
	}
	return out
}

// Asset returns the URL of a static file, with a content hash so it can be
// cached for long.
func (v view) Asset(name string) string { return v.p.assets[name] }
