package web

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// The pages are tested against the real enrollment service, bbolt store,
// Sealer, message catalog and page templates; only the directory, the mail
// transport and the clock are stand-ins, from enroll/enrolltest.

var _ Enrollment = (*enroll.Service)(nil)
var _ Pages = (*templates.Pages)(nil)
var _ RateLimiter = (*bolt.Store)(nil)

// t0 is on a 30-second boundary, so TOTP steps are easy to reason about.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// hm is the time of day d after t0 as the pages show it.
func hm(d time.Duration) string { return t0.Add(d).In(time.Local).Format("15:04") }

// enrollApp is the whole enrollment site over a fresh data file.
type enrollApp struct {
	t       *testing.T
	handler http.Handler
	svc     *enroll.Service
	store   *bolt.Store
	sealer  *enroll.Sealer
	clock   *enrolltest.Clock
	mailer  *enrolltest.Mailer
	webLog  *enrolltest.LogBuffer // the access log and the pages' errors
	svcLog  *enrolltest.LogBuffer
}

const (
	phoneJdoe = "+12015550123"
	phoneFR   = "+33612345678"
)

type appTuning struct {
	deps     *enroll.ServiceDeps
	settings *enroll.ServiceSettings
	web      *Deps
}

func newEnrollApp(t *testing.T, tune ...func(appTuning)) *enrollApp {
	t.Helper()
	store, sealer, catalog, pages := testData(t)
	a := &enrollApp{t: t, store: store, sealer: sealer, clock: enrolltest.NewClock(t0),
		mailer: &enrolltest.Mailer{}, webLog: &enrolltest.LogBuffer{}, svcLog: &enrolltest.LogBuffer{}}
	users := enrolltest.Users{
		"jdoe":    {Username: "jdoe", DisplayName: "John Doe", Mail: "jdoe@example.com", Mobile: "(201) 555-0123"},
		"asmith":  {Username: "asmith", DisplayName: "Ann Smith", Mail: "asmith@example.com"},
		"mdupont": {Username: "mdupont", DisplayName: "Marie Dupont", Mail: "mdupont@example.com"},
	}
	deps := enroll.ServiceDeps{
		Store: store, Directory: users, Mailer: a.mailer, Mails: &enrolltest.Renderer{}, Messages: catalog, Sealer: sealer,
		Outbox: outbox.NewQueue(store, sealer, nil), Log: slog.New(slog.NewJSONHandler(a.svcLog, nil)), Now: a.clock.Now,
	}
	set := enroll.ServiceSettings{
		Config: enroll.DefaultConfig(), PublicURL: "https://reset.example.com",
		DefaultLanguage: "en", DefaultRegion: "US",
	}
	wd := Deps{
		Logger:    slog.New(slog.NewJSONHandler(a.webLog, nil)),
		Pages:     pages,
		Store:     store,
		PublicURL: "http://127.0.0.1",
		Language:  "en",
		Now:       a.clock.Now,
	}
	for _, f := range tune {
		f(appTuning{&deps, &set, &wd})
	}
	a.svc = enroll.NewService(deps, set)
	if wd.Enrollment == nil {
		wd.Enrollment = a.svc
	}
	a.handler = NewEcho(wd)
	return a
}

// testData opens a fresh data file and key, and loads the SMS catalog and
// the page templates.
func testData(t *testing.T) (*bolt.Store, *enroll.Sealer, *templates.Catalog, *templates.Pages) {
	t.Helper()
	store, sealer := enrolltest.DataDir(t)
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	return store, sealer, catalog, pages
}

var linkRE = regexp.MustCompile(`link=(\S+)`)

// activate activates username and returns the path of the mailed link.
func (a *enrollApp) activate(username string) string {
	a.t.Helper()
	if _, err := a.svc.Activate(context.Background(), username, "admin:root"); err != nil {
		a.t.Fatalf("Activate(%s): %v", username, err)
	}
	sent := a.mailer.Sent()
	m := linkRE.FindStringSubmatch(sent[len(sent)-1].Text)
	if m == nil {
		a.t.Fatalf("no link in the mail: %q", sent[len(sent)-1].Text)
	}
	u, err := url.Parse(m[1])
	if err != nil {
		a.t.Fatal(err)
	}
	return u.Path
}

// messages returns the outbox, oldest first.
func (a *enrollApp) messages() []enroll.OutboundMessage {
	a.t.Helper()
	return enrolltest.Messages(a.t, a.store)
}

// body opens a queued message's sealed body.
func (a *enrollApp) body(m enroll.OutboundMessage) string {
	a.t.Helper()
	return enrolltest.Body(a.t, a.sealer, m)
}

// lastCode returns the code of the newest code message (SMS or call).
func (a *enrollApp) lastCode() string {
	a.t.Helper()
	return enrolltest.LastCode(a.t, a.store, a.sealer)
}

func (a *enrollApp) enrollment(username string) enroll.Enrollment {
	a.t.Helper()
	e, err := a.store.Enrollment(context.Background(), username)
	if err != nil {
		a.t.Fatalf("Enrollment(%s): %v", username, err)
	}
	return e
}

// wantEnrolled checks the enrollment is active with phone and method and
// that the confirmation SMS is queued to that phone in lang.
func (a *enrollApp) wantEnrolled(username, phone, method, lang string) {
	a.t.Helper()
	e := a.enrollment(username)
	if e.State != enroll.StateActive || e.Phone != phone || e.Method != method || e.Language != lang {
		a.t.Fatalf("enrollment = %+v, want active %s by %s in %s", e, phone, method, lang)
	}
	ms := a.messages()
	last := ms[len(ms)-1]
	catalog, _ := templates.LoadCatalog()
	if last.Purpose != "enrolled" || last.To != phone || a.body(last) != catalog.Text(lang, "sms.enrolled", nil) {
		a.t.Fatalf("last message: %+v %q, want the confirmation SMS", last, a.body(last))
	}
}

// browser is a minimal cookie-keeping client that remembers the CSRF
// token of the last page it got, as a browser's form would post it.
type browser struct {
	t       *testing.T
	handler http.Handler
	cookies map[string]*http.Cookie
	lang    string // Accept-Language
	ip      string
	csrf    string // from the last page's forms
}

type answer struct {
	code   int
	body   string
	header http.Header
}

func (a *enrollApp) browser(lang string) *browser {
	return newHTTPBrowser(a.t, a.handler, lang)
}

// newHTTPBrowser returns a browser that sends its requests to handler.
func newHTTPBrowser(t *testing.T, handler http.Handler, lang string) *browser {
	return &browser{t: t, handler: handler, cookies: map[string]*http.Cookie{}, lang: lang, ip: "192.0.2.10"}
}

var (
	csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
	// siteSwitchRE is the site-wide language switch, whose token is bound to
	// no link or session: not the token the page's other forms carry.
	siteSwitchRE = regexp.MustCompile(`(?s)<form class="lang" method="post" action="/language"[^>]*>.*?</form>`)
)

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	req.RemoteAddr = b.ip + ":40000"
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	body := rec.Body.String()
	if m := csrfRE.FindStringSubmatch(siteSwitchRE.ReplaceAllString(body, "")); m != nil {
		b.csrf = m[1]
	}
	return answer{code: rec.Code, body: body, header: rec.Header()}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

// post sends form with the page's CSRF token.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has(csrfField) {
		form.Set(csrfField, b.csrf)
	}
	return b.postRaw(path, form)
}

func (b *browser) postRaw(path string, form url.Values) answer {
	b.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// want fails unless the answer has status code and every text.
func (r answer) want(t *testing.T, what string, code int, texts ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d\n%s", what, r.code, code, r.body)
	}
	for _, s := range texts {
		if !strings.Contains(r.body, s) {
			t.Fatalf("%s: page lacks %q\n%s", what, s, r.body)
		}
	}
}

func (r answer) location(t *testing.T, what, want string) {
	t.Helper()
	if r.code != http.StatusSeeOther || r.header.Get("Location") != want {
		t.Fatalf("%s: %d Location %q, want 303 to %q\n%s", what, r.code, r.header.Get("Location"), want, r.body)
	}
}

// pageText is the page catalog, for expected texts.
func pageText(t *testing.T, lang, key string, args map[string]string) string {
	t.Helper()
	p, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	// html/template escapes apostrophes; compare with the escaped text.
	return htmlText(p.Text(lang, key, args))
}

// htmlText is s as html/template writes it in a page.
func htmlText(s string) string {
	return strings.NewReplacer("'", "&#39;", "+", "&#43;", `"`, "&#34;", "&", "&amp;").Replace(s)
}

func TestEnrollBySMS(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("en-US,en;q=0.9")

	r := b.get(link)
	r.want(t, "first page", 200, `<html lang="en">`, "Hello John Doe.", `value="&#43;12015550123"`,
		`autocomplete="tel"`, `<label for="phone">`, `value="sms" checked`)
	if got := r.header.Get("Content-Security-Policy"); got != pageCSP {
		t.Errorf("page CSP = %q", got)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("page Cache-Control = %q", got)
	}
	if b.csrf == "" || b.cookies[csrfCookie] == nil ||
		b.csrf != csrfTokenFor(b.cookies[csrfCookie].Value, "enroll:"+strings.TrimPrefix(link, "/enroll/")) {
		t.Fatalf("CSRF token %q not in the form or not the one of the cookie %+v and the link", b.csrf, b.cookies[csrfCookie])
	}
	ck := b.cookies[csrfCookie]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure {
		t.Errorf("CSRF cookie over http: %+v, want HttpOnly, SameSite=Strict, not Secure", ck)
	}

	b.post(link+"/phone", url.Values{"phone": {"(201) 555-0123"}, "method": {"sms"}}).location(t, "send code", link+"?sent=sms")
	r = b.get(link + "?sent=sms")
	r.want(t, "verify page", 200, pageText(t, "en", "notice.sent.sms", nil), "&#43;12015550123",
		`inputmode="numeric"`, `autocomplete="one-time-code"`, `<label for="code">`,
		pageText(t, "en", "verify.resend.at", map[string]string{"time": hm(time.Minute), "wait": "60 s"}), `id="resend-voice"`)

	r = b.post(link+"/verify", url.Values{"code": {a.lastCode()}})
	r.want(t, "verify", 200, "You&#39;re enrolled", "&#43;12015550123")
	a.wantEnrolled("jdoe", phoneJdoe, "sms", "en")

	// The link worked once; opened again (Back, the email) it says the
	// user is enrolled and how to reset.
	b.get(link).want(t, "used link", 200, pageText(t, "en", "err.used.title", nil), pageText(t, "en", "err.used.next_any", nil))
	b.post(link+"/verify", url.Values{"code": {a.lastCode()}}).want(t, "verify again", 200, pageText(t, "en", "err.used.title", nil))
}

func TestEnrollByVoice(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("en")
	b.get(link)
	b.post(link+"/phone", url.Values{"phone": {"201-555-0123"}, "method": {"voice"}}).location(t, "call", link+"?sent=voice")
	b.get(link+"?sent=voice").want(t, "verify page", 200, pageText(t, "en", "notice.sent.voice", nil))
	ms := a.messages()
	if call := ms[len(ms)-1]; call.Kind != enroll.KindCall || call.To != phoneJdoe {
		t.Fatalf("queued %+v, want a call to %s", call, phoneJdoe)
	}
	b.post(link+"/verify", url.Values{"code": {a.lastCode()}}).want(t, "verify", 200, `id="done"`)
	a.wantEnrolled("jdoe", phoneJdoe, "voice", "en")
}

var secretRE = regexp.MustCompile(`<code id="secret"[^>]*>([A-Z2-7 ]+)</code>`)

func TestEnrollByApp(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("asmith")
	b := a.browser("en")
	b.get(link).want(t, "phone page", 200, `value=""`) // no mobile in the directory
	b.post(link+"/phone", url.Values{"phone": {"+33 6 12 34 56 78"}, "method": {"app"}}).location(t, "app", link+"/app")
	r := b.get(link + "/app")
	r.want(t, "app page", 200, `<img id="qr"`, `src="`+link+`/qr.png"`, `autocomplete="one-time-code"`)
	if n := len(a.messages()); n != 0 {
		t.Fatalf("the app set-up queued %d messages", n)
	}
	// The enrollment page leads back to the app set-up under way.
	b.get(link).location(t, "page during app set-up", link+"/app")

	m := secretRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no secret on the page:\n%s", r.body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	if !regexp.MustCompile(`^(\S{4} )+\S{1,4}$`).MatchString(m[1]) {
		t.Errorf("secret %q is not written in groups of four", m[1])
	}

	qr := b.get(link + "/qr.png")
	if qr.code != 200 || qr.header.Get("Content-Type") != "image/png" || qr.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("qr.png: %d %v", qr.code, qr.header)
	}
	if _, err := png.DecodeConfig(strings.NewReader(qr.body)); err != nil {
		t.Fatalf("qr.png is not a PNG: %v", err)
	}

	b.post(link+"/app", url.Values{"code": {"000000"}}).want(t, "wrong app code", 422,
		pageText(t, "en", "err.code.wrong", nil), pageText(t, "en", "attempts.other", map[string]string{"count": "4"}), `<img id="qr"`)
	code, err := totp.GenerateCode(secret, a.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.post(link+"/app", url.Values{"code": {code}}).want(t, "app code", 200, `id="done"`)
	a.wantEnrolled("asmith", phoneFR, "app", "en")
	if qr := b.get(link + "/qr.png"); qr.code != 404 {
		t.Fatalf("qr.png of a used link: %d", qr.code)
	}
}

// Every error of the service gets its own message, in the page's language,
// on the field it is about, with the status that says what happened.
func TestEnrollErrorMessages(t *testing.T) {
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			a := newEnrollApp(t, func(x appTuning) { x.settings.AllowedCountries = []string{"US", "FR"} })
			txt := func(key string, args map[string]string) string { return pageText(t, lang, key, args) }
			// Someone else already owns phoneFR.
			other := a.activate("mdupont")
			ob := a.browser(lang)
			ob.get(other)
			ob.post(other+"/phone", url.Values{"phone": {phoneFR}, "method": {"sms"}})
			ob.post(other+"/verify", url.Values{"code": {a.lastCode()}}).want(t, "other user enrolls", 200)

			link := a.activate("jdoe")
			b := a.browser(lang)
			b.get(link).want(t, "page", 200, `<html lang="`+lang+`">`)
			phoneCases := []struct {
				name, phone, method string
				code                int
				text                string
				onField             bool
			}{
				{"empty", "", "sms", 422, txt("err.phone.empty", nil), true},
				{"not a number", "call me", "sms", 422, txt("err.phone.not_number", nil), true},
				{"invalid in region", "201 555 012", "sms", 422, txt("err.phone.invalid", map[string]string{
					"region": map[string]string{"en": "United States", "fr": "États-Unis"}[lang]}), true},
				{"country not allowed", "+44 20 7946 0958", "sms", 422, txt("err.phone.country", nil), true},
				{"taken", "+33 6 12 34 56 78", "sms", 409, txt("err.phone.taken", nil), true},
				{"taken (app)", phoneFR, "app", 409, txt("err.phone.taken", nil), true},
				{"no method", phoneJdoe, "", 422, txt("err.method", nil), false},
			}
			for _, c := range phoneCases {
				r := b.post(link+"/phone", url.Values{"phone": {c.phone}, "method": {c.method}})
				r.want(t, c.name, c.code, c.text, `role="alert"`, `value="`+htmlText(c.phone)+`"`)
				if c.onField && !strings.Contains(r.body, `aria-describedby="phone-error phone-hint"`) {
					t.Errorf("%s: the error is not tied to the phone field:\n%s", c.name, r.body)
				}
			}
			if n := len(a.messages()); n != 2 { // the other user's code and confirmation, nothing more
				t.Fatalf("refused numbers queued messages: %d in the outbox", n)
			}

			// Code errors.
			b.post(link+"/verify", url.Values{"code": {"123456"}}).want(t, "no code yet", 409, txt("err.code.none", nil), `id="phone"`)
			b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}}).location(t, "send", link+"?sent=sms")
			b.post(link+"/verify", url.Values{"code": {" "}}).want(t, "empty code", 422, txt("err.code.empty", nil),
				`aria-describedby="code-error code-hint"`)
			b.post(link+"/resend", url.Values{"method": {"sms"}}).want(t, "resend too early", 429,
				txt("err.resend", map[string]string{"time": hm(time.Minute), "wait": "60 s"}))
			b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"voice"}}).want(t, "new send too early", 429,
				txt("err.resend", map[string]string{"time": hm(time.Minute), "wait": "60 s"}), `id="phone"`)
			b.post(link+"/resend", url.Values{"method": {"fax"}}).want(t, "resend, bad method", 422, txt("err.method", nil))

			good := a.lastCode()
			wrong := "000000"
			if good == wrong {
				wrong = "111111"
			}
			for left := 4; left >= 1; left-- {
				key := "attempts.other"
				if left == 1 {
					key = "attempts.one"
				}
				b.post(link+"/verify", url.Values{"code": {wrong}}).want(t, "wrong code", 422,
					txt("err.code.wrong", nil), txt(key, map[string]string{"count": fmt.Sprint(left)}), `aria-invalid="true"`)
			}
			r := b.post(link+"/verify", url.Values{"code": {wrong}})
			r.want(t, "fifth wrong code", 429, txt("err.locked.title", nil), txt("err.locked.text", map[string]string{"time": hm(10 * time.Minute)}))
			b.post(link+"/verify", url.Values{"code": {good}}).want(t, "right code while locked", 429, txt("err.locked.title", nil))
			b.get(link).want(t, "page while locked", 200, txt("err.locked.text", map[string]string{"time": hm(10 * time.Minute)}))
			b.post(link+"/resend", url.Values{"method": {"sms"}}).want(t, "resend while locked", 429, txt("err.locked.title", nil))

			a.clock.Advance(10 * time.Minute)
			b.post(link+"/verify", url.Values{"code": {good}}).want(t, "code killed by the lockout", 422, txt("err.code.expired", nil))
			b.post(link+"/resend", url.Values{"method": {"sms"}}).location(t, "resend after the lockout", link+"?sent=sms")
			fresh := a.lastCode()
			a.clock.Advance(41 * time.Minute)
			b.post(link+"/verify", url.Values{"code": {fresh}}).want(t, "expired code", 422, txt("err.code.expired", nil))

			// The link itself.
			b.get("/enroll/"+strings.Repeat("A", 43)).want(t, "unknown link", 404, txt("err.unknown.title", nil), txt("err.new_link", nil))
			b.get("/enroll/"+strings.Repeat("A", 300)).want(t, "junk link", 404, txt("err.unknown.title", nil))
			a.clock.Advance(7 * 24 * time.Hour)
			for _, r := range []answer{b.get(link), b.get(link + "/app"), b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}})} {
				r.want(t, "expired link", 410, txt("err.expired.title", nil), txt("err.expired.next", nil))
				if strings.Contains(r.body, "John") || strings.Contains(r.body, "jdoe") || strings.Contains(r.body, "2015550123") {
					t.Fatalf("the expired-link page tells about the user:\n%s", r.body)
				}
			}
		})
	}
}

func TestEnrollMethodOff(t *testing.T) {
	a := newEnrollApp(t, func(x appTuning) { x.settings.Methods = []string{"sms"} })
	link := a.activate("jdoe")
	b := a.browser("en")
	r := b.get(link)
	r.want(t, "sms only", 200, `<input type="hidden" name="method" value="sms">`)
	if strings.Contains(r.body, `type="radio"`) {
		t.Fatal("a single method is offered as a choice")
	}
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"voice"}}).want(t, "voice off", 422,
		pageText(t, "en", "err.method_off", nil), `id="page-error"`)
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"app"}}).want(t, "app off", 422,
		pageText(t, "en", "err.method_off", nil))
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}}).location(t, "sms", link+"?sent=sms")
	r = b.get(link)
	if strings.Contains(r.body, "resend-voice") || !strings.Contains(r.body, "resend-sms") {
		t.Fatalf("verify page offers turned-off methods:\n%s", r.body)
	}
	b.post(link+"/resend", url.Values{"method": {"voice"}}).want(t, "resend by voice", 422, pageText(t, "en", "err.method_off", nil))
}

func TestEnrollResendAfterWait(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("en")
	b.get(link)
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}})
	first := a.lastCode()
	a.clock.Advance(61 * time.Second)
	if r := b.get(link); strings.Contains(r.body, `id="resend-at"`) {
		t.Fatalf("the wait is over but the page still shows it:\n%s", r.body)
	}
	b.post(link+"/resend", url.Values{"method": {"voice"}}).location(t, "resend by voice", link+"?sent=voice")
	if ms := a.messages(); len(ms) != 2 || ms[1].Kind != enroll.KindCall || a.lastCode() != first {
		t.Fatalf("resend: %d messages, last %+v; want a call with the same code", len(ms), ms[len(ms)-1])
	}
	b.get(link).want(t, "after the resend", 200, `id="resend-at"`,
		pageText(t, "en", "verify.resend.at", map[string]string{"time": hm(2 * time.Minute), "wait": "60 s"}))
}

// The language of the pages: the browser's on the first visit, then the
// one chosen with the form, which also sets the language of the texts.
func TestEnrollLanguage(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("fr-CA,fr;q=0.9,en;q=0.5")
	r := b.get(link)
	r.want(t, "first visit", 200, `<html lang="fr">`, "Bonjour John Doe.", `<button type="submit" class="link" name="lang" value="en" lang="en">English</button>`)
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}})
	if body := a.body(a.messages()[0]); !strings.Contains(body, "Votre code") {
		t.Fatalf("code SMS not in French: %q", body)
	}

	b.post(link+"/language", url.Values{"lang": {"en"}}).location(t, "switch", link)
	b.get(link).want(t, "after the switch", 200, `<html lang="en">`, "Enter your code", `value="fr" lang="fr">Français</button>`)
	// The choice holds although the browser still prefers French.
	b.get(link).want(t, "next visit", 200, `<html lang="en">`)
	b.post(link+"/language", url.Values{"lang": {"fr"}, "back": {"phone"}}).location(t, "switch back", link+"?step=phone")
	b.get(link+"?step=phone").want(t, "phone page again", 200, `<html lang="fr">`, `name="back" value="phone"`)
	b.post(link+"/language", url.Values{"lang": {"de"}, "back": {"https://evil.example"}}).location(t, "unknown language", link)

	// A page that belongs to no enrollment speaks the language last seen.
	b.get("/enroll/"+strings.Repeat("B", 43)).want(t, "unknown link", 404, `<html lang="fr">`)
	// A new browser with no preference gets the default.
	a.browser("").get("/enroll/"+strings.Repeat("B", 43)).want(t, "unknown link", 404, `<html lang="en">`)
}

func TestEnrollCSRF(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("en")
	b.get(link)
	for _, c := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{"phone": {phoneJdoe}, "method": {"sms"}}},
		{"wrong token", url.Values{"phone": {phoneJdoe}, "method": {"sms"}, csrfField: {"forged"}}},
	} {
		r := b.postRaw(link+"/phone", c.form)
		r.want(t, c.name, 403, pageText(t, "en", "err.csrf.title", nil), `href="`+link+`"`)
		if r.header.Get("Content-Security-Policy") != pageCSP {
			t.Errorf("%s: CSP %q", c.name, r.header.Get("Content-Security-Policy"))
		}
	}
	// Without the cookie the form's token proves nothing.
	nb := a.browser("en")
	nb.csrf = b.csrf
	nb.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}}).want(t, "no cookie", 403)
	// A cross-site post from a browser that says so is refused outright.
	req := httptest.NewRequest(http.MethodPost, link+"/language", strings.NewReader(url.Values{"lang": {"fr"}, csrfField: {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	b.do(req).want(t, "cross-site", 403)
	for _, path := range []string{"/verify", "/resend", "/app", "/language"} {
		b.postRaw(link+path, url.Values{"code": {"123456"}, "method": {"sms"}, "lang": {"fr"}}).want(t, path, 403)
	}
	if ms := a.messages(); len(ms) != 0 {
		t.Fatalf("refused posts queued %d messages", len(ms))
	}
	b.get(link).want(t, "nothing changed", 200, `<html lang="en">`, `id="phone"`)
	// No route, nothing to protect: a 404, not a 403. No cookie on /healthz.
	b.postRaw("/nope", url.Values{"a": {"b"}}).want(t, "unknown route", 404)
	if r := b.get("/healthz"); r.header.Get("Set-Cookie") != "" {
		t.Errorf("/healthz sets a cookie: %q", r.header.Get("Set-Cookie"))
	}
	// The webhook is not a form: no token.
	if r := serve(t, Deps{SMSWebhook: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })},
		httptest.NewRequest(http.MethodPost, "/sms/twilio", strings.NewReader("Body=HELP"))); r.Code != 204 {
		t.Fatalf("webhook behind CSRF: %d", r.Code)
	}
}

// Every form posts the CSRF token, every visible field has a label.
func TestEnrollPagesAccessible(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("en")
	var pages []answer
	pages = append(pages, b.get(link))
	pages = append(pages, b.post(link+"/phone", url.Values{"phone": {"x"}, "method": {"sms"}}))
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}})
	pages = append(pages, b.get(link), b.post(link+"/verify", url.Values{"code": {"1"}}))
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"app"}})
	pages = append(pages, b.get(link+"/app"), b.get(link+"?step=phone"))
	inputRE := regexp.MustCompile(`<input id="([^"]+)"[^>]*type="(tel|text|radio)"|<input type="radio" id="([^"]+)"`)
	for i, p := range pages {
		if !strings.Contains(p.body, `<html lang="en">`) || !strings.Contains(p.body, `<main id="main">`) {
			t.Errorf("page %d: no lang or main landmark", i)
		}
		if f, c := strings.Count(p.body, `<form method="post"`)+strings.Count(p.body, `<form class="lang" method="post"`),
			strings.Count(p.body, `name="csrf_token" value="`+b.csrf+`"`); f == 0 || f != c {
			t.Errorf("page %d: %d forms, %d CSRF fields", i, f, c)
		}
		for _, m := range inputRE.FindAllStringSubmatch(p.body, -1) {
			id := m[1] + m[3]
			if !strings.Contains(p.body, `<label for="`+id+`">`) {
				t.Errorf("page %d: field %q has no label", i, id)
			}
		}
		if strings.Contains(p.body, "[missing message") || strings.Contains(p.body, "?}") {
			t.Errorf("page %d: a text is missing:\n%s", i, p.body)
		}
	}
}

func TestEnrollRateLimits(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	b := a.browser("en")
	b.get(link)
	for i := range postsPerToken {
		if r := b.post(link+"/language", url.Values{"lang": {"en"}}); r.code != 303 {
			t.Fatalf("post %d: %d", i+1, r.code)
		}
	}
	r := b.post(link+"/language", url.Values{"lang": {"fr"}})
	r.want(t, "over the per-link limit", 429, pageText(t, "en", "err.rate.title", nil))
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Another address does not lift the limit of the link.
	b.ip = "192.0.2.99"
	b.post(link+"/language", url.Values{"lang": {"fr"}}).want(t, "other address", 429)
	a.clock.Advance(postWindow)
	b.post(link+"/language", url.Values{"lang": {"fr"}}).location(t, "after the window", link)

	// Per address, across links.
	c := a.browser("en")
	c.ip = "198.51.100.7"
	c.get(link)
	for i := range postsPerIP {
		other := fmt.Sprintf("%043d", i) // the form token of a page of that link
		tok := csrfTokenFor(c.cookies[csrfCookie].Value, "enroll:"+other)
		if r := c.post("/enroll/"+other+"/language", url.Values{"lang": {"en"}, csrfField: {tok}}); r.code != 404 {
			t.Fatalf("post %d: %d", i+1, r.code)
		}
	}
	c.post(link+"/language", url.Values{"lang": {"en"}}).want(t, "over the per-address limit", 429)
}

// brokenLimiter is the store with a rate limiter that fails.
type brokenLimiter struct{ Store }

func (brokenLimiter) Allow(context.Context, string, time.Time, time.Duration, int) (bool, error) {
	return false, errors.New("disk full")
}

func TestEnrollLimiterDownRefuses(t *testing.T) {
	a := newEnrollApp(t, func(x appTuning) { x.web.Store = brokenLimiter{x.web.Store} })
	link := a.activate("jdoe")
	b := a.browser("en")
	b.get(link)
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}}).want(t, "limiter down", 500,
		pageText(t, "en", "err.internal.title", nil))
	if len(a.messages()) != 0 {
		t.Fatal("a code was sent without a rate-limit check")
	}
	if !strings.Contains(a.webLog.String(), "disk full") {
		t.Fatalf("the failure is not logged: %s", a.webLog)
	}
}

// The token is in the path of every page; it must reach no log.
func TestEnrollLogsNeverHoldTheToken(t *testing.T) {
	a := newEnrollApp(t)
	link := a.activate("jdoe")
	token := strings.TrimPrefix(link, "/enroll/")
	b := a.browser("fr")
	b.get(link)
	b.post(link+"/phone", url.Values{"phone": {"nope"}, "method": {"sms"}})
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"sms"}})
	b.get(link + "?sent=sms")
	b.post(link+"/verify", url.Values{"code": {"000000"}})
	b.postRaw(link+"/verify", url.Values{"code": {"000000"}})
	b.post(link+"/language", url.Values{"lang": {"en"}})
	b.post(link+"/phone", url.Values{"phone": {phoneJdoe}, "method": {"app"}})
	b.get(link + "/app")
	b.get(link + "/qr.png")
	b.get(link + "/nope")
	b.post(link+"/verify", url.Values{"code": {a.lastCode()}})
	b.get(link)
	logs := a.webLog.String() + a.svcLog.String()
	if strings.Contains(logs, token) || strings.Contains(logs, token[:12]) {
		t.Fatalf("a log holds the token:\n%s", logs)
	}
	for _, route := range []string{`"route":"/enroll/:token"`, `"route":"/enroll/:token/phone"`, `"route":"/enroll/:token/qr.png"`} {
		if !strings.Contains(a.webLog.String(), route) {
			t.Errorf("access log lacks %s", route)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	a := newEnrollApp(t)
	b := a.browser("")
	r := b.get("/static/site.css")
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || !strings.Contains(r.body, ":focus-visible") {
		t.Fatalf("site.css: %d %v", r.code, r.header)
	}
	if r.header.Get("Cache-Control") != "public, max-age=3600" || r.header.Get("Set-Cookie") != "" {
		t.Errorf("site.css headers: %v", r.header)
	}
	// The page links the stylesheet with its content hash: cached for long.
	link := a.activate("jdoe")
	m := regexp.MustCompile(`href="(/static/site.css\?v=[0-9a-f]+)"`).FindStringSubmatch(b.get(link).body)
	if m == nil {
		t.Fatal("no versioned stylesheet link")
	}
	if r := b.get(m[1]); r.code != 200 || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
		t.Fatalf("%s: %d %v", m[1], r.code, r.header)
	}
	for _, p := range []string{"/static/", "/static/nope.css", "/static/../pages/layout.html", "/static/%2e%2e/pages/text_en.json"} {
		if r := b.get(p); r.code != 404 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
}

func TestNoEnrollmentSiteWithoutItsDeps(t *testing.T) {
	rec := serve(t, Deps{}, httptest.NewRequest(http.MethodGet, "/enroll/"+strings.Repeat("A", 43), nil))
	if rec.Code != 404 {
		t.Fatalf("GET /enroll/… without the site: %d", rec.Code)
	}
}

func TestWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1 s", 200 * time.Millisecond: "1 s", 45 * time.Second: "45 s", 59500 * time.Millisecond: "60 s",
		2 * time.Minute: "120 s", 2*time.Minute + time.Second: "3 min", 10 * time.Minute: "10 min",
	} {
		if got := wait(d); got != want {
			t.Errorf("wait(%v) = %q, want %q", d, got, want)
		}
	}
	if got := groups("JBSWY3DPEHPK3PXP"); got != "JBSW Y3DP EHPK 3PXP" {
		t.Errorf("groups = %q", got)
	}
}
