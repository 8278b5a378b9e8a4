// Package expiry owns the password-expiry jobs: the reminders texted
// before a directory password expires, and the worker that re-randomises
// a password texted by SMS and left unused past its TTL.
package expiry
