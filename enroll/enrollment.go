package enroll

import (
	"strings"
	"time"
)

// State is the life-cycle state of an enrollment.
type State string

const (
	StatePending     State = "pending"     // activated, phone not yet verified
	StateActive      State = "active"      // phone verified; SMS commands accepted
	StateFrozen      State = "frozen"      // NOT ME or an admin froze it; commands refused
	StateDeactivated State = "deactivated" // an admin turned it off
)

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateActive, StateFrozen, StateDeactivated:
		return true
	}
	return false
}

// Enrollment links a directory username to a verified phone number.
type Enrollment struct {
	Username  string    `json:"username"`
	Phone     string    `json:"phone"` // E.164, e.g. +15555550101; empty while pending
	Language  string    `json:"language"`
	State     State     `json:"state"`
	Method    string    `json:"method,omitempty"` // sms | voice | app | helpdesk
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// VerifiedAt is when the phone was verified (zero while pending).
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// Mail is where notices go (from the directory at activation).
	Mail string `json:"mail,omitempty"`
	// TOTPSealed is the authenticator app's secret, sealed (Sealer), when
	// the user set the app up; LastTOTPStep is the last time step accepted,
	// so a code is never accepted twice.
	TOTPSealed   []byte `json:"totp_sealed,omitempty"`
	LastTOTPStep int64  `json:"last_totp_step,omitempty"`
}

// Event is one append-only audit record. It never holds a secret.
type Event struct {
	Seq      uint64    `json:"seq"` // assigned by the store, strictly increasing
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`  // "sms:+1555…", "admin:jdoe", "cli", "system"
	Action   string    `json:"action"` // e.g. "reset", "unlock", "enroll", "stop"
	Username string    `json:"username,omitempty"`
	Phone    string    `json:"phone,omitempty"`
	Outcome  string    `json:"outcome"` // "ok", "denied", "error", "rate_limited", ...
	Detail   string    `json:"detail,omitempty"`
	SourceIP string    `json:"source_ip,omitempty"`
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	Username string
	Action   string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	AfterSeq uint64    // only events with Seq > AfterSeq
	// BeforeSeq: only events with Seq < BeforeSeq (0 = no bound); with
	// Newest, the next page of a newest-first listing starts below the
	// last Seq shown.
	BeforeSeq uint64
	// Newest lists newest first (descending Seq); Limit then keeps the
	// newest matches.
	Newest bool
	Limit  int // 0 = no limit
}

// Matches reports whether ev passes every field of f except the sequence
// bounds and Limit, which a store applies with its cursor.
func (f AuditFilter) Matches(ev Event) bool {
	switch {
	case f.Username != "" && !strings.EqualFold(f.Username, ev.Username):
		return false
	case f.Action != "" && f.Action != ev.Action:
		return false
	case !f.Since.IsZero() && ev.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !ev.Time.Before(f.Until):
		return false
	}
	return true
}
