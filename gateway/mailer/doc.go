// Package mailer sends email over SMTP with go-mail; it must not render or
// decide content. It owns the SMTP session (one connection per message,
// STARTTLS or implicit TLS as mail.tls and mail.port say, AUTH PLAIN or LOGIN
// only over TLS or to this machine, one deadline for the whole session) and
// reports failures by step without ever echoing the password or the body.
// What a mail says and in which language comes from the templates package.
package mailer
