// Package outbox owns the one durable queue of outbound messages: the one
// enqueue path every SMS, call, redaction and mail goes through (sealed
// there), and the workers that deliver them through a Sender or a
// notify.Mailer.
package outbox
