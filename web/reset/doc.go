// Package reset serves the reset from a browser (DESIGN journey 5,
// /reset): the user types a username or mail address, a 6-digit code goes
// to the account's enrolled phone (or the authenticator app's code is
// asked for), and the right code lets the user act on the account. Every
// name typed gets the same page after the same work, so the page tells no
// one who is enrolled. The reset under way lives in a sealed cookie of a
// constant size; the store holds the guards, limits and single-use marks
// that several nodes must agree on. It owns the pages and their flow, not
// the directory work (directory) nor the sending (gateway/outbox).
package reset
