package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// page is one answer of the running server.
type page struct {
	code   int
	header http.Header
	body   string
}

func getPage(t *testing.T, addr, path, lang string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", lang)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header, string(body)}
}

// waitStatus polls path until it answers code; the outage and the
// recovery take the store's probe and etcd's election, so only a bound
// that means "never" fails the test.
func waitStatus(t *testing.T, addr, path string, code int) page {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p := getPage(t, addr, path, "en")
		if p.code == code {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never answered %d; last %d:\n%s", path, code, p.code, p.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeQuorumLoss (issue 17 item 5): a real serve on a three-member
// etcd cluster. /healthz lists the three members; with two members killed
// the node refuses work: pages answer 503 with "try again in a few
// minutes" in the visitor's language (Retry-After), the API 503 JSON, an
// SMS a 200 TwiML "briefly unavailable" in the command's language, and
// /healthz says degraded with the store's state. With the members
// restarted it answers again by itself, without a restart.
func TestServeQuorumLoss(t *testing.T) {
	cluster := etcdlab.New(t, etcdlab.Options{Members: 3})
	c := offlineConfig()
	c.Listen = freePort(t)
	f := writeEtcdConfig(t, c, cluster, "/replyreset/", "")
	srv := startServe(t, f, c.Listen)
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	sid := 0
	sms := func(body string) []string {
		t.Helper()
		sid++
		form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", 0x9e0+sid)}, "From": {"+12015550166"},
			"To": {testFromNumber}, "Body": {body}}
		status, texts, raw, err := twiliotest.PostSMS(t.Context(), httpClient, "http://"+c.Listen+"/sms/twilio",
			testPublicURL+"/sms/twilio", testAuthToken, form)
		if err != nil || status != http.StatusOK {
			t.Fatalf("SMS %q: %d %v\n%s", body, status, err, raw)
		}
		return texts
	}
	health := func() (int, storeState) {
		t.Helper()
		p := getPage(t, c.Listen, "/healthz", "en")
		var b struct{ Store storeState }
		if err := json.Unmarshal([]byte(p.body), &b); err != nil {
			t.Fatalf("/healthz: %v\n%s", err, p.body)
		}
		return p.code, b.Store
	}

	if p := getPage(t, c.Listen, "/", "en"); p.code != http.StatusOK {
		t.Fatalf("start page with the cluster up: %d\n%s", p.code, p.body)
	}
	if _, st := health(); !st.OK || st.Backend != "etcd" || len(st.Members) != 3 || st.Reachable == nil || *st.Reachable != 3 ||
		st.leaders() != 1 {
		t.Errorf("/healthz store with the cluster up = %+v; want ok, 3 members reachable, one leader", st)
	}
	if texts := sms("HELP"); len(texts) != 1 || texts[0] != catalog.Text("en", "sms.help", nil) {
		t.Errorf("HELP with the cluster up: %q", texts)
	}

	cluster.Member(0).Kill()
	cluster.Member(1).Kill()
	p := waitStatus(t, c.Listen, "/", http.StatusServiceUnavailable)
	for _, lang := range []string{"en", "fr"} {
		p = getPage(t, c.Listen, "/", lang)
		if p.code != http.StatusServiceUnavailable || !strings.Contains(p.body, pages.Text(lang, "err.store.text", nil)) ||
			!strings.Contains(p.header.Get("Content-Type"), "text/html") || p.header.Get("Retry-After") == "" {
			t.Errorf("start page in %s without quorum: %d %v\n%s", lang, p.code, p.header, p.body)
		}
	}
	if p := getPage(t, c.Listen, "/admin/login", "en"); p.code != http.StatusServiceUnavailable ||
		!strings.Contains(p.body, pages.Text("en", "err.store.text", nil)) {
		t.Errorf("admin sign-in without quorum: %d\n%s", p.code, p.body)
	}
	if p := getPage(t, c.Listen, "/api/v1/enrollments", "en"); p.code != http.StatusServiceUnavailable ||
		!strings.Contains(p.body, `"store_unavailable"`) || !strings.Contains(p.body, "try again in a few minutes") {
		t.Errorf("API without quorum: %d\n%s", p.code, p.body)
	}
	for body, lang := range map[string]string{"DEBLOQUER": "fr", "RESET": "en", "status": "en"} {
		if texts := sms(body); len(texts) != 1 || texts[0] != catalog.Text(lang, "sms.store_down", nil) {
			t.Errorf("SMS %q without quorum: %q; want %q", body, texts, catalog.Text(lang, "sms.store_down", nil))
		}
	}
	if code, st := health(); code != http.StatusServiceUnavailable || st.OK || len(st.Members) != 3 ||
		st.Reachable == nil || *st.Reachable != 1 || st.MembersError == "" {
		t.Errorf("/healthz without quorum: %d %+v; want 503, the store not ok, 3 members of which 1 reachable", code, st)
	} else {
		t.Logf("/healthz store without quorum: %+v", st)
	}

	cluster.Member(0).Restart(t)
	cluster.Member(1).Restart(t)
	cluster.WaitHealthy(t)
	waitStatus(t, c.Listen, "/", http.StatusOK)
	if texts := sms("AIDE"); len(texts) != 1 || texts[0] != catalog.Text("en", "sms.help", nil) {
		t.Errorf("AIDE once the cluster is back: %q; want the help text", texts)
	}
	if code, st := health(); st.Reachable == nil || *st.Reachable != 3 || !st.OK {
		t.Errorf("/healthz once the cluster is back: %d %+v", code, st)
	}
	srv.stop(t)
}

// storeState is /healthz's "store".
type storeState struct {
	Backend   string `json:"backend"`
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	Reachable *int   `json:"reachable"`
	Members   []struct {
		Name      string `json:"name"`
		Reachable bool   `json:"reachable"`
		Leader    bool   `json:"leader"`
	} `json:"members"`
	MembersError string `json:"members_error"`
}

func (s storeState) leaders() int {
	n := 0
	for _, m := range s.Members {
		if m.Leader {
			n++
		}
	}
	return n
}
