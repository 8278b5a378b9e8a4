package enroll

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

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
