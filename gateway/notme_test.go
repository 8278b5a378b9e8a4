package gateway_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/templates"
)

// zone is the "server's" time zone in these tests: UTC+2, so that a
// wrong zone shows in the mailed time.
var zone = time.FixedZone("UTC+2", 2*3600)

type fakeAdmins struct {
	mu    sync.Mutex
	users []directory.User
	err   error
}

func (a *fakeAdmins) AdminContacts(context.Context) ([]directory.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.users), a.err
}

// fakeMailer records mails; fail, when set, refuses the addresses it
// returns true for.
type fakeMailer struct {
	mu    sync.Mutex
	sent  []enroll.Mail
	fail  func(to string) bool
	tries int
}

func (m *fakeMailer) Send(_ context.Context, mail enroll.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries++
	if m.fail != nil && m.fail(mail.To) {
		return errors.New("451 try again later")
	}
	m.sent = append(m.sent, mail)
	return nil
}

func (m *fakeMailer) mails() []enroll.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

func TestNotMeAdminAlerts(t *testing.T) {
	catalog, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	mailer := &fakeMailer{}
	admins := &fakeAdmins{users: []directory.User{{Username: "a", Mail: "a@example.test"}, {Username: "A2", Mail: "A@example.test"}, {Username: "b"}}}
	alerts := gateway.NewAdminAlerts(admins, mailer, catalog, gateway.AdminAlertOptions{Language: "fr", Location: zone})
	at := time.Date(2026, 3, 12, 10, 42, 0, 0, time.UTC)
	n, err := alerts.NotifyNotMe(t.Context(), gateway.NotMeNotice{Username: "zlefevre", DisplayName: "Zoé Lefèvre", Phone: "+33612345678", At: at})
	if err != nil || n != 1 {
		t.Fatalf("NotifyNotMe = %d, %v; want 1 admin", n, err)
	}
	m := mailer.mails()[0]
	for _, want := range []string{"Zoé Lefèvre", "zlefevre", "+•••••••••78", "12 mars 2026 à 12:42"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the mail does not show %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text+m.HTML+m.Subject, "612345678") {
		t.Error("the mail shows the whole phone number")
	}

	for name, tc := range map[string]struct {
		alerts *gateway.AdminAlerts
		want   error
	}{
		"mail off":     {gateway.NewAdminAlerts(admins, nil, catalog, gateway.AdminAlertOptions{}), gateway.ErrMailOff},
		"no admins":    {gateway.NewAdminAlerts(&fakeAdmins{users: []directory.User{{Username: "b"}}}, mailer, catalog, gateway.AdminAlertOptions{}), gateway.ErrNoAdmins},
		"dir down":     {gateway.NewAdminAlerts(&fakeAdmins{err: directory.ErrUnavailable}, mailer, catalog, gateway.AdminAlertOptions{}), directory.ErrUnavailable},
		"no admin dir": {gateway.NewAdminAlerts(nil, mailer, catalog, gateway.AdminAlertOptions{}), gateway.ErrNoAdmins},
	} {
		if _, err := tc.alerts.NotifyNotMe(t.Context(), gateway.NotMeNotice{Username: "jdoe", At: at}); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}
