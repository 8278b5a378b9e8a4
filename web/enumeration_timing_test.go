package web

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// TestAdminLoginEnumerationProbe signs in with a wrong password for real
// directory accounts and with names nobody has: the answers are the same
// (status and text), and the response times are measured and logged, not
// asserted (a shared CI host is too noisy for a tight bound). Each known
// account gets fewer tries than the lockout threshold, each probe its own
// address, so no guard changes the answer.
func TestAdminLoginEnumerationProbe(t *testing.T) {
	a := newAdminApp(t)
	var known, unknown []time.Duration
	want := a.text("admin.login.bad", nil)
	probe := func(username string) time.Duration {
		b := a.browser(t)
		start := time.Now()
		p := b.post("/admin/login", url.Values{"username": {username}, "password": {"Wrong#Pass1x"}})
		took := time.Since(start)
		if p.code != http.StatusUnauthorized || errorText(p.body) != want {
			t.Fatalf("%s: status %d, alert %q; want 401 and %q", username, p.code, errorText(p.body), want)
		}
		return took
	}
	for i := range 5 {
		name := a.user("enum")
		for range 3 {
			known = append(known, probe(name))
			unknown = append(unknown, probe(a.lab.UniqueName("nobody")+string(rune('a'+i))))
		}
	}
	t.Logf("wrong password, known account: median %v p90 %v; unknown account: median %v p90 %v (%d probes each)",
		quantile(known, 50), quantile(known, 90), quantile(unknown, 50), quantile(unknown, 90), len(known))
}

func quantile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(100 * time.Microsecond)
}
