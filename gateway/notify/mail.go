package notify

import "context"

// Mail is one email to send; Text and HTML are both filled.
type Mail struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// Kind names the mail (its template: "activation", "not_me", ...) and
	// Username the account it is about, if any: the mail queue, its audit
	// and the console show them instead of the subject and the body.
	Kind     string
	Username string
}

// Mailer sends email; a nil Mailer means mail is off.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// MailRenderer renders localised emails (templates package).
type MailRenderer interface {
	// RenderMail renders template name ("activation", "enrolled") in lang.
	RenderMail(lang, name string, data map[string]string) (subject, text, html string, err error)
}
