package twiliotest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The fake's Lookup v2 endpoint (lookups.twilio.com, reached through
// sms.twilio.api_base_url like the REST API):
//
//	GET /v2/PhoneNumbers/{PhoneNumber}?Fields=line_type_intelligence,sim_swap
//
// It answers with Twilio's JSON shape: the packages asked for in Fields,
// null for the others. A number with no answer set is a mobile with no SIM
// swap within a 24-hour period.

// LookupAnswer is what the fake's Lookup says about one number.
type LookupAnswer struct {
	// LineType is line_type_intelligence.type: mobile, landline,
	// fixedVoip, nonFixedVoip, tollFree, ...
	LineType    string
	CarrierName string
	// SIMSwapAt is last_sim_swap_date; zero gives null (a carrier that
	// only says whether the SIM changed within SwappedPeriod).
	SIMSwapAt       time.Time
	SwappedPeriod   string // default "PT24H"
	SwappedInPeriod bool
	// NoSIMSwapData answers the sim_swap package with null values, as
	// Twilio does for carriers and countries it does not cover.
	NoSIMSwapData bool
	// Status and Code, when Status is not 0, answer a Twilio error
	// instead (e.g. 503 and 20503; 404 and 20404).
	Status, Code int
}

// LookupMobile is the answer for numbers without one of their own.
var LookupMobile = LookupAnswer{LineType: "mobile", CarrierName: "Fake Mobile"}

// lookupState is the Lookup part of the fake; Fake.mu guards it.
type lookupState struct {
	answers map[string]LookupAnswer // E.164 → answer
}

var lookupPath = regexp.MustCompile(`^/v2/PhoneNumbers/([^/]+)$`)

// SetLookup sets what Lookup answers about number (E.164).
func (f *Fake) SetLookup(number string, a LookupAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookups.answers == nil {
		f.lookups.answers = map[string]LookupAnswer{}
	}
	f.lookups.answers[number] = a
}

// LookupRequests returns the Lookup requests received so far, oldest
// first; Form holds the query (Fields).
func (f *Fake) LookupRequests() []Request {
	return slices.DeleteFunc(f.Requests(), func(r Request) bool { return !lookupPath.MatchString(r.Path) })
}

// lookup answers GET /v2/PhoneNumbers/{PhoneNumber}; ok is false for
// another path. f.mu is held.
func (f *Fake) lookup(r *http.Request) (status int, body any, ok bool) {
	m := lookupPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return 0, nil, false
	}
	number, err := url.PathUnescape(m[1])
	if err != nil {
		number = m[1]
	}
	a, set := f.lookups.answers[number]
	if !set {
		a = LookupMobile
	}
	if a.Status != 0 {
		status, body = errorBody(twilioError{a.Status, a.Code, fmt.Sprintf("Injected Lookup failure %d", a.Code)})
		return status, body, true
	}
	fields := map[string]bool{}
	for _, f := range strings.Split(r.URL.Query().Get("Fields"), ",") {
		fields[strings.TrimSpace(f)] = true
	}
	res := map[string]any{
		"calling_country_code": "1", "country_code": "US", "phone_number": number, "national_format": number,
		"valid": e164.MatchString(number), "validation_errors": []string{},
		"caller_name": nil, "sim_swap": nil, "call_forwarding": nil, "line_status": nil,
		"line_type_intelligence": nil, "identity_match": nil, "reassigned_number": nil,
		"sms_pumping_risk": nil, "phone_number_quality_score": nil, "pre_fill": nil,
		"url": "https://lookups.twilio.com/v2/PhoneNumbers/" + number,
	}
	if fields["line_type_intelligence"] {
		var mnc any
		if a.LineType == "mobile" {
			mnc = "456"
		}
		res["line_type_intelligence"] = map[string]any{"type": a.LineType, "carrier_name": a.CarrierName,
			"mobile_country_code": "310", "mobile_network_code": mnc, "error_code": nil}
	}
	if fields["sim_swap"] {
		res["sim_swap"] = simSwapJSON(a)
	}
	return http.StatusOK, res, true
}

func simSwapJSON(a LookupAnswer) map[string]any {
	if a.NoSIMSwapData {
		return map[string]any{"last_sim_swap": nil, "carrier_name": nil, "mobile_country_code": nil,
			"mobile_network_code": nil, "error_code": nil}
	}
	period := a.SwappedPeriod
	if period == "" {
		period = "PT24H"
	}
	var date any
	if !a.SIMSwapAt.IsZero() {
		date = a.SIMSwapAt.UTC().Format(time.RFC3339)
	}
	return map[string]any{
		"last_sim_swap": map[string]any{"last_sim_swap_date": date, "swapped_period": period,
			"swapped_in_period": a.SwappedInPeriod},
		"carrier_name": a.CarrierName, "mobile_country_code": "310", "mobile_network_code": "456", "error_code": nil,
	}
}
