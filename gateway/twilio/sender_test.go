package twilio_test

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

var (
	smsSIDRe  = regexp.MustCompile(`^SM[0-9a-f]{32}$`)
	callSIDRe = regexp.MustCompile(`^CA[0-9a-f]{32}$`)
)

// oneRequest is the only request the fake received.
func oneRequest(t *testing.T, f *twiliotest.Fake) twiliotest.Request {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake got %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func TestTwilioSMSFormFields(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mutate     func(*gateway.TwilioConfig)
		wantSender url.Values
		wantStatus string
	}{
		{"from", nil, url.Values{"From": {testkit.From}}, "queued"},
		{"messaging service", func(c *gateway.TwilioConfig) { c.From, c.MessagingServiceSID = "", testkit.ServiceSID },
			url.Values{"MessagingServiceSid": {testkit.ServiceSID}}, "accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testkit.NewFake(t)
			s := testkit.TwilioSender(t, f, nil, tc.mutate)
			body := "Your code is 481516. Ton code est 481516 — ça marche ?"
			r, err := s.SendSMS(t.Context(), "+33612345678", body)
			if err != nil {
				t.Fatalf("SendSMS: %v", err)
			}
			if !smsSIDRe.MatchString(r.ProviderID) || r.Status != tc.wantStatus {
				t.Errorf("receipt %+v, want an SM SID and status %s", r, tc.wantStatus)
			}
			req := oneRequest(t, f)
			if req.Method != http.MethodPost || req.Path != testkit.MessagesPath || !req.Authorized {
				t.Errorf("request %s %s authorized=%v, want POST %s with the account's basic auth",
					req.Method, req.Path, req.Authorized, testkit.MessagesPath)
			}
			want := url.Values{"To": {"+33612345678"}, "Body": {body}, "StatusCallback": {testkit.StatusURL}}
			for k, v := range tc.wantSender {
				want[k] = v
			}
			if !reflect.DeepEqual(req.Form, want) {
				t.Errorf("form fields\n got %v\nwant %v", req.Form, want)
			}
			if res, ok := f.Resource(r.ProviderID); !ok || res.Body != body {
				t.Errorf("fake holds %+v for %s", res, r.ProviderID)
			}
		})
	}
}

func TestTwilioBasicAuth(t *testing.T) {
	f := testkit.NewFake(t)
	s := testkit.TwilioSender(t, f, nil, func(c *gateway.TwilioConfig) { c.AuthToken = "ffffffffffffffffffffffffffffffff" })
	_, err := s.SendSMS(t.Context(), "+15550002222", "hello")
	var se *outbox.SendError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || se.Code != 20003 || se.Final {
		t.Fatalf("SendSMS with a wrong token: %#v, want a non-final 401/20003 SendError", err)
	}
	if req := oneRequest(t, f); req.Authorized {
		t.Error("the fake accepted a wrong auth token")
	}
}

type twimlDoc struct {
	XMLName xml.Name
	Verbs   []struct {
		XMLName  xml.Name
		Language string `xml:"language,attr"`
		Length   string `xml:"length,attr"`
		Text     string `xml:",chardata"`
	} `xml:",any"`
}

func TestTwilioCallTwiML(t *testing.T) {
	for _, tc := range []struct{ lang, text, wantLang, wantSaid string }{
		{"en", "Your ReplyReset code is 481516.", "en-US", "Your ReplyReset code is 4 8 1 5 1 6."},
		{"fr", "Votre code ReplyReset est 090807 <&>", "fr-FR", "Votre code ReplyReset est 0 9 0 8 0 7 <&>"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			f := testkit.NewFake(t)
			s := testkit.TwilioSender(t, f, nil, nil)
			r, err := s.Call(t.Context(), "+15550002222", tc.text, tc.lang)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if !callSIDRe.MatchString(r.ProviderID) || r.Status != "queued" {
				t.Errorf("receipt %+v, want a CA SID, queued", r)
			}
			req := oneRequest(t, f)
			if req.Path != testkit.CallsPath || !req.Authorized {
				t.Errorf("request to %s (authorized=%v), want %s", req.Path, req.Authorized, testkit.CallsPath)
			}
			doc := req.Form.Get("Twiml")
			want := url.Values{"To": {"+15550002222"}, "From": {testkit.From}, "Twiml": {doc}, "StatusCallback": {testkit.StatusURL}}
			if !reflect.DeepEqual(req.Form, want) {
				t.Errorf("form fields\n got %v\nwant %v", req.Form, want)
			}
			if !strings.HasPrefix(doc, "<Response>") {
				t.Errorf("Twiml %q does not start with <Response>", doc)
			}
			var parsed twimlDoc
			if err := xml.Unmarshal([]byte(doc), &parsed); err != nil {
				t.Fatalf("Twiml %q: %v", doc, err)
			}
			var shape []string
			for _, v := range parsed.Verbs {
				switch v.XMLName.Local {
				case "Say":
					if v.Language != tc.wantLang || v.Text != tc.wantSaid {
						t.Errorf("<Say language=%q>%s</Say>, want language %q saying %q", v.Language, v.Text, tc.wantLang, tc.wantSaid)
					}
				case "Pause":
					if v.Length != "1" {
						t.Errorf("<Pause length=%q>, want 1", v.Length)
					}
				}
				shape = append(shape, v.XMLName.Local)
			}
			if parsed.XMLName.Local != "Response" || strings.Join(shape, ",") != "Say,Pause,Say" {
				t.Errorf("TwiML %s has <%s> with %v, want <Response> with Say,Pause,Say", doc, parsed.XMLName.Local, shape)
			}
		})
	}
}

func TestTwilioCallNeedsFromNumber(t *testing.T) {
	f := testkit.NewFake(t)
	s := testkit.TwilioSender(t, f, nil, func(c *gateway.TwilioConfig) { c.From, c.MessagingServiceSID = "", testkit.ServiceSID })
	_, err := s.Call(t.Context(), "+15550002222", "code 123456", "en")
	var se *outbox.SendError
	if !errors.As(err, &se) || !se.Final {
		t.Fatalf("Call without a from number: %v, want a final SendError", err)
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("the fake got %d requests", n)
	}
}

func TestTwilioErrorMapping(t *testing.T) {
	const body = "Your new password is Zq8-kL4-pW2"
	for _, tc := range []struct {
		name         string
		status, code int
		final        bool
	}{
		{"opted out", 400, 21610, true},
		{"invalid to", 400, 21211, true},
		{"not a mobile", 400, 21614, true},
		{"other 4xx with a code", 400, 21408, true},
		{"forbidden with a code", 403, 20008, true},
		{"server error", 500, 20500, false},
		{"unavailable without code", 503, 0, false},
		{"rate limited", 429, 20429, false},
		{"bad credentials", 401, 20003, false},
		{"wrong account", 404, 20404, false},
		{"4xx without a code", 400, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testkit.NewFake(t)
			s := testkit.TwilioSender(t, f, nil, nil)
			f.FailNext(1, tc.status, tc.code)
			_, err := s.SendSMS(t.Context(), "+15550002222", body)
			var se *outbox.SendError
			if !errors.As(err, &se) {
				t.Fatalf("SendSMS: %v (%T), want a SendError", err, err)
			}
			if se.Final != tc.final || se.Status != tc.status || se.Code != tc.code {
				t.Errorf("SendError %+v, want final=%v status %d code %d", se, tc.final, tc.status, tc.code)
			}
			if strings.Contains(err.Error(), body) {
				t.Errorf("error %q holds the body", err)
			}
			// The next request goes through.
			if _, err := s.SendSMS(t.Context(), "+15550002222", body); err != nil {
				t.Errorf("SendSMS after the failure: %v", err)
			}
		})
	}
	t.Run("refused number", func(t *testing.T) {
		f := testkit.NewFake(t)
		s := testkit.TwilioSender(t, f, nil, nil)
		f.Reject("+15550003333", 400, 21610)
		_, err := s.SendSMS(t.Context(), "+15550003333", body)
		var se *outbox.SendError
		if !errors.As(err, &se) || !se.Final || se.Code != 21610 {
			t.Errorf("SendSMS to an opted-out number: %v, want final 21610", err)
		}
	})
	t.Run("invalid number, checked by the fake", func(t *testing.T) {
		f := testkit.NewFake(t)
		s := testkit.TwilioSender(t, f, nil, nil)
		_, err := s.SendSMS(t.Context(), "0612345678", body)
		var se *outbox.SendError
		if !errors.As(err, &se) || !se.Final || se.Code != 21211 {
			t.Errorf("SendSMS to a non-E.164 number: %v, want final 21211", err)
		}
	})
}

// echoServer answers every request with status and Twilio error code, its
// message echoing the posted Body as a careless provider might; paths
// records the request paths.
func echoServer(t *testing.T, status, code int, paths *[]string) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		*paths = append(*paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		msg := strings.NewReplacer(`"`, `\"`).Replace("Message too long: " + r.PostForm.Get("Body"))
		_, _ = w.Write([]byte(`{"code":` + strconv.Itoa(code) + `,"message":"` + msg + `","more_info":"x","status":` + strconv.Itoa(status) + `}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTwilioErrorNeverHoldsBody(t *testing.T) {
	var paths []string
	srv := echoServer(t, 400, 21617, &paths)
	s, err := twilio.NewSender(gateway.TwilioConfig{AccountSID: testkit.AccountSID, AuthToken: testkit.AuthToken,
		From: testkit.From, APIBaseURL: srv.URL}, testkit.PublicURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	const body = "Your new password is Zq8-kL4-pW2"
	_, err = s.SendSMS(t.Context(), "+15550002222", body)
	if err == nil || strings.Contains(err.Error(), body) || !strings.Contains(err.Error(), "[body]") {
		t.Errorf("error %v: want the echoed body replaced by [body]", err)
	}
}

func TestTwilioAPIBaseURLWithPath(t *testing.T) {
	var paths []string
	srv := echoServer(t, 500, 0, &paths)
	s, err := twilio.NewSender(gateway.TwilioConfig{AccountSID: testkit.AccountSID, AuthToken: testkit.AuthToken,
		From: testkit.From, APIBaseURL: srv.URL + "/twilio/"}, testkit.PublicURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SendSMS(t.Context(), "+15550002222", "hi")
	var se *outbox.SendError
	if !errors.As(err, &se) || se.Final || se.Status != 500 {
		t.Errorf("SendSMS: %v, want a non-final HTTP 500 SendError", err)
	}
	if want := []string{"/twilio" + testkit.MessagesPath}; !reflect.DeepEqual(paths, want) {
		t.Errorf("proxy saw paths %v, want %v", paths, want)
	}
}

func TestTwilioNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	s, err := twilio.NewSender(gateway.TwilioConfig{AccountSID: testkit.AccountSID, AuthToken: testkit.AuthToken,
		From: testkit.From, APIBaseURL: srv.URL}, testkit.PublicURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SendSMS(t.Context(), "+15550002222", "hi")
	var se *outbox.SendError
	if !errors.As(err, &se) || se.Final || se.Status != http.StatusBadGateway {
		t.Errorf("SendSMS through a proxy answering 502 in HTML: %#v, want non-final with status 502", err)
	}
}

func TestTwilioTimeouts(t *testing.T) {
	t.Run("http client timeout", func(t *testing.T) {
		f := testkit.NewFake(t)
		f.SetDelay(5 * time.Second)
		s := testkit.TwilioSender(t, f, &http.Client{Timeout: 200 * time.Millisecond}, nil)
		start := time.Now()
		_, err := s.SendSMS(t.Context(), "+15550002222", "hi")
		var se *outbox.SendError
		if !errors.As(err, &se) || se.Final {
			t.Errorf("SendSMS to a silent API: %v, want a non-final SendError", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("SendSMS took %v", d)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		f := testkit.NewFake(t)
		f.SetDelay(5 * time.Second)
		s := testkit.TwilioSender(t, f, nil, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.Call(ctx, "+15550002222", "code 123456", "en")
		var se *outbox.SendError
		if !errors.As(err, &se) || se.Final || !strings.Contains(se.Message, "no answer in time") {
			t.Errorf("Call to a silent API: %v, want a non-final timeout SendError", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Call took %v", d)
		}
	})
}

func TestTwilioVerifiesTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the request went through a certificate nobody trusts")
	}))
	defer srv.Close()
	s, err := twilio.NewSender(gateway.TwilioConfig{AccountSID: testkit.AccountSID, AuthToken: testkit.AuthToken,
		From: testkit.From, APIBaseURL: srv.URL}, testkit.PublicURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SendSMS(t.Context(), "+15550002222", "hi")
	var se *outbox.SendError
	if !errors.As(err, &se) || se.Final || !strings.Contains(se.Message, "certificate") {
		t.Errorf("SendSMS to a self-signed server: %v, want a certificate error", err)
	}
}

func TestTwilioRedact(t *testing.T) {
	f := testkit.NewFake(t)
	s := testkit.TwilioSender(t, f, nil, nil)
	r, err := s.SendSMS(t.Context(), "+15550002222", "Your new password is Zq8-kL4-pW2")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Redact(t.Context(), r.ProviderID); err != nil {
		t.Fatalf("Redact: %v", err)
	}
	res, _ := f.Resource(r.ProviderID)
	if !res.Redacted || res.Body != "" {
		t.Errorf("after Redact the fake holds %+v", res)
	}
	reqs := f.Requests()
	last := reqs[len(reqs)-1]
	wantPath := "/2010-04-01/Accounts/" + testkit.AccountSID + "/Messages/" + r.ProviderID + ".json"
	if last.Path != wantPath || !reflect.DeepEqual(last.Form, url.Values{"Body": {""}}) {
		t.Errorf("redaction request %s %v, want %s with Body=\"\"", last.Path, last.Form, wantPath)
	}
	var se *outbox.SendError
	if err := s.Redact(t.Context(), "SM"+strings.Repeat("0", 32)); !errors.As(err, &se) || se.Code != 20404 {
		t.Errorf("Redact of an unknown SID: %v, want 20404", err)
	}
}

func TestNewTwilioSenderRefusesBadSettings(t *testing.T) {
	good := gateway.TwilioConfig{AccountSID: testkit.AccountSID, AuthToken: testkit.AuthToken, From: testkit.From}
	for name, tc := range map[string]struct {
		mutate    func(*gateway.TwilioConfig)
		publicURL string
	}{
		"token with symbols": {func(c *gateway.TwilioConfig) { c.AuthToken = "abc-def" }, testkit.PublicURL},
		"no sender":          {func(c *gateway.TwilioConfig) { c.From = "" }, testkit.PublicURL},
		"bad base URL":       {func(c *gateway.TwilioConfig) { c.APIBaseURL = "ftp://x" }, testkit.PublicURL},
		"no public URL":      {func(*gateway.TwilioConfig) {}, ""},
	} {
		cfg := good
		tc.mutate(&cfg)
		if _, err := twilio.NewSender(cfg, tc.publicURL, nil); err == nil {
			t.Errorf("%s: NewTwilioSender accepted %+v", name, cfg)
		}
	}
}
