package enroll_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// The enrollment service is tested against the real bbolt store, the real
// Sealer and the real message catalog; only the directory, the mail
// transport and the clock are stand-ins (each tested elsewhere for real),
// from enroll/enrolltest.

// t0 is on a 30-second boundary, so TOTP steps are easy to reason about.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type harness struct {
	t        testing.TB
	ctx      context.Context
	svc      *enroll.Service
	store    *bolt.Store
	sealer   *enroll.Sealer
	queue    *outbox.Queue // over store, waking notified
	clock    *enrolltest.Clock
	users    enrolltest.Users
	admins   map[string]bool // members of the admin group (API token owners)
	mailer   *enrolltest.Mailer
	renderer *enrolltest.Renderer
	catalog  *templates.Catalog
	logs     *enrolltest.LogBuffer
	notified atomic.Int32
	settings enroll.ServiceSettings
	// skipMessages and skipMails are how many outbox messages and mails
	// came before what a test checks (enrolled).
	skipMessages, skipMails int
}

// tokenOwner is the admin who owns the API tokens of the tests.
const tokenOwner = "helpdesk"

const (
	phoneJdoe  = "+12015550123"
	phoneOther = "+16135550181" // Canada
	phoneFR    = "+33612345678"
)

// newHarness builds a Service over a fresh data file. tune may change the
// deps and settings before the Service is made.
func newHarness(t testing.TB, tune ...func(*enroll.ServiceDeps, *enroll.ServiceSettings)) *harness {
	t.Helper()
	store, sealer := enrolltest.DataDir(t)
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:      t,
		ctx:    context.Background(),
		store:  store,
		sealer: sealer,
		clock:  enrolltest.NewClock(t0),
		users: enrolltest.Users{
			"jdoe":     {Username: "jdoe", DisplayName: "John Doe", Mail: "jdoe@example.com", Mobile: "(201) 555-0123"},
			"asmith":   {Username: "asmith", DisplayName: "Ann Smith", Mail: "asmith@example.com"},
			"nomail":   {Username: "nomail", DisplayName: "No Mail"},
			tokenOwner: {Username: tokenOwner, DisplayName: "Help Desk", Mail: "helpdesk@example.com"},
		},
		admins:   map[string]bool{tokenOwner: true},
		mailer:   &enrolltest.Mailer{},
		renderer: &enrolltest.Renderer{},
		catalog:  catalog,
		logs:     &enrolltest.LogBuffer{},
	}
	h.queue = outbox.NewQueue(store, sealer, func() { h.notified.Add(1) })
	deps := enroll.ServiceDeps{
		Store:       store,
		Directory:   h.users,
		TokenOwners: enrolltest.AdminUsers{Users: h.users, Admins: h.admins},
		Mailer:      h.mailer,
		Mails:       h.renderer,
		Messages:    catalog,
		Sealer:      sealer,
		Outbox:      h.queue,
		Log:         slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         h.clock.Now,
	}
	set := enroll.ServiceSettings{
		Config:          enroll.DefaultConfig(),
		PublicURL:       "https://reset.example.com",
		DefaultLanguage: "en",
		DefaultRegion:   "US",
	}
	for _, f := range tune {
		f(&deps, &set)
	}
	h.settings = set
	h.svc = enroll.NewService(deps, set)
	return h
}

// activate activates username and returns the token from the mailed link.
func (h *harness) activate(username string) string {
	h.t.Helper()
	if _, err := h.svc.Activate(h.ctx, username, "admin:root"); err != nil {
		h.t.Fatalf("Activate(%s): %v", username, err)
	}
	return h.lastToken()
}

var linkRE = regexp.MustCompile(`link=(\S+)`)

// lastToken returns the token of the newest activation link mailed.
func (h *harness) lastToken() string {
	h.t.Helper()
	sent := h.mailer.Sent()
	if len(sent) == 0 {
		h.t.Fatal("no mail was sent")
	}
	m := linkRE.FindStringSubmatch(sent[len(sent)-1].Text)
	if m == nil {
		h.t.Fatalf("no link in the last mail: %q", sent[len(sent)-1].Text)
	}
	u, err := url.Parse(m[1])
	if err != nil {
		h.t.Fatal(err)
	}
	token, ok := strings.CutPrefix(u.Path, "/enroll/")
	if !ok || u.Scheme+"://"+u.Host != "https://reset.example.com" {
		h.t.Fatalf("link %q is not https://reset.example.com/enroll/<token>", m[1])
	}
	return token
}

// messages returns the outbox, oldest first.
func (h *harness) messages() []enroll.OutboundMessage {
	h.t.Helper()
	return enrolltest.Messages(h.t, h.store)
}

// body opens a queued message's sealed body.
func (h *harness) body(m enroll.OutboundMessage) string {
	h.t.Helper()
	return enrolltest.Body(h.t, h.sealer, m)
}

// lastCode returns the code of the newest code message (SMS or call).
func (h *harness) lastCode() string {
	h.t.Helper()
	return enrolltest.LastCode(h.t, h.store, h.sealer)
}

// sendCode enters phone and sends a code by SMS, failing the test on error.
func (h *harness) sendCode(token, phone string) enroll.Page {
	h.t.Helper()
	p, err := h.svc.SendCode(h.ctx, token, phone, "sms")
	if err != nil {
		h.t.Fatalf("SendCode(%s): %v", phone, err)
	}
	return p
}

func (h *harness) activationOf(username string) enroll.Activation {
	h.t.Helper()
	a, err := h.store.ActivationByUser(h.ctx, username)
	if err != nil {
		h.t.Fatalf("ActivationByUser(%s): %v", username, err)
	}
	return a
}

func (h *harness) audit(action string) []enroll.Event {
	h.t.Helper()
	evs, err := h.store.Audit(h.ctx, enroll.AuditFilter{Action: action})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// dataFile closes the store and returns the bytes of the data file.
func (h *harness) dataFile() []byte {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatal(err)
	}
	data, err := os.ReadFile(h.store.Path())
	if err != nil {
		h.t.Fatal(err)
	}
	return data
}

// wantErr fails unless err matches want with errors.Is.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// asErr fails unless err is a *E, and returns it.
func asErr[E error](t *testing.T, what string, err error) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("%s: error %v (%T), want %T", what, err, err, target)
	}
	return target
}
