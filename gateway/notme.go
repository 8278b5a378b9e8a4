package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// NotMeNotice is what admins are told when a user answers NOT ME.
type NotMeNotice struct {
	Username    string
	DisplayName string // from the directory; the username when unknown
	Phone       string // E.164; the mail shows only its last two digits
	At          time.Time
}

// NotMeNotifier alerts the admins of a NOT ME. The webhook calls it, when
// Settings.NotMe is set, after the enrollment is frozen; it returns how
// many admins were told.
type NotMeNotifier interface {
	NotifyNotMe(ctx context.Context, n NotMeNotice) (int, error)
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
// the NotMeNotifier the webhook is given; the lockout watch, the SIM swap
// check and the SMS budgets send their alerts through it, and Alert sends
// any other.
type AdminAlerts struct {
	admins directory.AdminDirectory
	mailer enroll.Mailer
	mails  enroll.MailRenderer
	lang   string
	loc    *time.Location
	log    *slog.Logger
	extra  []string
}

var _ NotMeNotifier = (*AdminAlerts)(nil)

// NewAdminAlerts wires the admin mail. A nil mailer means mail is off:
// every alert then fails with ErrMailOff (and is audited as such).
func NewAdminAlerts(admins directory.AdminDirectory, mailer enroll.Mailer, mails enroll.MailRenderer, opt AdminAlertOptions) *AdminAlerts {
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
// errors are those of NotifyNotMe; data["username"], when set, names the
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

// AlertOutcome names an admin alert failure for the audit trail:
// "mail_off" (ErrMailOff) and "no_admins" (ErrNoAdmins), which retrying
// does not mend, or "error".
func AlertOutcome(err error) string { return adminAlertOutcome(err) }

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
		if err := a.mailer.Send(ctx, enroll.Mail{To: addr, Subject: subject, Text: text, HTML: html,
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

// adminAlertOutcome names an admin alert failure for the audit trail.
func adminAlertOutcome(err error) string {
	switch {
	case errors.Is(err, ErrMailOff):
		return "mail_off"
	case errors.Is(err, ErrNoAdmins):
		return "no_admins"
	}
	return "error"
}

// notMeLookupTimeout bounds the directory lookup made for the admin
// mail, so the reply still leaves well within Twilio's wait.
const notMeLookupTimeout = 3 * time.Second

// notMeAccount looks the enrolled account up for the admin mail and the
// audit trail, when admins are to be alerted. It only reads: a NOT ME
// never unlocks the account, so a locked account stays locked.
func (c *conversation) notMeAccount() (u directory.User, detail string) {
	u = directory.User{Username: c.enr.Username}
	if c.w.set.NotMe == nil {
		return u, ""
	}
	ctx, cancel := context.WithTimeout(c.ctx, notMeLookupTimeout)
	defer cancel()
	found, err := c.w.dir.FindUser(ctx, c.enr.Username)
	if err != nil {
		c.w.log.WarnContext(c.ctx, "NOT ME: the directory lookup for the admin mail failed", "err", err)
		return u, "account lock state unknown: " + err.Error()
	}
	return found, "account locked: " + strconv.FormatBool(found.Locked)
}

// alertNotMe emails the admins about the NOT ME just handled, when
// Settings.NotMe is set, and audits what became of it.
func (c *conversation) alertNotMe(u directory.User) {
	notifier := c.w.set.NotMe
	if notifier == nil {
		return
	}
	username := c.enr.Username
	n, err := notifier.NotifyNotMe(c.ctx, NotMeNotice{Username: username, DisplayName: u.DisplayName, Phone: c.phone, At: c.now})
	if err != nil {
		c.w.log.ErrorContext(c.ctx, "NOT ME: admins could not be emailed", "err", err)
		c.audit("not_me_alert", username, adminAlertOutcome(err), err.Error())
		return
	}
	c.audit("not_me_alert", username, "ok", fmt.Sprintf("%d admins emailed", n))
}
