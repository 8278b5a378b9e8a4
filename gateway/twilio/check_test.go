package twilio_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/internal/testkit"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

const (
	twAccountPath = "/2010-04-01/Accounts/" + testkit.AccountSID + ".json"
	twNumbersPath = "/2010-04-01/Accounts/" + testkit.AccountSID + "/IncomingPhoneNumbers.json"
)

// checkErr runs CheckAccount and returns its *TwilioCheckError (nil when
// the check passed).
func checkErr(t *testing.T, s *twilio.Sender) (twilio.Account, *twilio.CheckError) {
	t.Helper()
	acct, err := s.CheckAccount(context.Background())
	if err == nil {
		return acct, nil
	}
	var ce *twilio.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want *twilio.CheckError", err, err)
	}
	if strings.Contains(err.Error(), testkit.AuthToken) {
		t.Errorf("the error shows the auth token: %v", err)
	}
	return acct, ce
}

func TestTwilioCheckCredentialsIsCheckAccount(t *testing.T) {
	f := testkit.NewFake(t)
	f.SetOwnedNumbers(testkit.From)
	s := testkit.TwilioSender(t, f, nil, nil)
	if err := s.CheckCredentials(context.Background()); err != nil {
		t.Fatalf("CheckCredentials: %v", err)
	}
	f.SetOwnedNumbers()
	err := s.CheckCredentials(context.Background())
	_, want := s.CheckAccount(context.Background())
	var ce *twilio.CheckError
	if !errors.As(err, &ce) || want == nil || err.Error() != want.Error() {
		t.Errorf("CheckCredentials = %v, want the error of CheckAccount: %v", err, want)
	}
}

func TestTwilioCheckOK(t *testing.T) {
	f := testkit.NewFake(t)
	f.SetOwnedNumbers("+15550009999", testkit.From, "+155500011112")
	s := testkit.TwilioSender(t, f, nil, nil)
	acct, ce := checkErr(t, s)
	if ce != nil {
		t.Fatalf("check failed: %v", ce)
	}
	want := twilio.Account{SID: testkit.AccountSID, FriendlyName: "ReplyReset test account", Type: "Full",
		Status: "active", From: testkit.From, FromSMS: true, FromVoice: true}
	if acct != want {
		t.Errorf("account %+v\nwant %+v", acct, want)
	}
	if acct.Trial() {
		t.Error("a full account counts as a trial")
	}

	// Two reads, authenticated, nothing sent.
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2: %+v", len(reqs), reqs)
	}
	if r := reqs[0]; r.Method != http.MethodGet || r.Path != twAccountPath || !r.Authorized {
		t.Errorf("first request %s %s (authorized %v), want GET %s", r.Method, r.Path, r.Authorized, twAccountPath)
	}
	if r := reqs[1]; r.Method != http.MethodGet || r.Path != twNumbersPath || r.Form.Get("PhoneNumber") != testkit.From || !r.Authorized {
		t.Errorf("second request %s %s %v, want GET %s?PhoneNumber=%s", r.Method, r.Path, r.Form, twNumbersPath, testkit.From)
	}
	if n := len(f.Resources()); n != 0 {
		t.Errorf("the check created %d messages or calls", n)
	}
}

func TestTwilioCheckMessagingServiceOnly(t *testing.T) {
	f := testkit.NewFake(t)
	s := testkit.TwilioSender(t, f, nil, func(c *gateway.TwilioConfig) { c.From, c.MessagingServiceSID = "", testkit.ServiceSID })
	acct, ce := checkErr(t, s)
	if ce != nil {
		t.Fatalf("check failed: %v", ce)
	}
	if acct.From != "" || acct.MessagingServiceSID != testkit.ServiceSID {
		t.Errorf("account %+v", acct)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d requests, want only the account's: without from there is no number to look up", n)
	}
}

func TestTwilioCheckTrialAccount(t *testing.T) {
	f := testkit.NewFake(t)
	f.SetOwnedNumbers(testkit.From)
	f.SetAccount("", "Trial")
	acct, ce := checkErr(t, testkit.TwilioSender(t, f, nil, nil))
	if ce != nil || !acct.Trial() {
		t.Fatalf("trial account: %+v, %v; want OK and Trial()", acct, ce)
	}
}

func TestTwilioCheckFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *twiliotest.Fake)
		mutate  func(*gateway.TwilioConfig)
		step    string
		status  int
		code    int
		reasons []string
	}{
		{name: "wrong auth token",
			mutate: func(c *gateway.TwilioConfig) { c.AuthToken = "ffffffffffffffffffffffffffffffff" },
			step:   twilio.CheckStepAccount, status: 401, code: 20003,
			reasons: []string{"auth token or account SID wrong", "sms.twilio.auth_token"}},
		{name: "wrong account SID",
			mutate: func(c *gateway.TwilioConfig) { c.AccountSID = "AC99999999999999999999999999999999" },
			step:   twilio.CheckStepAccount, status: 401, code: 20003,
			reasons: []string{"auth token or account SID wrong", "sms.twilio.account_sid"}},
		{name: "account not found",
			setup: func(f *twiliotest.Fake) { f.FailNext(1, 404, 20404) },
			step:  twilio.CheckStepAccount, status: 404, code: 20404,
			reasons: []string{"account not found", testkit.AccountSID, "sms.twilio.api_base_url"}},
		{name: "account suspended",
			setup:   func(f *twiliotest.Fake) { f.SetOwnedNumbers(testkit.From); f.SetAccount("suspended", "") },
			step:    twilio.CheckStepAccount,
			reasons: []string{"account " + testkit.AccountSID + " is suspended, not active"}},
		{name: "from not owned",
			setup:   func(f *twiliotest.Fake) { f.SetOwnedNumbers("+15550002222") },
			step:    twilio.CheckStepFrom,
			reasons: []string{"sms.twilio.from " + testkit.From + " is not a phone number of account " + testkit.AccountSID}},
		{name: "from only a partial match",
			setup:   func(f *twiliotest.Fake) { f.SetOwnedNumbers(testkit.From + "2") },
			step:    twilio.CheckStepFrom,
			reasons: []string{"is not a phone number of account"}},
		{name: "from cannot text",
			setup: func(f *twiliotest.Fake) {
				f.SetOwnedNumbers(testkit.From)
				f.SetNumberCapabilities(testkit.From, false, true)
			},
			step:    twilio.CheckStepFrom,
			reasons: []string{"sms.twilio.from " + testkit.From + " belongs to the account but cannot send SMS"}},
		{name: "number list fails",
			setup: func(f *twiliotest.Fake) {
				f.SetOwnedNumbers(testkit.From)
				f.FailNext(2, 500, 20500) // the account read fails too: the check stops there
			},
			step: twilio.CheckStepAccount, status: 500, code: 20500,
			reasons: []string{"failed: Injected failure 20500"}},
		{name: "rate limited",
			setup: func(f *twiliotest.Fake) { f.FailNext(1, 429, 20429) },
			step:  twilio.CheckStepAccount, status: 429, code: 20429,
			reasons: []string{"rate limiting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testkit.NewFake(t)
			f.SetOwnedNumbers(testkit.From)
			if tt.setup != nil {
				tt.setup(f)
			}
			_, ce := checkErr(t, testkit.TwilioSender(t, f, nil, tt.mutate))
			if ce == nil {
				t.Fatal("check passed")
			}
			if ce.Step != tt.step || ce.Status != tt.status || ce.Code != tt.code {
				t.Errorf("step %q status %d code %d, want %q %d %d: %v", ce.Step, ce.Status, ce.Code, tt.step, tt.status, tt.code, ce)
			}
			for _, r := range tt.reasons {
				if !strings.Contains(ce.Error(), r) {
					t.Errorf("error %q lacks %q", ce.Error(), r)
				}
			}
			if n := len(f.Resources()); n != 0 {
				t.Errorf("the check created %d messages or calls", n)
			}
		})
	}
}

func TestTwilioCheckFromListFails(t *testing.T) {
	f := testkit.NewFake(t)
	f.SetOwnedNumbers(testkit.From)
	// The account read passes; the list is refused without Twilio JSON.
	hc := &http.Client{Transport: failSecond{http.DefaultTransport, new(int)}}
	_, ce := checkErr(t, testkit.TwilioSender(t, f, hc, nil))
	if ce == nil || ce.Step != twilio.CheckStepFrom || ce.Status != 503 {
		t.Fatalf("list refused: %v, want step from, HTTP 503", ce)
	}
}

// failSecond answers the second request with 503 and no Twilio JSON.
type failSecond struct {
	next http.RoundTripper
	n    *int
}

func (f failSecond) RoundTrip(r *http.Request) (*http.Response, error) {
	*f.n++
	if *f.n == 2 {
		return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Header: http.Header{},
			Body: http.NoBody, Request: r}, nil
	}
	return f.next.RoundTrip(r)
}

func TestTwilioCheckUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	f := testkit.NewFake(t)
	s := testkit.TwilioSender(t, f, nil, func(c *gateway.TwilioConfig) { c.APIBaseURL = "http://" + addr })
	_, ce := checkErr(t, s)
	if ce == nil || ce.Step != twilio.CheckStepAccount || ce.Status != 0 ||
		!strings.Contains(ce.Error(), "cannot reach http://"+addr) || strings.Contains(ce.Error(), "twilio.com") {
		t.Fatalf("unreachable API: %v", ce)
	}
}

// TestTwilioErrorsNameTheConfiguredAPI: with sms.twilio.api_base_url set,
// a send, a Lookup and a check that cannot reach it say so, naming that URL
// and never Twilio's own host (which twilio-go writes into its requests);
// the outbox logs the send's error as is.
func TestTwilioErrorsNameTheConfiguredAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/proxy"
	ln.Close()
	f := testkit.NewFake(t)
	s := testkit.TwilioSender(t, f, nil, func(c *gateway.TwilioConfig) { c.APIBaseURL = base })
	_, err = s.SendSMS(t.Context(), "+15550002222", "Your code is 123456")
	var se *outbox.SendError
	if !errors.As(err, &se) || !strings.Contains(se.Error(), "cannot reach "+base+": ") ||
		strings.Contains(se.Error(), "twilio.com") || strings.Contains(se.Error(), "123456") {
		t.Fatalf("send to an unreachable api_base_url: %v", err)
	}
	_, err = twilio.NewLookup(s).Lookup(t.Context(), "+15550002222", true, false)
	if err == nil || !strings.Contains(err.Error(), "cannot reach "+base) || strings.Contains(err.Error(), "twilio.com") {
		t.Fatalf("Lookup through an unreachable api_base_url: %v", err)
	}
	// Without api_base_url the default is named.
	def := testkit.TwilioSender(t, f, &http.Client{Transport: refuseAll{}}, func(c *gateway.TwilioConfig) { c.APIBaseURL = "" })
	if _, err := def.SendSMS(t.Context(), "+15550002222", "hi"); err == nil || !strings.Contains(err.Error(), "cannot reach https://api.twilio.com: ") {
		t.Fatalf("send without api_base_url: %v", err)
	}
}

// refuseAll is a transport that reaches nothing.
type refuseAll struct{}

func (refuseAll) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection refused (test transport)")
}

func TestTwilioCheckTimeout(t *testing.T) {
	f := testkit.NewFake(t)
	f.SetOwnedNumbers(testkit.From)
	f.SetDelay(2 * time.Second)
	s := testkit.TwilioSender(t, f, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.CheckCredentials(ctx)
	var ce *twilio.CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no answer from") {
		t.Fatalf("slow API: %v, want no answer in time", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the check took %v past its deadline", took)
	}
}
