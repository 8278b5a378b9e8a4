package enrolltest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
)

// Clock is a clock the test moves by hand. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Users is a directory of a few users, keyed by username and matched
// case-insensitively; an unknown user is directory.ErrNotFound.
type Users map[string]directory.User

// FindUser implements the enrollment service's directory.
func (m Users) FindUser(_ context.Context, username string) (directory.User, error) {
	for k, u := range m {
		if strings.EqualFold(k, username) {
			return u, nil
		}
	}
	return directory.User{}, fmt.Errorf("find %q: %w", username, directory.ErrNotFound)
}

// AdminUsers is Users with an admin group: the usernames (lower case) set
// in Admins are its members. It answers the API token owner checks.
type AdminUsers struct {
	Users
	Admins map[string]bool
}

// IsAdmin reports whether username is in Admins; an unknown user is
// directory.ErrNotFound.
func (m AdminUsers) IsAdmin(ctx context.Context, username string) (bool, error) {
	u, err := m.FindUser(ctx, username)
	if err != nil {
		return false, err
	}
	return m.Admins[strings.ToLower(u.Username)], nil
}

// CheckSelfService lets every user use self-service (the privileged
// accounts are tested against real directories).
func (m Users) CheckSelfService(context.Context, directory.User) error { return nil }

// Mailer keeps every mail it is asked to send. Fail, when set, decides per
// mail whether sending fails; set it before the mail is sent.
type Mailer struct {
	Fail func(notify.Mail) error

	mu   sync.Mutex
	sent []notify.Mail
}

// Send records mail and returns Fail's verdict, if any.
func (m *Mailer) Send(_ context.Context, mail notify.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, mail)
	if m.Fail != nil {
		return m.Fail(mail)
	}
	return nil
}

// Sent returns the mails sent so far, oldest first.
func (m *Mailer) Sent() []notify.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

// RenderCall is one call of Renderer.RenderMail.
type RenderCall struct {
	Lang, Name string
	Data       map[string]string
}

// Renderer renders a mail as subject "name|lang" with the data as
// key=value lines (the HTML part the same in <pre>), and remembers each
// call. Each call is also rendered by the real templates, and fails if
// they do, so data the real mails need cannot go missing.
type Renderer struct {
	mu    sync.Mutex
	calls []RenderCall
}

var realMails = sync.OnceValues(templates.LoadMails)

// RenderMail implements the enrollment service's mail renderer.
func (r *Renderer) RenderMail(lang, name string, data map[string]string) (string, string, string, error) {
	mails, err := realMails()
	if err != nil {
		return "", "", "", err
	}
	if _, _, _, err := mails.RenderMail(lang, name, data); err != nil {
		return "", "", "", fmt.Errorf("the real %s mail: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, RenderCall{lang, name, maps.Clone(data)})
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(&b, "%s=%s\n", k, data[k])
	}
	return name + "|" + lang, b.String(), "<pre>" + b.String() + "</pre>", nil
}

// Calls returns the calls so far, oldest first.
func (r *Renderer) Calls() []RenderCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// LogBuffer is a log sink that goroutines may write while the test reads
// it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Outbox is where the enrollment service queues its SMS and calls: an
// *bolt.Store.
type Outbox interface {
	Messages(context.Context, enroll.OutboxFilter) ([]enroll.OutboundMessage, error)
}

// Messages returns the outbox, oldest first.
func Messages(t testing.TB, outbox Outbox) []enroll.OutboundMessage {
	t.Helper()
	ms, err := outbox.Messages(context.Background(), enroll.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ms)
	return ms
}

// Body opens a queued message's sealed body.
func Body(t testing.TB, sealer *enroll.Sealer, m enroll.OutboundMessage) string {
	t.Helper()
	plain, err := sealer.Open(m.Sealed, "outbox")
	if err != nil {
		t.Fatalf("message %d: open body: %v", m.ID, err)
	}
	return string(plain)
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// LastCode returns the code of the newest code message: an SMS holds it,
// a call reads it digit by digit ("1, 2, 3, …").
func LastCode(t testing.TB, outbox Outbox, sealer *enroll.Sealer) string {
	t.Helper()
	ms := Messages(t, outbox)
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Purpose != "code" {
			continue
		}
		body := Body(t, sealer, ms[i])
		if ms[i].Kind == enroll.KindCall {
			body = strings.ReplaceAll(body, ", ", "")
		}
		if c := sixDigits.FindString(body); c != "" {
			return c
		}
		t.Fatalf("no code in %q", body)
	}
	t.Fatal("no code message queued")
	return ""
}

// DataDir opens a fresh data file and key in a temporary directory, as
// serve does in data_dir, closed when the test ends.
func DataDir(t testing.TB) (*bolt.Store, *enroll.Sealer) {
	t.Helper()
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "replyreset.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sealer, err := enroll.LoadOrCreateKey(filepath.Join(dir, "replyreset.key"))
	if err != nil {
		t.Fatal(err)
	}
	return store, sealer
}
