package reset

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// TestResetTimingProbe prints how long /reset/start takes for an enrolled
// name and an unknown one (p50 and p90 over 200 tries each, interleaved),
// against Samba AD and a real data file, with the answer's floor of serve
// (startFloor): the figure the issue asks for. Nothing is asserted of the
// times (they depend on the machine); every answer must be the same
// redirect.
func TestResetTimingProbe(t *testing.T) {
	a := newApp(t, ldaplab.Samba(t))
	known := a.enrolled("rtk", "sms")
	names := []struct{ what, login string }{{"enrolled", known.name}, {"unknown", a.lab.UniqueName("rtx")}}
	const tries = 200
	took := make([][]time.Duration, len(names))
	for i := range tries {
		// The account's codes an hour would stop the sends: each round
		// is a quarter of an hour later.
		a.clock.Advance(15 * time.Minute)
		for j := range names {
			n := names[(i+j)%len(names)]
			c := a.client()
			form := url.Values{"login": {n.login}, "csrf_token": {c.token()}}
			start := time.Now()
			p := c.do(http.MethodPost, "/reset/start", form)
			took[(i+j)%len(names)] = append(took[(i+j)%len(names)], time.Since(start))
			if p.code != http.StatusSeeOther || p.location != "/reset" {
				t.Fatalf("%s: %d %q", n.what, p.code, p.location)
			}
		}
	}
	if n := len(a.messages(known.phone, "reset_web_code")); n != tries {
		t.Fatalf("%d codes sent to the enrolled name, want %d", n, tries)
	}
	p50 := make([]time.Duration, len(names))
	for j, n := range names {
		slices.Sort(took[j])
		p50[j] = took[j][tries/2]
		t.Logf("POST /reset/start, %-12s p50 %8v  p90 %8v (%d tries)", n.what, p50[j].Round(time.Microsecond),
			took[j][tries*9/10].Round(time.Microsecond), tries)
	}
	t.Logf("p50 enrolled - unknown = %v", (p50[0] - p50[1]).Round(time.Microsecond))
}
