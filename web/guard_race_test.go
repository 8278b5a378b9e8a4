package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// The sign-in guards are atomic: 50 wrong passwords for one account sent
// at once, as real parallel HTTP requests, reach the directory at most 5
// times. The directory's own counter of the account says so (Samba AD's
// badPwdCount, OpenLDAP's pwdFailureTime values), and so does the count of
// binds the directory client made.

const parallelGuesses = 50

// httpClient is a browser over real HTTP: its cookies, and the form token
// of the last page it read.
type httpClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
	xff  string // X-Forwarded-For sent with every request, when set
}

func newHTTPClient(t *testing.T, h http.Handler) *httpClient {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &httpClient{t: t, base: srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (h *httpClient) do(method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, h.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if h.xff != "" {
		req.Header.Set("X-Forwarded-For", h.xff)
	}
	return h.c.Do(req)
}

func (h *httpClient) get(path string) {
	h.t.Helper()
	res, err := h.do(http.MethodGet, path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfRE.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		h.t.Fatalf("GET %s: %d, form token %v", path, res.StatusCode, m != nil)
	}
	h.csrf = string(m[1])
}

// post sends form with the form token; safe for concurrent use.
func (h *httpClient) post(path string, form url.Values) (int, string, error) {
	form.Set(csrfField, h.csrf)
	res, err := h.do(http.MethodPost, path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// guessAtOnce posts n sign-ins with a wrong password for username at once
// and returns how many answers each status got.
func (h *httpClient) guessAtOnce(path, username string, n int) map[int]int {
	h.t.Helper()
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			code, _, err := h.post(path, url.Values{"username": {username}, "password": {"Wrong#Guess" + strconv.Itoa(i)}})
			if err != nil {
				h.t.Error(err)
				return
			}
			mu.Lock()
			counts[code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

// directoryFailures is the directory's own count of the account's recent
// bad passwords: badPwdCount on AD, the pwdFailureTime values on OpenLDAP.
func directoryFailures(t *testing.T, lab *ldaplab.Server, dn string) int {
	t.Helper()
	attr := "pwdFailureTime"
	if lab.Dialect == ldaplab.DialectAD {
		attr = "badPwdCount"
	}
	res, err := lab.AdminConn(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s of %s: %v", attr, dn, err)
	}
	vals := res.Entries[0].GetAttributeValues(attr)
	if lab.Dialect != ldaplab.DialectAD {
		return len(vals)
	}
	if len(vals) == 0 {
		return 0
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil {
		t.Fatalf("badPwdCount of %s is %q", dn, vals[0])
	}
	return n
}

func guardLabs(t *testing.T) []*ldaplab.Server {
	return []*ldaplab.Server{ldaplab.Samba(t), ldaplab.OpenLDAP(t)}
}

func TestSignInGuardParallelGuesses(t *testing.T) {
	for _, lab := range guardLabs(t) {
		t.Run(string(lab.Dialect), func(t *testing.T) {
			t.Run("admin console", func(t *testing.T) {
				a := newAdminAppOn(t, lab)
				name, _ := a.admin("race")
				guessInParallel(t, lab, a.handler, "/admin/login", name, dnOf(t, a, name), a.binds)
			})
			t.Run("phone change", func(t *testing.T) {
				a := newChangeApp(t, lab)
				name, dn, _ := a.enrolled("race", "+12015550123", enroll.StateActive)
				guessInParallel(t, lab, a.handler, "/phone/change/signin", name, dn, a.binds)
			})
		})
	}
}

// guessInParallel posts parallelGuesses wrong passwords for the account at
// once to the sign-in form at path and checks that at most loginFailLimit
// reached the directory; the rest are refused (429).
func guessInParallel(t *testing.T, lab *ldaplab.Server, h http.Handler, path, name, dn string, binds *bindCounter) {
	t.Helper()
	c := newHTTPClient(t, h)
	c.get(strings.TrimSuffix(path, "/signin"))
	counts := c.guessAtOnce(path, name, parallelGuesses)
	n, failures := binds.n.Load(), directoryFailures(t, lab, dn)
	t.Logf("%s %s, %d parallel wrong passwords: answers %v; %d binds reached the directory; %s = %d",
		lab.Dialect, path, parallelGuesses, counts, n, failuresAttr(lab), failures)
	if n > loginFailLimit || failures > loginFailLimit {
		t.Errorf("%d binds, directory count %d; want at most %d", n, failures, loginFailLimit)
	}
	if counts[http.StatusTooManyRequests] < parallelGuesses-loginFailLimit {
		t.Errorf("answers %v: want at least %d refused (429)", counts, parallelGuesses-loginFailLimit)
	}
}

func failuresAttr(lab *ldaplab.Server) string {
	if lab.Dialect == ldaplab.DialectAD {
		return "badPwdCount"
	}
	return "pwdFailureTime values"
}
