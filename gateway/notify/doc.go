// Package notify owns the notifications: the mail port (Mail, Mailer,
// MailRenderer), the notices mailed to users and the alerts fanned out to
// the admins (NOT ME, SIM swap, carrier filtering, SMS budgets, lockout
// storms).
package notify
