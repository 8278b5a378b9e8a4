// Package gateway owns the SMS side of the product: the inbound Twilio
// webhook (signature check, replay protection, command parsing), the
// conversations that turn a command into directory work and a reply, and
// outbound messages: the SMS and call outbox, and the mail queue every
// email goes through (MailQueue), so that no request waits on SMTP.
//
// It must not know how the directory or the store are implemented: it
// declares the small interfaces it needs and is handed implementations.
package gateway
