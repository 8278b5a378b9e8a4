package twilio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"github.com/twilio/twilio-go/twiml"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/templates"
)

// StatusCallbackPath is where Twilio posts delivery reports, under public_url.
const StatusCallbackPath = "/sms/twilio/status"

// twilioRequestTimeout bounds one REST request; Twilio answers a create in
// well under a second, and a stuck request must not hold the outbox.
const twilioRequestTimeout = 15 * time.Second

// Sender sends SMS and voice calls through Twilio's REST API, or a
// Twilio-compatible API at sms.twilio.api_base_url.
type Sender struct {
	accountSID, authToken string
	from, serviceSID      string
	statusURL             string
	base                  *url.URL // api_base_url; nil means Twilio itself
	http                  *http.Client
	transport             http.RoundTripper
	timeout               time.Duration
}

var (
	_ outbox.Sender   = (*Sender)(nil)
	_ outbox.Prober   = (*Sender)(nil)
	_ outbox.Redactor = (*Sender)(nil)
)

var twilioCredential = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// NewSender makes a sender from the sms.twilio settings. Status
// callbacks go to publicURL + /sms/twilio/status. httpClient may be nil
// (a client verifying TLS, not following redirects); a given client is
// copied, never changed.
func NewSender(cfg gateway.TwilioConfig, publicURL string, httpClient *http.Client) (*Sender, error) {
	// twilio-go refuses non-alphanumeric credentials on every request;
	// saying so once at start-up is kinder.
	if !twilioCredential.MatchString(cfg.AccountSID) {
		return nil, errors.New("sms.twilio.account_sid: must be AC followed by 32 hex digits")
	}
	if !twilioCredential.MatchString(cfg.AuthToken) {
		return nil, errors.New("sms.twilio.auth_token: must be the letters and digits of the Twilio auth token")
	}
	if cfg.From == "" && cfg.MessagingServiceSID == "" {
		return nil, errors.New("sms.twilio.from: required (or sms.twilio.messaging_service_sid)")
	}
	pub, err := url.Parse(publicURL)
	if err != nil || (pub.Scheme != "https" && pub.Scheme != "http") || pub.Host == "" {
		return nil, fmt.Errorf("public_url: %q is not an http(s) URL; Twilio needs it for status callbacks", publicURL)
	}
	s := &Sender{
		accountSID: cfg.AccountSID, authToken: cfg.AuthToken,
		from: cfg.From, serviceSID: cfg.MessagingServiceSID,
		statusURL: strings.TrimRight(publicURL, "/") + StatusCallbackPath,
		timeout:   twilioRequestTimeout,
	}
	if cfg.APIBaseURL != "" {
		u, err := url.Parse(cfg.APIBaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("sms.twilio.api_base_url: %q is not an http(s) URL", cfg.APIBaseURL)
		}
		s.base = u
	}
	if httpClient == nil {
		httpClient = defaultTwilioHTTPClient()
	}
	s.http = httpClient
	s.transport = httpClient.Transport
	if s.transport == nil {
		s.transport = http.DefaultTransport
	}
	return s, nil
}

func defaultTwilioHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport: t,
		Timeout:   twilioRequestTimeout + 5*time.Second, // the context deadline normally fires first
		// Like twilio-go's own client: a redirect is an answer, not a hop.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SendSMS creates a Message: To, Body, From or MessagingServiceSid, and
// StatusCallback.
func (s *Sender) SendSMS(ctx context.Context, to, body string) (outbox.Receipt, error) {
	p := &openapi.CreateMessageParams{}
	p.SetTo(to)
	p.SetBody(body)
	if s.serviceSID != "" {
		p.SetMessagingServiceSid(s.serviceSID)
	} else {
		p.SetFrom(s.from)
	}
	p.SetStatusCallback(s.statusURL)
	return s.do(ctx, []string{body}, func(api *openapi.ApiService) (sid, status *string, err error) {
		m, err := api.CreateMessage(p)
		if err != nil {
			return nil, nil, err
		}
		return m.Sid, m.Status, nil
	})
}

// Call creates a Call from the sms.twilio.from number whose inline TwiML
// reads sayText twice in language.
func (s *Sender) Call(ctx context.Context, to, sayText, language string) (outbox.Receipt, error) {
	if s.from == "" {
		return outbox.Receipt{}, &outbox.SendError{Final: true,
			Message: "voice calls need a caller number: set sms.twilio.from (a messaging service cannot place calls)"}
	}
	doc, err := callTwiML(sayText, language)
	if err != nil {
		return outbox.Receipt{}, &outbox.SendError{Final: true, Message: "could not build the call's TwiML"}
	}
	p := &openapi.CreateCallParams{}
	p.SetTo(to)
	p.SetFrom(s.from)
	p.SetTwiml(doc)
	p.SetStatusCallback(s.statusURL)
	// The TwiML reads the digits spelled out: an echo of either form is scrubbed.
	return s.do(ctx, []string{sayText, spellDigits(sayText)}, func(api *openapi.ApiService) (sid, status *string, err error) {
		c, err := api.CreateCall(p)
		if err != nil {
			return nil, nil, err
		}
		return c.Sid, c.Status, nil
	})
}

// Redact blanks the body of message sid at Twilio, so that a delivered
// password no longer sits in the provider's logs. Twilio accepts this only
// once the message has reached a final status.
func (s *Sender) Redact(ctx context.Context, sid string) error {
	p := &openapi.UpdateMessageParams{}
	p.SetBody("")
	_, err := s.do(ctx, nil, func(api *openapi.ApiService) (*string, *string, error) {
		m, err := api.UpdateMessage(sid, p)
		if err != nil {
			return nil, nil, err
		}
		return m.Sid, m.Status, nil
	})
	return err
}

// do runs one twilio-go call with a deadline. twilio-go builds its requests
// without a context, so each call gets its own small client whose transport
// carries ctx (and the api_base_url rewrite); the services it builds are a
// few pointers.
func (s *Sender) do(ctx context.Context, secrets []string,
	call func(*openapi.ApiService) (sid, status *string, err error)) (outbox.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c, trip := s.client(ctx)
	sid, status, err := call(openapi.NewApiServiceWithClient(c))
	if err != nil {
		return outbox.Receipt{}, twilioSendError(err, trip.status, secrets, s.apiHost())
	}
	if sid == nil || *sid == "" {
		return outbox.Receipt{}, &outbox.SendError{Status: trip.status, Message: "the provider's answer has no sid"}
	}
	r := outbox.Receipt{ProviderID: *sid}
	if status != nil {
		r.Status = *status
	}
	return r, nil
}

// twilioTrip is the transport of one request: it binds the request to the
// call's context (bind: twilio-go builds its requests without one), sends
// it to api_base_url when one is set (scheme, host and any path prefix;
// the Twilio path is kept), and remembers the HTTP status, which twilio-go
// drops when an error body is not JSON.
type twilioTrip struct {
	bind   func(*http.Request) *http.Request
	next   http.RoundTripper
	base   *url.URL
	status int
}

// newTwilioTrip is the transport of one request made within ctx.
func newTwilioTrip(ctx context.Context, next http.RoundTripper, base *url.URL) *twilioTrip {
	return &twilioTrip{bind: func(r *http.Request) *http.Request { return r.Clone(ctx) }, next: next, base: base}
}

func (t *twilioTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	r := t.bind(req)
	if t.base != nil {
		u := *r.URL
		u.Scheme, u.Host = t.base.Scheme, t.base.Host
		u.Path = strings.TrimRight(t.base.Path, "/") + r.URL.Path
		u.RawPath = ""
		r.URL, r.Host = &u, ""
	}
	resp, err := t.next.RoundTrip(r)
	if resp != nil {
		t.status = resp.StatusCode
	}
	return resp, err
}

// twilioSendError maps a twilio-go error to a outbox.SendError, with secret (the
// body) scrubbed from every text. where names the API the request went to
// (apiHost): a transport error names it, not the URL twilio-go built.
func twilioSendError(err error, status int, secrets []string, where string) *outbox.SendError {
	var rest *client.TwilioRestError
	var v1 *client.RestErrorV1
	switch {
	case errors.As(err, &rest):
		if rest.Status != 0 {
			status = rest.Status
		}
		return classifyTwilio(status, rest.Code, scrub(rest.Message, secrets))
	case errors.As(err, &v1):
		if v1.HttpStatusCode != 0 {
			status = v1.HttpStatusCode
		}
		return classifyTwilio(status, v1.Code, scrub(v1.Message, secrets))
	}
	msg := scrub(transportText(err), secrets)
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		msg = "no answer in time from " + where + ": " + msg
	} else {
		msg = "cannot reach " + where + ": " + msg
	}
	return &outbox.SendError{Status: status, Message: msg}
}

// scrub removes every secret from s (outbox.Scrub).
func scrub(s string, secrets []string) string {
	for _, secret := range secrets {
		s = outbox.Scrub(s, secret)
	}
	return s
}

// transportText is the text of a transport error without the URL twilio-go
// built, whose host is always Twilio's own whatever sms.twilio.api_base_url
// says (the transport rewrites it): the caller names where it really went.
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// classifyTwilio decides whether a Twilio error is final. A code of the
// provider code table (enroll.ProviderCodes) says so itself: opted-out,
// invalid and non-mobile numbers are, bad credentials, a wrong account SID
// or api_base_url and rate limits are not. Any other 4xx carrying a Twilio
// code is final, except those that an operator or time fixes for every
// message at once: 401, 404, timeouts (408) and 429. Losing every queued
// code to a typo in the auth token would be worse than retrying them.
func classifyTwilio(status, code int, msg string) *outbox.SendError {
	e := &outbox.SendError{Code: code, Status: status, Message: msg}
	pc, known := enroll.LookupProviderCode(code)
	switch {
	case known:
		e.Final = pc.Final
	case status >= 400 && status < 500 && code != 0:
		switch status {
		case http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		default:
			e.Final = true
		}
	}
	return e
}

// callTwiML is <Response><Say>text</Say><Pause length="1"/><Say>text</Say>
// </Response>: said twice, because a code heard once over a bad line is
// easily missed.
func callTwiML(text, language string) (string, error) {
	say := twiml.VoiceSay{Message: spellDigits(text), Language: voiceLanguage(language)}
	doc, err := twiml.Voice([]twiml.Element{say, twiml.VoicePause{Length: "1"}, say})
	if err != nil {
		return "", err
	}
	// The XML declaration only costs characters of Twilio's 4000.
	if i := strings.Index(doc, "?>"); strings.HasPrefix(doc, "<?xml") && i >= 0 {
		doc = doc[i+2:]
	}
	return strings.TrimSpace(doc), nil
}

// voiceLanguage is the <Say> language for a product language.
func voiceLanguage(lang string) string {
	if templates.NormalizeLanguage(lang) == "fr" {
		return "fr-FR"
	}
	return "en-US"
}

var digitRun = regexp.MustCompile(`[0-9]{4,}`)

// spellDigits spaces out runs of four or more digits so that a code is read
// digit by digit ("4 8 1 5 1 6"), not as a six-figure number.
func spellDigits(text string) string {
	return digitRun.ReplaceAllStringFunc(text, func(run string) string {
		return strings.Join(strings.Split(run, ""), " ")
	})
}
