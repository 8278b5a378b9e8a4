package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// normalAnswer is an answer with what legitimately differs between two
// sign-ins taken out: the typed username echoed in the form, the form
// token.
func normalAnswer(p answer) string {
	body := usernameValueRE.ReplaceAllString(p.body, `id="username" value="…"`)
	body = csrfRE.ReplaceAllString(body, `name="csrf_token" value="…"`)
	// The request ID differs for every request, whoever signs in.
	body = requestIDRE.ReplaceAllString(body, `<p id="request-id" class="hint">…</p>`)
	return fmt.Sprintf("%d\n%s", p.code, body)
}

// signInProbe is one kind of sign-in (admin console, phone change) for
// the enumeration tests.
type signInProbe struct {
	path    string
	handler http.Handler
	guard   LoginGuard
	keyOf   func(login string) string // the account's guard key
	prefix  string                    // of the address guard key
	admin   func(prefix string) (dn, username, password string)
}

// try signs in once from a fresh address with the account's guard
// cleared, so that no guard changes the answer, and times the answer.
func (s signInProbe) try(t *testing.T, ip int, login, password string) (answer, time.Duration) {
	t.Helper()
	b := newHTTPBrowser(t, s.handler, "en")
	b.ip = netip.AddrFrom4([4]byte{10, 9, byte(ip >> 8), byte(ip)}).String()
	b.get(strings.TrimSuffix(s.path, "/signin"))
	for _, k := range []string{s.keyOf(login), s.prefix + b.ip} {
		if err := s.guard.ClearFailures(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	p := b.post(s.path, url.Values{"username": {login}, "password": {password}})
	return p, time.Since(start)
}

func signInProbes(t *testing.T, lab *ldaplab.Server) map[string]signInProbe {
	a := newAdminAppOn(t, lab)
	c := newChangeApp(t, lab)
	phones := 0
	return map[string]signInProbe{
		"admin console": {path: "/admin/login", handler: a.handler, guard: a.store, keyOf: loginKey, prefix: "admin-login:ip:",
			admin: func(prefix string) (string, string, string) {
				name, password := a.admin(prefix)
				return dnOf(t, a, name), name, password
			}},
		"phone change": {path: "/phone/change/signin", handler: c.handler, guard: c.store,
			keyOf:  func(login string) string { return "phone-change:user:" + loginName(login) },
			prefix: "phone-change:ip:",
			admin: func(prefix string) (string, string, string) {
				phones++
				name, dn, password := c.enrolled(prefix, fmt.Sprintf("+1201555%04d", 2000+phones), enroll.StateActive)
				return dn, name, password
			}},
	}
}

// TestSignInLockedLikeUnknown: a wrong password for a locked, disabled or
// expired account is answered exactly as one for a name nobody has (status
// and page), on the admin console and the phone change, on Samba AD and
// OpenLDAP. The directory refuses a locked account whatever the password,
// so the right one is answered alike too, and a disabled AD account is
// outside the user filter; only the right password of an expired account
// learns why it cannot sign in.
func TestSignInLockedLikeUnknown(t *testing.T) {
	forEachLab(t, func(t *testing.T, lab *ldaplab.Server) {
		for what, s := range signInProbes(t, lab) {
			t.Run(what, func(t *testing.T) {
				ip := 0
				try := func(login, password string) answer {
					ip++
					p, _ := s.try(t, ip, login, password)
					return p
				}
				unknown := normalAnswer(try(lab.UniqueName("nobody"), "Wrong#Pass1x"))
				if !strings.HasPrefix(unknown, "401\n") && !strings.HasPrefix(unknown, "422\n") {
					t.Fatalf("unknown name: %s", unknown)
				}
				want := func(what, got string) {
					t.Helper()
					if got != unknown {
						t.Errorf("%s answered\n%.300s\nwhile an unknown name is answered\n%.300s", what, got, unknown)
					}
				}
				dn, name, password := s.admin("lk")
				lab.LockOut(t, dn)
				want("a locked account, wrong password", normalAnswer(try(name, "Wrong#Pass1x")))
				want("a locked account, right password", normalAnswer(try(name, password)))
				if lab.Dialect != ldaplab.DialectAD {
					return
				}
				// The default AD user filter leaves disabled accounts out:
				// one is nobody, whatever the password.
				dn, name, password = s.admin("ds")
				setAttr(t, lab, dn, "userAccountControl", "514")
				want("a disabled account, wrong password", normalAnswer(try(name, "Wrong#Pass1x")))
				want("a disabled account, right password", normalAnswer(try(name, password)))
				dn, name, password = s.admin("ex")
				setAttr(t, lab, dn, "accountExpires", "116444736000000000") // 1970
				want("an expired account, wrong password", normalAnswer(try(name, "Wrong#Pass1x")))
				if got := try(name, password); got.code != http.StatusForbidden && got.code != http.StatusUnprocessableEntity ||
					normalAnswer(got) == unknown {
					t.Errorf("an expired account, right password: %d %q; want the reason", got.code, errorText(got.body))
				}
			})
		}
	})
}

func setAttr(t *testing.T, lab *ldaplab.Server, dn, attr, value string) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace(attr, []string{value})
	if err := lab.AdminConn(t).Modify(m); err != nil {
		t.Fatal(err)
	}
}

// TestSignInTimingLockedVsUnknown measures, and logs, the answer times of
// a wrong password for a locked account and for a name nobody has: 200
// tries each, interleaved over 4 workers. Time is never asserted (a shared
// host is too noisy); the answers must be equal.
func TestSignInTimingLockedVsUnknown(t *testing.T) {
	const tries, workers = 200, 4
	forEachLab(t, func(t *testing.T, lab *ldaplab.Server) {
		for what, s := range signInProbes(t, lab) {
			t.Run(what, func(t *testing.T) {
				locked := make([]string, workers) // one per worker: its guard is cleared before each try
				for i := range locked {
					dn, name, _ := s.admin("tm")
					lab.LockOut(t, dn)
					locked[i] = name
				}
				var (
					mu              sync.Mutex
					lockedT, unknwT []time.Duration
					answers         = map[string]bool{}
					wg              sync.WaitGroup
				)
				for w := range workers {
					wg.Go(func() {
						for i := range tries / workers {
							ip := 2 * (w*tries + i)
							pl, dl := s.try(t, ip, locked[w], "Wrong#Pass1x")
							pu, du := s.try(t, ip+1, lab.UniqueName("nobody"), "Wrong#Pass1x")
							mu.Lock()
							lockedT, unknwT = append(lockedT, dl), append(unknwT, du)
							answers[normalAnswer(pl)], answers[normalAnswer(pu)] = true, true
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				t.Logf("%s %s, wrong password, %d tries each: locked account p50 %v p90 %v; unknown name p50 %v p90 %v",
					lab.Dialect, what, len(lockedT), quantile(lockedT, 50), quantile(lockedT, 90), quantile(unknwT, 50), quantile(unknwT, 90))
				if len(answers) != 1 {
					t.Errorf("%d different answers to a locked account and an unknown name, want 1", len(answers))
				}
			})
		}
	})
}

// TestSignInBehindProxy: behind a trusted reverse proxy (127.0.0.1, real
// HTTP), the client address comes from X-Forwarded-For; failures for one
// account and many from one address never block the right password of
// another account from that address. A forged X-Forwarded-For from a peer
// that is not a trusted proxy is ignored.
func TestSignInBehindProxy(t *testing.T) {
	lab := ldaplab.Samba(t)
	proxied := newAdminAppOn(t, lab, func(d *Deps) { d.Proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	lastLogin := func(a *adminApp) enroll.Event {
		t.Helper()
		evs := a.events("admin_login")
		if len(evs) == 0 {
			t.Fatal("no admin_login event")
		}
		return evs[len(evs)-1]
	}
	h := newHTTPClient(t, proxied.handler)
	h.xff = "203.0.113.50"
	h.get("/admin/login")
	victim, _ := proxied.admin("victim")
	for i := range loginFailLimit + 3 {
		if code, _, err := h.post("/admin/login", url.Values{"username": {victim}, "password": {"Wrong#Guess1x"}}); err != nil ||
			code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
			t.Fatalf("guess %d at %s: %d %v", i+1, victim, code, err)
		}
	}
	// The address's attempts pass addressSlowAfter: it is slowed down.
	for i := range addressSlowAfter - loginFailLimit + 1 {
		if code, _, err := h.post("/admin/login", url.Values{"username": {proxied.lab.UniqueName("spray")}, "password": {"x"}}); err != nil ||
			code != http.StatusUnauthorized {
			t.Fatalf("spray %d: %d %v", i+1, code, err)
		}
	}
	if ev := lastLogin(proxied); ev.SourceIP != "203.0.113.50" || ev.Outcome != "bad_credentials" {
		t.Fatalf("behind the trusted proxy the client is X-Forwarded-For's: %+v", ev)
	}
	// The account guessed at is blocked; another account's right password
	// from the same client still signs in.
	if code, _, _ := h.post("/admin/login", url.Values{"username": {victim}, "password": {"Admin#Pass1x"}}); code != http.StatusTooManyRequests {
		t.Fatalf("the guessed account after %d failures: %d, want 429", loginFailLimit, code)
	}
	other, password := proxied.admin("other")
	code, _, err := h.post("/admin/login", url.Values{"username": {other}, "password": {password}})
	if err != nil || code != http.StatusSeeOther {
		t.Fatalf("another account's right password from the same address: %d %v, want 303", code, err)
	}

	// The rightmost address outside the trusted proxies is the client.
	h.get("/admin/login") // signed in now: the form token of the session
	for xff, want := range map[string]string{
		"198.51.100.7, 203.0.113.51":   "203.0.113.51",
		"not-an-address, 203.0.113.5":  "203.0.113.5",
		"203.0.113.52, not-an-address": "127.0.0.1", // unreadable: nothing beyond the proxy is believed
	} {
		h.xff = xff
		h.post("/admin/login", url.Values{"username": {proxied.lab.UniqueName("hop")}, "password": {"x"}})
		if ev := lastLogin(proxied); ev.SourceIP != want {
			t.Errorf("X-Forwarded-For %q via the trusted proxy: client %q, want %q", xff, ev.SourceIP, want)
		}
	}

	// Without trusted proxies, or when the peer is not one, the header is
	// not believed: the peer is the client.
	for name, proxies := range map[string][]netip.Prefix{"none": nil, "another network": {netip.MustParsePrefix("10.0.0.0/8")}} {
		a := newAdminAppOn(t, lab, func(d *Deps) { d.Proxies = proxies })
		h := newHTTPClient(t, a.handler)
		h.xff = "203.0.113.60"
		h.get("/admin/login")
		h.post("/admin/login", url.Values{"username": {a.lab.UniqueName("spoof")}, "password": {"x"}})
		if ev := lastLogin(a); ev.SourceIP != "127.0.0.1" {
			t.Errorf("trusted proxies %s: a forged X-Forwarded-For made the client %q, want the peer 127.0.0.1", name, ev.SourceIP)
		}
	}
}

// TestClientIP: the address extraction rules, on requests as the server
// sees them.
func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		proxies []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{nil, "198.51.100.1:4000", []string{"203.0.113.1"}, "198.51.100.1"},
		{nil, "127.0.0.1:4000", []string{"203.0.113.1"}, "127.0.0.1"},
		{proxies, "198.51.100.1:4000", []string{"203.0.113.1"}, "198.51.100.1"},          // peer not a proxy
		{proxies, "127.0.0.1:4000", []string{"203.0.113.1"}, "127.0.0.1"},                // loopback not listed
		{proxies, "10.1.2.3:4000", []string{"203.0.113.1"}, "10.1.2.3"},                  // private not listed
		{proxies, "192.0.2.10:4000", nil, "192.0.2.10"},                                  // no header
		{proxies, "192.0.2.10:4000", []string{"203.0.113.1"}, "203.0.113.1"},             // one hop
		{proxies, "192.0.2.10:4000", []string{"203.0.113.1, 192.0.2.11"}, "203.0.113.1"}, // two proxies
		{proxies, "192.0.2.10:4000", []string{"6.6.6.6, 203.0.113.1"}, "203.0.113.1"},    // forged left part ignored
		{proxies, "192.0.2.10:4000", []string{"6.6.6.6", "203.0.113.1"}, "203.0.113.1"},  // two headers
		{proxies, "[2001:db8::1]:4000", []string{"2001:db8:1::2, [2001:db9::5]"}, "2001:db9::5"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if got := clientIP(tc.proxies)(req); got != tc.want {
			t.Errorf("proxies %v, peer %s, X-Forwarded-For %q: client %q, want %q", tc.proxies, tc.peer, tc.xff, got, tc.want)
		}
	}
}
