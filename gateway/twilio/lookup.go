package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twilio/twilio-go/client"
	lookups "github.com/twilio/twilio-go/rest/lookups/v2"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
)

// lookupTimeout bounds one Lookup request: it runs inside the 15 seconds
// Twilio waits for the reply to a RESET, before any directory work.
const lookupTimeout = 4 * time.Second

// lineTypeCacheTTL: a line type is asked once a day per number at most;
// the enrollment page asks for it on every send and every app page view.
const (
	lineTypeCacheTTL  = 24 * time.Hour
	lineTypeCacheSize = 10000
)

// ErrLookupUnavailable: Twilio Lookup gave no usable answer (an error
// status, a timeout, a network failure, bad credentials).
var ErrLookupUnavailable = errors.New("gateway: carrier lookup unavailable")

// Lookup asks Twilio Lookup v2 (lookups.twilio.com) through
// twilio-go, with the credentials, HTTP client and api_base_url rewrite
// of a Sender: sms.twilio.api_base_url, when set, receives the
// Lookup requests too. It is the enroll.LineChecker of the enrollment and
// the gateway.CarrierLookup of the RESET path.
type Lookup struct {
	sender  *Sender
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedLineType // phone → line type
}

type cachedLineType struct {
	lineType string
	at       time.Time
}

var (
	_ gateway.CarrierLookup = (*Lookup)(nil)
	_ enroll.LineChecker    = (*Lookup)(nil)
)

// NewLookup makes a Lookup client sharing sender's account.
func NewLookup(sender *Sender) *Lookup {
	return &Lookup{sender: sender, timeout: lookupTimeout, now: time.Now, cache: map[string]cachedLineType{}}
}

// client returns a twilio-go client for one call bound to ctx, and its
// transport, which sends to api_base_url when one is set and remembers
// the HTTP status. twilio-go builds its requests without a context, so
// each call gets its own small client; the services it builds are a few
// pointers.
func (s *Sender) client(ctx context.Context) (*client.Client, *twilioTrip) {
	trip := newTwilioTrip(ctx, s.transport, s.base)
	hc := *s.http
	hc.Transport = trip
	c := &client.Client{Credentials: client.NewCredentials(s.accountSID, s.authToken), HTTPClient: &hc}
	c.SetAccountSid(s.accountSID)
	return c, trip
}

// Lookup asks for the line type and/or the SIM swap data of phone (E.164).
// Any failure is ErrLookupUnavailable.
func (l *Lookup) Lookup(ctx context.Context, phone string, lineType, simSwap bool) (gateway.CarrierReport, error) {
	var fields []string
	if lineType {
		fields = append(fields, "line_type_intelligence")
	}
	if simSwap {
		fields = append(fields, "sim_swap")
	}
	if len(fields) == 0 {
		return gateway.CarrierReport{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	c, trip := l.sender.client(ctx)
	p := &lookups.FetchPhoneNumberParams{}
	p.SetFields(strings.Join(fields, ","))
	// The number goes in the path, where E.164's "+" is literal.
	res, err := lookups.NewApiServiceWithClient(c).FetchPhoneNumber(url.PathEscape(phone), p)
	if err != nil {
		se := twilioSendError(err, trip.status, nil, l.sender.lookupHost())
		return gateway.CarrierReport{}, fmt.Errorf("%w: %s", ErrLookupUnavailable, se.Error())
	}
	r := gateway.CarrierReport{LineType: res.LineTypeIntelligence.Type}
	if simSwap {
		sw := res.SimSwap
		r.SIMSwap = gateway.SIMSwap{At: sw.LastSimSwap.LastSimSwapDate, InPeriod: sw.LastSimSwap.SwappedInPeriod,
			Period: sw.LastSimSwap.SwappedPeriod, ErrorCode: sw.ErrorCode}
		r.SIMSwap.Known = sw.ErrorCode == 0 && (!r.SIMSwap.At.IsZero() || r.SIMSwap.Period != "")
	}
	if lineType && r.LineType != "" {
		l.remember(phone, r.LineType)
	}
	return r, nil
}

// LineType is enroll.LineChecker: the line type, from a cache of a day.
func (l *Lookup) LineType(ctx context.Context, phone string) (string, error) {
	l.mu.Lock()
	c, ok := l.cache[phone]
	l.mu.Unlock()
	if ok && l.now().Sub(c.at) < lineTypeCacheTTL {
		return c.lineType, nil
	}
	r, err := l.Lookup(ctx, phone, true, false)
	return r.LineType, err
}

func (l *Lookup) remember(phone, lineType string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.cache) >= lineTypeCacheSize {
		for k, c := range l.cache {
			if now.Sub(c.at) >= lineTypeCacheTTL {
				delete(l.cache, k)
			}
		}
		if len(l.cache) >= lineTypeCacheSize {
			clear(l.cache) // a day of lookups at most is asked again
		}
	}
	l.cache[phone] = cachedLineType{lineType: lineType, at: now}
}
