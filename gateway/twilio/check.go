package twilio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// Account is what CheckAccount found about the configured account
// and sender.
type Account struct {
	SID          string // the account SID checked
	FriendlyName string
	Type         string // "Full" or "Trial" (a trial account texts verified numbers only)
	Status       string // "active"
	// From is sms.twilio.from when set: a number of the account, with its
	// capabilities.
	From      string
	FromSMS   bool
	FromVoice bool
	// MessagingServiceSID is sms.twilio.messaging_service_sid when set;
	// it is not checked.
	MessagingServiceSID string
}

// Trial reports whether the account is a trial account.
func (a Account) Trial() bool { return strings.EqualFold(a.Type, "Trial") }

// Twilio error codes that check-config names (what each means for a
// message is in the one table, enroll.ProviderCodes).
const (
	ErrCodeAuth        = 20003 // authentication failed
	ErrCodeNotFound    = 20404 // resource (or account) not found
	ErrCodeRateLimited = 20429 // too many requests
)

// Steps of CheckAccount, named in CheckError.
const (
	CheckStepAccount = "account" // GET /2010-04-01/Accounts/{AccountSid}.json
	CheckStepFrom    = "from"    // GET .../IncomingPhoneNumbers.json?PhoneNumber={from}
)

// CheckError says what is wrong with the sms.twilio settings, in
// words an operator can act on. It never holds the auth token.
type CheckError struct {
	Step   string // CheckStepAccount or CheckStepFrom
	Status int    // HTTP status; 0 when no answer came
	Code   int    // Twilio error code; 0 when none
	Reason string // what is wrong and which setting to look at
	Err    error  // the cause, when there is one
}

func (e *CheckError) Error() string {
	var b strings.Builder
	b.WriteString(e.Reason)
	switch {
	case e.Status != 0 && e.Code != 0:
		fmt.Fprintf(&b, " (HTTP %d, Twilio error %d)", e.Status, e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	case e.Code != 0:
		fmt.Fprintf(&b, " (Twilio error %d)", e.Code)
	}
	return b.String()
}

func (e *CheckError) Unwrap() error { return e.Err }

// CheckCredentials checks the sms.twilio settings against the API without
// sending anything: the account SID and auth token open the account, the
// account is active, and sms.twilio.from, when set, is a number of that
// account able to send SMS. Errors are *CheckError. For check-config.
func (s *Sender) CheckCredentials(ctx context.Context) error {
	_, err := s.CheckAccount(ctx)
	return err
}

// CheckAccount is CheckCredentials, also returning what it found.
func (s *Sender) CheckAccount(ctx context.Context) (Account, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	found := Account{SID: s.accountSID, MessagingServiceSID: s.serviceSID}

	api, trip := s.checkAPI(ctx)
	acct, err := api.FetchAccount(s.accountSID)
	if err != nil {
		return found, s.checkError(CheckStepAccount, err, trip.status)
	}
	found.FriendlyName, found.Type, found.Status = deref(acct.FriendlyName), deref(acct.Type), deref(acct.Status)
	if found.Status != "" && !strings.EqualFold(found.Status, "active") {
		return found, &CheckError{Step: CheckStepAccount,
			Reason: fmt.Sprintf("account %s is %s, not active: Twilio sends nothing for it", s.accountSID, found.Status)}
	}
	if s.from == "" {
		return found, nil
	}

	found.From = s.from
	api, trip = s.checkAPI(ctx)
	p := &openapi.ListIncomingPhoneNumberParams{}
	p.SetPhoneNumber(s.from)
	p.SetPageSize(50)
	page, err := api.PageIncomingPhoneNumber(p, "", "")
	if err != nil {
		return found, s.checkError(CheckStepFrom, err, trip.status)
	}
	// The filter also matches partial numbers: only the exact one counts.
	for _, n := range page.IncomingPhoneNumbers {
		if deref(n.PhoneNumber) != s.from {
			continue
		}
		found.FromSMS, found.FromVoice = true, true // a provider that does not say is taken at its word
		if c := n.Capabilities; c != nil {
			found.FromSMS, found.FromVoice = c.Sms, c.Voice
		}
		if !found.FromSMS {
			return found, &CheckError{Step: CheckStepFrom,
				Reason: fmt.Sprintf("sms.twilio.from %s belongs to the account but cannot send SMS", s.from)}
		}
		return found, nil
	}
	return found, &CheckError{Step: CheckStepFrom,
		Reason: fmt.Sprintf("sms.twilio.from %s is not a phone number of account %s (check sms.twilio.from, "+
			"or the account SID: a subaccount's numbers belong to the subaccount)", s.from, s.accountSID)}
}

// checkAPI returns a twilio-go API service whose one request is bound to
// ctx and api_base_url, as do does for sends, and the transport that
// remembers the HTTP status.
func (s *Sender) checkAPI(ctx context.Context) (*openapi.ApiService, *twilioTrip) {
	c, trip := s.client(ctx)
	return openapi.NewApiServiceWithClient(c), trip
}

// checkError explains a failed check request.
func (s *Sender) checkError(step string, err error, status int) *CheckError {
	e := &CheckError{Step: step, Status: status, Err: err}
	msg := ""
	var rest *client.TwilioRestError
	var v1 *client.RestErrorV1
	switch {
	case errors.As(err, &rest):
		if rest.Status != 0 {
			e.Status = rest.Status
		}
		e.Code, msg = rest.Code, rest.Message
	case errors.As(err, &v1):
		if v1.HttpStatusCode != 0 {
			e.Status = v1.HttpStatusCode
		}
		e.Code, msg = v1.Code, v1.Message
	}
	msg = outbox.Scrub(msg, s.authToken)
	where := s.apiHost()
	switch {
	case e.Status == http.StatusUnauthorized || e.Code == ErrCodeAuth:
		e.Reason = "auth token or account SID wrong: " + where +
			" refused them (check sms.twilio.account_sid and sms.twilio.auth_token)"
	case e.Status == http.StatusNotFound || e.Code == ErrCodeNotFound:
		e.Reason = fmt.Sprintf("account not found: %s has no account %s (check sms.twilio.account_sid", where, s.accountSID)
		if s.base != nil {
			e.Reason += " and sms.twilio.api_base_url"
		}
		e.Reason += ")"
	case e.Status == http.StatusForbidden:
		e.Reason = fmt.Sprintf("%s refused access to account %s: %s", where, s.accountSID, orDefault(msg, "forbidden"))
	case e.Status == http.StatusTooManyRequests || e.Code == ErrCodeRateLimited:
		e.Reason = where + " is rate limiting this account; try again in a minute"
	case e.Status >= 500:
		e.Reason = fmt.Sprintf("%s failed: %s", where, orDefault(msg, "server error"))
	case e.Status != 0:
		e.Reason = fmt.Sprintf("%s answered: %s", where, orDefault(msg, http.StatusText(e.Status)))
	default:
		text := outbox.Scrub(transportText(err), s.authToken)
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			e.Reason = fmt.Sprintf("no answer from %s in time: %s", where, text)
		} else {
			e.Reason = fmt.Sprintf("cannot reach %s: %s", where, text)
		}
	}
	return e
}

// defaultTwilioAPI is where the API requests go without api_base_url.
const defaultTwilioAPI = "https://api.twilio.com"

// apiHost names where the API requests go: sms.twilio.api_base_url, or
// Twilio's default.
func (s *Sender) apiHost() string {
	if s.base != nil {
		return s.base.Scheme + "://" + s.base.Host + strings.TrimRight(s.base.Path, "/")
	}
	return defaultTwilioAPI
}

// lookupHost names where the Lookup requests go: api_base_url too, when set.
func (s *Sender) lookupHost() string {
	if s.base != nil {
		return s.apiHost()
	}
	return "https://lookups.twilio.com"
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// Probe tells whether Twilio answers again after failed sends, without
// sending anything: it fetches the account (Prober, for the outbox). Any
// answer from the API, even a refusal, means it is up; only a 5xx, 429
// (rate limited), a timeout or no connection is an error.
func (s *Sender) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	api, trip := s.checkAPI(ctx)
	if _, err := api.FetchAccount(s.accountSID); err != nil && (trip.status == 0 || trip.status >= 500 || trip.status == 429) {
		return fmt.Errorf("twilio: probe: %w", err)
	}
	return nil
}
