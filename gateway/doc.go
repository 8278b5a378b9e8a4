// Package gateway owns the SMS conversation: the inbound Twilio webhook
// (signature check, replay protection, command parsing), the decisions
// that turn a command into directory work and a reply, and the SMS
// budgets every reply and send is charged to. What it sends goes through
// gateway/outbox, what it mails through gateway/notify.
//
// It must not know how the directory or the store are implemented: it
// declares the small interfaces it needs and is handed implementations.
package gateway
