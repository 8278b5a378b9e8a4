package lockout

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/templates"
)

// Storm accounting. More than threshold new lockouts whose lockout times
// fall within window make a storm: from the lockout that crosses the
// threshold on, no per-user text is sent, and the lockouts of the window
// that were not texted yet (the rest of the same scan) are held back too.
// The admins get one mail listing the storm's accounts. The storm ends
// once no new lockout has happened for window; texts then resume.
//
// Times are lockout times (the directory's clock), clamped to the poll
// time, so lockouts found by one scan are placed where they happened, not
// where they were seen. The state is kept in the store (monitor state
// "lockout-storm") so that a restart during a storm does not unleash the
// texts it held back.

// stormStateName is the store key of the storm state.
const stormStateName = "lockout-storm"

// maxStormAccounts bounds the accounts a storm keeps for its mail; Count
// goes on counting.
const maxStormAccounts = 500

// maxStormMailTries bounds the polls on which the storm mail is tried.
const maxStormMailTries = 10

// stormEntry is one new lockout.
type stormEntry struct {
	Username    string    `json:"u"`
	DisplayName string    `json:"n,omitempty"`
	At          time.Time `json:"t"`

	batch int // index in the batch being handled, -1 for earlier batches
}

// stormState is the storm accounting, stored as JSON.
type stormState struct {
	// Recent are the new lockouts of the last window, by time, outside a
	// storm.
	Recent []stormEntry `json:"recent,omitempty"`

	Active   bool         `json:"active,omitempty"`
	Since    time.Time    `json:"since,omitzero"` // when the storm was detected
	Last     time.Time    `json:"last,omitzero"`  // the storm's latest lockout
	Count    int          `json:"count,omitempty"`
	Accounts []stormEntry `json:"accounts,omitempty"` // at most maxStormAccounts

	// The admin mail of the latest storm, until it is sent or given up:
	// its data is fixed once the scan that started the storm is handled,
	// so that every admin, and every retry, gets the same list.
	MailPending bool              `json:"mail_pending,omitempty"`
	MailData    map[string]string `json:"mail_data,omitempty"`
	MailDone    []string          `json:"mail_done,omitempty"` // addresses told, lower-cased
	MailTries   int               `json:"mail_tries,omitempty"`
}

func decodeStorm(raw []byte) (stormState, error) {
	var s stormState
	if len(raw) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return stormState{}, err
	}
	for i := range s.Recent {
		s.Recent[i].batch = -1
	}
	for i := range s.Accounts {
		s.Accounts[i].batch = -1
	}
	return s, nil
}

func (s *stormState) encode() []byte {
	raw, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return raw
}

// stormAdd is what adding one lockout did.
type stormAdd struct {
	suppressed bool  // no text for this lockout
	started    bool  // this lockout started a storm
	held       []int // batch indexes of earlier lockouts of this scan now held back
	ended      bool  // a storm ended before this lockout (quiet for window)
	endedCount int
}

// add accounts for a new lockout e (e.At already clamped to the poll time).
func (s *stormState) add(e stormEntry, now time.Time, threshold int, window time.Duration) stormAdd {
	var r stormAdd
	if s.Active && e.At.Sub(s.Last) >= window {
		r.ended, r.endedCount = true, s.Count
		s.end()
	}
	if s.Active {
		s.Count++
		if e.At.After(s.Last) {
			s.Last = e.At
		}
		if len(s.Accounts) < maxStormAccounts {
			s.Accounts = append(s.Accounts, e)
		}
		r.suppressed = true
		return r
	}
	i, _ := slices.BinarySearchFunc(s.Recent, e.At, func(x stormEntry, t time.Time) int { return x.At.Compare(t) })
	s.Recent = slices.Insert(s.Recent, i, e)
	newest := s.Recent[len(s.Recent)-1].At
	s.Recent = slices.DeleteFunc(s.Recent, func(x stormEntry) bool { return !x.At.After(newest.Add(-window)) })
	if len(s.Recent) <= threshold {
		return r
	}
	// A storm: everything in the window belongs to it.
	s.Active, s.Since, s.Last, s.Count = true, now, newest, len(s.Recent)
	s.Accounts = slices.Clone(s.Recent[:min(len(s.Recent), maxStormAccounts)])
	s.Recent = nil
	s.MailPending, s.MailData, s.MailDone, s.MailTries = true, nil, nil, 0
	r.started, r.suppressed = true, true
	for _, x := range s.Accounts {
		if x.batch >= 0 && x.batch != e.batch {
			r.held = append(r.held, x.batch)
		}
	}
	return r
}

// quiet ends the storm when no lockout has happened for window by now,
// and forgets the recent lockouts that have left the window. It reports
// whether a storm ended, and how many lockouts it counted.
func (s *stormState) quiet(now time.Time, window time.Duration) (bool, int) {
	s.Recent = slices.DeleteFunc(s.Recent, func(x stormEntry) bool { return !x.At.After(now.Add(-window)) })
	if !s.Active || now.Sub(s.Last) < window {
		return false, 0
	}
	n := s.Count
	s.end()
	return true, n
}

// end closes the storm; a mail still pending is kept.
func (s *stormState) end() {
	s.Active, s.Count, s.Accounts, s.Recent = false, 0, nil, nil
	s.Since, s.Last = time.Time{}, time.Time{}
}

// mailData is the data of the "lockout_storm" mail for the storm so far.
func (s *stormState) mailData(msgs Catalog, lang string, loc *time.Location, window time.Duration) map[string]string {
	var b strings.Builder
	for _, a := range s.Accounts {
		b.WriteString(a.Username)
		if a.DisplayName != "" && a.DisplayName != a.Username {
			b.WriteString(" (" + a.DisplayName + ")")
		}
		b.WriteString(", " + a.At.In(loc).Format("15:04") + "\n")
	}
	if more := s.Count - len(s.Accounts); more > 0 {
		b.WriteString("… +" + strconv.Itoa(more) + "\n")
	}
	return map[string]string{
		"accounts": b.String(),
		"count":    strconv.Itoa(s.Count),
		"window":   formatWindow(msgs, lang, window),
		"time":     templates.FormatDateTime(lang, s.Since.In(loc)),
	}
}

// formatWindow words a storm window with the catalog's duration.* texts:
// "5 minutes", "90 secondes", "1 hour". A window that is no whole number
// of seconds is written as Go writes durations ("1.5s").
func formatWindow(msgs Catalog, lang string, d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		key  string
	}{{time.Hour, "duration.hours"}, {time.Minute, "duration.minutes"}, {time.Second, "duration.seconds"}} {
		if d%u.unit == 0 {
			return msgs.Plural(lang, u.key, int(d/u.unit), nil)
		}
	}
	return fmt.Sprint(d)
}
