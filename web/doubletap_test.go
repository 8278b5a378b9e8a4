package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pquerna/otp/totp"

	"github.com/replyreset/replyreset/enroll"
)

// Double and triple submits of every enrollment form, as real parallel
// HTTP requests to a real server (a double tap, two tabs): never a 500,
// the same page for the same request, one SMS.

// tapClient is one browser: a cookie jar, no redirects followed, and the
// form token of the last page read.
type tapClient struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

func newTapClient(t *testing.T, a *enrollApp) *tapClient {
	t.Helper()
	return newTapClientOn(t, a.handler)
}

// newTapClientOn is a tapClient of a real HTTP server serving handler.
func newTapClientOn(t *testing.T, handler http.Handler) *tapClient {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &tapClient{t: t, c: c, base: srv.URL}
}

func (tc *tapClient) get(path string) (int, string) {
	tc.t.Helper()
	resp, err := tc.c.Get(tc.base + path)
	if err != nil {
		tc.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		tc.csrf = m[1]
	}
	return resp.StatusCode, string(body)
}

type tapAnswer struct {
	status   int
	location string
	body     string
}

// postTimes posts form n times at once, each with the page's form token,
// and returns the answers.
func (tc *tapClient) postTimes(n int, path string, form url.Values) []tapAnswer {
	tc.t.Helper()
	form.Set(csrfField, tc.csrf)
	out := make([]tapAnswer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := tc.c.PostForm(tc.base+path, form)
			if err != nil {
				tc.t.Errorf("POST %s: %v", path, err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			out[i] = tapAnswer{resp.StatusCode, resp.Header.Get("Location"), string(body)}
		})
	}
	close(start)
	wg.Wait()
	return out
}

func codeMessages(ms []enroll.OutboundMessage) int {
	n := 0
	for _, m := range ms {
		if m.Purpose == "code" {
			n++
		}
	}
	return n
}

func TestDoubleSubmitEnrollmentForms(t *testing.T) {
	for _, method := range []string{"sms", "voice"} {
		t.Run(method, func(t *testing.T) {
			a := newEnrollApp(t)
			link := a.activate("jdoe")
			tc := newTapClient(t, a)
			tc.get(link)
			for _, n := range []int{2, 3} {
				for i, r := range tc.postTimes(n, link+"/phone", url.Values{"phone": {"(201) 555-0123"}, "method": {method}}) {
					if r.status != http.StatusSeeOther || r.location != link+"?sent="+method {
						t.Fatalf("submit %d of %d: %d %q, want 303 to the code page\n%s", i+1, n, r.status, r.location, r.body)
					}
				}
			}
			if n := codeMessages(a.messages()); n != 1 {
				t.Fatalf("%d code messages for one number typed five times, want 1", n)
			}
			code := a.lastCode()
			tc.get(link)
			done, used := 0, 0
			for i, r := range tc.postTimes(3, link+"/verify", url.Values{"code": {code}}) {
				switch {
				case r.status == http.StatusOK && strings.Contains(r.body, `id="done"`):
					done++
				case r.status == http.StatusOK && strings.Contains(r.body, pageText(t, "en", "err.used.title", nil)):
					used++
				default:
					t.Fatalf("verify %d: %d\n%s", i+1, r.status, r.body)
				}
			}
			if done < 1 || done+used != 3 {
				t.Fatalf("%d done pages and %d enrolled pages, want one enrollment and the enrolled page", done, used)
			}
			a.wantEnrolled("jdoe", phoneJdoe, method, "en")
			enrolledSMS := 0
			for _, m := range a.messages() {
				if m.Purpose == "enrolled" {
					enrolledSMS++
				}
			}
			if enrolledSMS != 1 {
				t.Fatalf("%d confirmation SMS, want 1", enrolledSMS)
			}
		})
	}

	t.Run("app", func(t *testing.T) {
		a := newEnrollApp(t)
		link := a.activate("mdupont")
		tc := newTapClient(t, a)
		tc.get(link)
		for i, r := range tc.postTimes(3, link+"/phone", url.Values{"phone": {"(201) 555-0142"}, "method": {"app"}}) {
			if r.status != http.StatusSeeOther || r.location != link+"/app" {
				t.Fatalf("submit %d: %d %q\n%s", i+1, r.status, r.location, r.body)
			}
		}
		_, body := tc.get(link + "/app")
		secret := strings.ReplaceAll(secretRE.FindStringSubmatch(body)[1], " ", "")
		code, err := totp.GenerateCode(secret, a.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range tc.postTimes(3, link+"/app", url.Values{"code": {code}}) {
			if r.status >= 500 {
				t.Fatalf("app code %d: %d\n%s", i+1, r.status, r.body)
			}
		}
		if e := a.enrollment("mdupont"); e.State != enroll.StateActive || e.Method != "app" {
			t.Fatalf("enrollment %+v", e)
		}
		// No double submit counted as a wrong try.
		if evs, _ := a.store.Audit(t.Context(), enroll.AuditFilter{Action: "enroll_locked"}); len(evs) != 0 {
			t.Fatalf("lockout events %+v", evs)
		}
	})
}
