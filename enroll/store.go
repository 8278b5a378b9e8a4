package enroll

import (
	"context"
	"errors"
	"time"
)

// Store errors, tested with errors.Is.
var (
	ErrNotFound   = errors.New("enroll: not found")
	ErrPhoneTaken = errors.New("enroll: phone number already belongs to another active enrollment")
	ErrClosed     = errors.New("enroll: store closed")
)

// Store is durable storage for enrollments, the phone index, the audit
// trail, processed webhook message IDs, opt-outs and rate-limit windows.
// Implementations must pass storetest.Run.
type Store interface {
	// PutEnrollment creates or replaces the enrollment for e.Username and
	// keeps the phone index in step in the same transaction: an active or
	// frozen enrollment owns its phone; a phone owned by another username
	// gives ErrPhoneTaken and changes nothing.
	PutEnrollment(ctx context.Context, e Enrollment) error
	Enrollment(ctx context.Context, username string) (Enrollment, error)
	// EnrollmentByPhone returns the enrollment that owns phone (E.164).
	EnrollmentByPhone(ctx context.Context, phone string) (Enrollment, error)
	// Enrollments lists all enrollments ordered by username.
	Enrollments(ctx context.Context) ([]Enrollment, error)
	// DeleteEnrollment removes the enrollment and its phone index entry.
	DeleteEnrollment(ctx context.Context, username string) error

	// AppendAudit stores ev with the next sequence number and returns it.
	AppendAudit(ctx context.Context, ev Event) (uint64, error)
	// Audit returns matching events in sequence order.
	Audit(ctx context.Context, f AuditFilter) ([]Event, error)

	// MarkMessage records a webhook MessageSid; it returns false if the
	// SID was already recorded and has not expired. Check-and-insert is atomic.
	MarkMessage(ctx context.Context, sid string, now time.Time, ttl time.Duration) (first bool, err error)

	// SetOptOut records STOP (true) or START (false) for a phone number.
	SetOptOut(ctx context.Context, phone string, optedOut bool, now time.Time) error
	OptedOut(ctx context.Context, phone string) (bool, error)

	// Allow is a sliding-window rate limiter: it records a hit for key and
	// returns true if key had fewer than limit hits within window before now.
	// A refused hit is not recorded.
	Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error)

	// Purge removes expired message IDs and rate-limit hits older than now.
	Purge(ctx context.Context, now time.Time) error

	Close() error
}
