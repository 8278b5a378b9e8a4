// Package jobs runs the singleton background jobs (lockout watch, expiry
// reminders, SMS password expiry) while this process leads, and keeps each
// job to one runner at a time with a lease in the store.
package jobs
