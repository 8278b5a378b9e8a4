package enroll

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

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

// Audit actions of the held-message recovery (gateway/heldrecovery.go),
// one per held RESET message it finishes after its node died between
// holding and releasing it: sent (the password was set: the message went
// out as written), incomplete (no password was set: the user was told the
// reset did not finish) or superseded (a newer RESET of the user came
// after: canceled, its body wiped). Their detail never holds the password.
const (
	ActionHeldSent       = "reset_held_sent"
	ActionHeldIncomplete = "reset_held_incomplete"
	ActionHeldSuperseded = "reset_held_superseded"
)

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

// auditCSVHeader names the CSV columns, one per Event field.
var auditCSVHeader = []string{"seq", "time", "actor", "action", "username", "phone", "outcome", "detail", "source_ip"}

// WriteAuditCSV writes events as RFC 4180 CSV with a header row, times in
// UTC (the CLI's `audit -format csv` and the console's export). Cells that
// a spreadsheet would run as a formula are defused (csvCell).
func WriteAuditCSV(w io.Writer, events []Event) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(auditCSVHeader); err != nil {
		return err
	}
	for _, ev := range events {
		row := []string{strconv.FormatUint(ev.Seq, 10), ev.Time.UTC().Format(time.RFC3339Nano), ev.Actor, ev.Action,
			ev.Username, ev.Phone, ev.Outcome, ev.Detail, ev.SourceIP}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvCell defuses CSV injection (OWASP): a cell beginning with = + - @ (or
// a tab or carriage return, which some spreadsheets skip before one) is
// prefixed with ' so that it is shown as text, not run as a formula. The
// audit trail holds text from outside (usernames, SMS details), so this
// matters; phone numbers (+1555...) read '+1555... in the file.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
