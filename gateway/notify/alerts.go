package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/templates"
)

// NotMeNotice is what admins are told when a user answers NOT ME.
type NotMeNotice struct {
	Username    string
	DisplayName string // from the directory; the username when unknown
	Phone       string // E.164; the mail shows only its last two digits
	At          time.Time
}

// Admin alert errors, tested with errors.Is.
var (
	ErrMailOff  = errors.New("gateway: mail is not configured, so admins cannot be emailed")
	ErrNoAdmins = errors.New("gateway: no one to alert: admin.alert_mail is empty and no member of directory.admin_group has a mail address")
)

// AdminAlertOptions tune AdminAlerts; zero fields take the defaults.
type AdminAlertOptions struct {
	Language string         // of the mails (default "en": the `language` setting)
	Location *time.Location // time zone of the times in the mails (default the server's)
	Log      *slog.Logger
	// AlertMail (admin.alert_mail) get every alert too, whether or not the
	// directory can list the admins.
	AlertMail []string
}

// AdminAlerts emails the admins: the addresses of admin.alert_mail and the
// members of directory.admin_group (nested membership counts) that have a
// mail address, one message per address (the same address once). It is
// the NOT ME notifier the webhook is given; the lockout watch, the SIM
// swap check, the delivery reports and the SMS budgets send their alerts
// through it, and Alert sends any other.
type AdminAlerts struct {
	admins directory.AdminDirectory
	mailer Mailer
	mails  MailRenderer
	lang   string
	loc    *time.Location
	log    *slog.Logger
	extra  []string
}

// NewAdminAlerts wires the admin mail. A nil mailer means mail is off:
// every alert then fails with ErrMailOff (and is audited as such).
func NewAdminAlerts(admins directory.AdminDirectory, mailer Mailer, mails MailRenderer, opt AdminAlertOptions) *AdminAlerts {
	if opt.Language == "" {
		opt.Language = templates.DefaultLanguage
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &AdminAlerts{admins: admins, mailer: mailer, mails: mails, lang: opt.Language, loc: opt.Location, log: opt.Log,
		extra: opt.AlertMail}
}

// Alert mails every alert recipient the mail template name rendered with
// data (in the alerts' language) and returns how many were told. Its
// errors are those of Deliver; data["username"], when set, names the
// account the alert is about in the mail queue and its audit.
func (a *AdminAlerts) Alert(ctx context.Context, name string, data map[string]string) (int, error) {
	sent, _, err := a.deliver(ctx, name, data, nil)
	return len(sent), err
}

// AlertOnce is Alert for an alert tried again until everyone is told: it
// skips the recipients in done (lower-cased addresses) and returns those
// it told now. The lockout watch sends its storm mail with it.
func (a *AdminAlerts) AlertOnce(ctx context.Context, name string, data map[string]string, done map[string]bool) ([]string, error) {
	sent, _, err := a.deliver(ctx, name, data, done)
	return sent, err
}

// NotifyNotMe mails every admin the "not_me" alert.
func (a *AdminAlerts) NotifyNotMe(ctx context.Context, n NotMeNotice) (int, error) {
	display := n.DisplayName
	if display == "" {
		display = n.Username
	}
	sent, _, err := a.deliver(ctx, templates.MailNotMe, map[string]string{
		"display_name": display,
		"username":     n.Username,
		"phone":        n.Phone, // RenderMail masks it
		"time":         templates.FormatDateTime(a.lang, n.At.In(a.loc)),
	}, nil)
	return len(sent), err
}

// deliver renders mail name and sends it to every alert recipient whose
// address is not in done (lower-cased addresses). It returns the
// addresses it sent to, how many are still to be told, and the first
// failure: the directory cannot list the admins (admin.alert_mail are
// told all the same), mail is off, no one has an address (ErrNoAdmins),
// or some sends failed. A retry with done grown by sent tells only the
// recipients not told yet.
func (a *AdminAlerts) deliver(ctx context.Context, name string, data map[string]string, done map[string]bool) (sent []string, left int, err error) {
	if a.mailer == nil || a.mails == nil {
		return nil, 0, ErrMailOff
	}
	addrs := slices.Clone(a.extra)
	var dirErr error
	if a.admins != nil {
		users, err := a.admins.AdminContacts(ctx)
		if err != nil {
			dirErr = fmt.Errorf("list the admins: %w", err)
		}
		for _, u := range users {
			addrs = append(addrs, u.Mail)
		}
	}
	subject, text, html, err := a.mails.RenderMail(a.lang, name, data)
	if err != nil {
		return nil, 0, fmt.Errorf("render the %s mail: %w", name, err)
	}
	var to []string
	seen := map[string]bool{}
	for _, addr := range addrs {
		addr = strings.TrimSpace(addr)
		key := mailKey(addr)
		if addr == "" || seen[key] {
			continue
		}
		seen[key] = true
		if !done[key] {
			to = append(to, addr)
		}
	}
	if len(seen) == 0 {
		if dirErr != nil {
			return nil, 0, dirErr
		}
		return nil, 0, ErrNoAdmins
	}
	var errs []error
	for _, addr := range to {
		if err := a.mailer.Send(ctx, Mail{To: addr, Subject: subject, Text: text, HTML: html,
			Kind: name, Username: data["username"]}); err != nil {
			a.log.WarnContext(ctx, "admin alert: mail not sent", "mail", name, "to", addr, "err", err)
			errs = append(errs, err)
			continue
		}
		sent = append(sent, mailKey(addr))
	}
	left = len(to) - len(sent)
	if len(errs) > 0 {
		return sent, left, fmt.Errorf("%d of %d admin mails failed: %w", len(errs), len(to), errors.Join(errs...))
	}
	// The admin group could not be listed: its members are still to be told.
	return sent, 0, dirErr
}

// mailKey is the form of an address used to tell admins apart.
func mailKey(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	return strings.ToLower(addr)
}

// AlertOutcome names an admin alert failure for the audit trail:
// "mail_off" (ErrMailOff) and "no_admins" (ErrNoAdmins), which retrying
// does not mend, or "error".
func AlertOutcome(err error) string {
	switch {
	case errors.Is(err, ErrMailOff):
		return "mail_off"
	case errors.Is(err, ErrNoAdmins):
		return "no_admins"
	}
	return "error"
}
