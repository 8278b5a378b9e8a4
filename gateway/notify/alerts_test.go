package notify_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/templates"
)

// TestAlertMail is admin.alert_mail (issue 15.3): every security alert
// goes to these addresses and to the admin group's members with a mail,
// each address once; with no admin mail in the directory, or the directory
// down, the alert still reaches them.
func TestAlertMail(t *testing.T) {
	mails, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 12, 10, 42, 0, 0, time.UTC)
	recipients := func(m *notify.DemoMailbox) []string {
		var to []string
		for _, s := range m.Mails() {
			to = append(to, s.To)
		}
		slices.Sort(to)
		return to
	}
	alertMail := []string{"security@example.test", "A@EXAMPLE.TEST", "SOC <soc@example.test>"}

	t.Run("both, deduplicated", func(t *testing.T) {
		m := notify.NewDemoMailbox(nil)
		admins := &fakeAdmins{users: []directory.User{{Username: "a", Mail: "a@example.test"}, {Username: "b"}}}
		alerts := notify.NewAdminAlerts(admins, m, mails, notify.AdminAlertOptions{AlertMail: alertMail})
		n, err := alerts.NotifyNotMe(t.Context(), notify.NotMeNotice{Username: "jdoe", At: at})
		if err != nil || n != 3 {
			t.Fatalf("NotifyNotMe = %d, %v; want 3 addresses", n, err)
		}
		if got, want := recipients(m), []string{"SOC <soc@example.test>", "a@example.test", "security@example.test"}; !slices.Equal(got, want) &&
			!slices.Equal(got, []string{"A@EXAMPLE.TEST", "SOC <soc@example.test>", "security@example.test"}) {
			t.Errorf("recipients = %q, want %q (a@ once)", got, want)
		}
		for _, s := range m.Mails() {
			if s.Kind != templates.MailNotMe || s.Username != "jdoe" {
				t.Errorf("mail kind %q about %q, want not_me about jdoe", s.Kind, s.Username)
			}
		}
	})
	t.Run("no admin has a mail", func(t *testing.T) {
		m := notify.NewDemoMailbox(nil)
		alerts := notify.NewAdminAlerts(&fakeAdmins{users: []directory.User{{Username: "b"}}}, m, mails,
			notify.AdminAlertOptions{AlertMail: alertMail[:1]})
		for name, send := range map[string]func() (int, error){
			"not me": func() (int, error) {
				return alerts.NotifyNotMe(t.Context(), notify.NotMeNotice{Username: "jdoe", At: at})
			},
			"sim swap": func() (int, error) {
				return alerts.NotifySIMSwap(t.Context(), notify.SIMSwapNotice{Username: "jdoe", At: at})
			},
			"budget": func() (int, error) {
				return alerts.NotifyBudget(t.Context(), notify.BudgetNotice{Budget: "sms.budgets.per_day", Limit: 10, At: at})
			},
			"any alert": func() (int, error) {
				return alerts.Alert(t.Context(), templates.MailNotMe, map[string]string{"display_name": "J. Doe",
					"username": "jdoe", "phone": "+12015550101", "time": "12:42"})
			},
		} {
			if n, err := send(); err != nil || n != 1 {
				t.Errorf("%s = %d, %v; want admin.alert_mail told", name, n, err)
			}
		}
		if got := recipients(m); len(got) != 4 || got[0] != "security@example.test" {
			t.Errorf("recipients = %q", got)
		}
	})
	t.Run("directory down", func(t *testing.T) {
		m := notify.NewDemoMailbox(nil)
		alerts := notify.NewAdminAlerts(&fakeAdmins{err: directory.ErrUnavailable}, m, mails,
			notify.AdminAlertOptions{AlertMail: alertMail[:1]})
		n, err := alerts.NotifyNotMe(t.Context(), notify.NotMeNotice{Username: "jdoe", At: at})
		if n != 1 || !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("NotifyNotMe = %d, %v; want alert_mail told and the directory error", n, err)
		}
	})
}

func TestNotMeAdminAlerts(t *testing.T) {
	catalog, err := templates.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	mailer := notify.NewDemoMailbox(nil)
	admins := &fakeAdmins{users: []directory.User{{Username: "a", Mail: "a@example.test"}, {Username: "A2", Mail: "A@example.test"}, {Username: "b"}}}
	alerts := notify.NewAdminAlerts(admins, mailer, catalog, notify.AdminAlertOptions{Language: "fr", Location: time.FixedZone("UTC+2", 2*3600)})
	at := time.Date(2026, 3, 12, 10, 42, 0, 0, time.UTC)
	n, err := alerts.NotifyNotMe(t.Context(), notify.NotMeNotice{Username: "zlefevre", DisplayName: "Zoé Lefèvre", Phone: "+33612345678", At: at})
	if err != nil || n != 1 {
		t.Fatalf("NotifyNotMe = %d, %v; want 1 admin", n, err)
	}
	m := mailer.Mails()[0]
	for _, want := range []string{"Zoé Lefèvre", "zlefevre", "+•••••••••78", "12 mars 2026 à 12:42"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the mail does not show %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text+m.HTML+m.Subject, "612345678") {
		t.Error("the mail shows the whole phone number")
	}

	for name, tc := range map[string]struct {
		alerts *notify.AdminAlerts
		want   error
	}{
		"mail off":     {notify.NewAdminAlerts(admins, nil, catalog, notify.AdminAlertOptions{}), notify.ErrMailOff},
		"no admins":    {notify.NewAdminAlerts(&fakeAdmins{users: []directory.User{{Username: "b"}}}, mailer, catalog, notify.AdminAlertOptions{}), notify.ErrNoAdmins},
		"dir down":     {notify.NewAdminAlerts(&fakeAdmins{err: directory.ErrUnavailable}, mailer, catalog, notify.AdminAlertOptions{}), directory.ErrUnavailable},
		"no admin dir": {notify.NewAdminAlerts(nil, mailer, catalog, notify.AdminAlertOptions{}), notify.ErrNoAdmins},
	} {
		if _, err := tc.alerts.NotifyNotMe(t.Context(), notify.NotMeNotice{Username: "jdoe", At: at}); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

// fakeAdmins lists the admin group's members, or fails with err.
type fakeAdmins struct {
	users []directory.User
	err   error
}

func (a *fakeAdmins) AdminContacts(context.Context) ([]directory.User, error) { return a.users, a.err }
