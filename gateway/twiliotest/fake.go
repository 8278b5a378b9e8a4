package twiliotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fake is an in-process stand-in for the parts of Twilio's REST API the
// gateway uses, served on 127.0.0.1:
//
//	POST /2010-04-01/Accounts/{AccountSid}/Messages.json        create an SMS
//	POST /2010-04-01/Accounts/{AccountSid}/Calls.json           create a call
//	POST /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json  update (Body="" redacts)
//	GET  /2010-04-01/Accounts/{AccountSid}/Messages.json?To=...  the messages sent to a number, newest first
//	GET  /2010-04-01/Accounts/{AccountSid}.json                 fetch the account
//	GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json?PhoneNumber=...
//	                                                            the account's numbers (SetOwnedNumbers)
//	GET  /v2/PhoneNumbers/{PhoneNumber}?Fields=...               Lookup v2 (SetLookup; lookup.go)
//
// It checks HTTP basic auth (account SID and auth token) and answers with
// Twilio's JSON shapes: resources with SM…/CA… SIDs and status "queued",
// errors as {code, message, more_info, status}. Every request is recorded
// for assertions. Tests can make it fail the next requests, answer late,
// be down for a while, or refuse a number for good; and it can post signed
// status callbacks as Twilio does. All methods are safe for concurrent use.
type Fake struct {
	URL        string // base URL for sms.twilio.api_base_url
	AccountSID string
	AuthToken  string

	srv    *httptest.Server
	client *http.Client

	mu        sync.Mutex
	requests  []Request
	resources []Resource
	bySID     map[string]int // SID → index in resources
	failN     int
	failWith  twilioError
	delay     time.Duration
	downUntil time.Time
	rejects   map[string]twilioError // To → permanent refusal
	onMessage func(Resource)         // OnMessage's hook, or nil

	accountStatus string        // "active" unless SetAccount
	accountType   string        // "Full" unless SetAccount
	owned         []ownedNumber // the account's incoming phone numbers
	lookups       lookupState   // Lookup v2 answers (lookup.go)
}

// ownedNumber is one of the account's incoming phone numbers.
type ownedNumber struct {
	number     string
	sid        string
	sms, voice bool
}

// Request is one request the fake received.
type Request struct {
	Method     string
	Path       string
	Form       url.Values // every form field as sent (a GET's query parameters)
	Time       time.Time
	Authorized bool // basic auth matched AccountSID and AuthToken
	Status     int  // the HTTP status the fake answered; 0 while in progress
}

// Resource is a message or call the fake accepted.
type Resource struct {
	SID                 string // SM… or CA…
	Kind                string // "sms" or "call"
	To, From            string
	MessagingServiceSID string
	Body                string // SMS text; "" once redacted
	Twiml               string // call instructions
	StatusCallback      string // REST StatusCallback, or a TwiML <Message action>
	Redacted            bool   // a Body="" update was received
	Redactions          int    // how many Body="" updates were received
	Created             time.Time
}

type twilioError struct {
	status, code int
	message      string
}

// NewFake starts a fake for the given credentials. Close it when done
// (t.Cleanup(f.Close)). The auth token must be letters and digits, as
// twilio-go requires.
func NewFake(accountSID, authToken string) *Fake {
	f := &Fake{AccountSID: accountSID, AuthToken: authToken,
		bySID: map[string]int{}, rejects: map[string]twilioError{},
		accountStatus: "active", accountType: "Full",
		client: &http.Client{Timeout: 10 * time.Second}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("twiliotest: listen on 127.0.0.1: " + err.Error())
	}
	f.srv.Listener = l
	f.srv.Start()
	f.URL = f.srv.URL
	return f
}

// Close stops the server, cutting requests still delayed.
func (f *Fake) Close() {
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// FailNext makes the next n authorised requests fail with httpStatus and
// the Twilio error code (0 answers {"code": null, ...}).
func (f *Fake) FailNext(n, httpStatus, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failN = n
	f.failWith = twilioError{httpStatus, code, fmt.Sprintf("Injected failure %d", code)}
}

// Reject refuses every message and call to number with httpStatus and
// code, as Twilio does for an opted-out (21610) or invalid (21211) number.
func (f *Fake) Reject(number string, httpStatus, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejects[number] = twilioError{httpStatus, code, fmt.Sprintf("Refused for this number (%d)", code)}
}

// OnMessage makes the fake call fn with every SMS it accepts, after the
// message is recorded and before the answer is written: fn may block, and
// the sender then waits for its answer (a fault test can stop the sender
// between the provider accepting a message and the sender recording it).
// A nil fn removes the hook.
func (f *Fake) OnMessage(fn func(Resource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onMessage = fn
}

// SetOwnedNumbers replaces the account's incoming phone numbers (none at
// first): each can send SMS and place calls until SetNumberCapabilities
// says otherwise. They are what GET .../IncomingPhoneNumbers.json lists.
func (f *Fake) SetOwnedNumbers(numbers ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owned = f.owned[:0]
	for i, n := range numbers {
		f.owned = append(f.owned, ownedNumber{number: n, sid: fmt.Sprintf("PN%032x", i+1), sms: true, voice: true})
	}
}

// SetNumberCapabilities sets whether an owned number can send SMS and
// place calls.
func (f *Fake) SetNumberCapabilities(number string, sms, voice bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.owned {
		if f.owned[i].number == number {
			f.owned[i].sms, f.owned[i].voice = sms, voice
		}
	}
}

// SetAccount sets the account's status ("active", "suspended", "closed")
// and type ("Full", "Trial") as GET .../Accounts/{AccountSid}.json
// reports them; an empty argument keeps the current value.
func (f *Fake) SetAccount(status, accountType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if status != "" {
		f.accountStatus = status
	}
	if accountType != "" {
		f.accountType = accountType
	}
}

// SetDelay makes every answer wait d (0 for none), to exercise timeouts.
func (f *Fake) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// Down answers every request with 500 for the next d; Up ends it early.
func (f *Fake) Down(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downUntil = time.Now().Add(d)
}

// Up ends a Down period.
func (f *Fake) Up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downUntil = time.Time{}
}

// Requests returns a copy of every request received so far, oldest first.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Request, len(f.requests))
	for i, r := range f.requests {
		r.Form = maps.Clone(r.Form)
		out[i] = r
	}
	return out
}

// Resources returns the messages and calls accepted so far, oldest first.
func (f *Fake) Resources() []Resource {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Resource(nil), f.resources...)
}

// Resource returns the message or call with sid.
func (f *Fake) Resource(sid string) (Resource, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.bySID[sid]
	if !ok {
		return Resource{}, false
	}
	return f.resources[i], true
}

var (
	createPath  = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/(Messages|Calls)\.json$`)
	updatePath  = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)\.json$`)
	accountPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)\.json$`)
	numbersPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/IncomingPhoneNumbers\.json$`)
	e164        = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	user, pass, _ := r.BasicAuth()
	authorized := user == f.AccountSID && pass == f.AuthToken
	f.mu.Lock()
	idx := len(f.requests)
	form := r.PostForm
	if r.Method == http.MethodGet {
		form = r.URL.Query()
	}
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path,
		Form: maps.Clone(form), Time: time.Now(), Authorized: authorized})
	delay := f.delay
	f.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			f.answered(idx, 0)
			return
		}
	}
	status, body := f.route(r, authorized)
	f.answered(idx, status)
	f.mu.Lock()
	hook := f.onMessage
	f.mu.Unlock()
	if m, ok := body.(map[string]any); ok && hook != nil && status == http.StatusCreated && strings.HasSuffix(r.URL.Path, "/Messages.json") {
		if res, ok := f.Resource(fmt.Sprint(m["sid"])); ok {
			hook(res)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *Fake) answered(idx, status int) {
	f.mu.Lock()
	f.requests[idx].Status = status
	f.mu.Unlock()
}

// route decides the answer: down, auth, injected failures, then the API.
func (f *Fake) route(r *http.Request, authorized bool) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case time.Now().Before(f.downUntil):
		return errorBody(twilioError{http.StatusInternalServerError, 20500, "Internal Server Error"})
	case !authorized:
		return errorBody(twilioError{http.StatusUnauthorized, 20003, "Authenticate"})
	case f.failN > 0:
		f.failN--
		return errorBody(f.failWith)
	case r.Method == http.MethodGet:
		return f.get(r)
	case r.Method != http.MethodPost:
		return errorBody(twilioError{http.StatusMethodNotAllowed, 20004, "Method not allowed"})
	}
	if m := createPath.FindStringSubmatch(r.URL.Path); m != nil && m[1] == f.AccountSID {
		if m[2] == "Messages" {
			return f.createMessage(r.PostForm)
		}
		return f.createCall(r.PostForm)
	}
	if m := updatePath.FindStringSubmatch(r.URL.Path); m != nil && m[1] == f.AccountSID {
		return f.updateMessage(m[2], r.PostForm)
	}
	return errorBody(twilioError{http.StatusNotFound, 20404,
		"The requested resource " + r.URL.Path + " was not found"})
}

// get answers the read requests: the account, and its phone numbers.
func (f *Fake) get(r *http.Request) (int, any) {
	if status, body, ok := f.lookup(r); ok {
		return status, body
	}
	if m := accountPath.FindStringSubmatch(r.URL.Path); m != nil && m[1] == f.AccountSID {
		return http.StatusOK, f.accountJSON()
	}
	if m := numbersPath.FindStringSubmatch(r.URL.Path); m != nil && m[1] == f.AccountSID {
		return f.listNumbers(r.URL.Query())
	}
	if m := createPath.FindStringSubmatch(r.URL.Path); m != nil && m[1] == f.AccountSID && m[2] == "Messages" {
		return f.listMessages(r.URL.Query())
	}
	return errorBody(twilioError{http.StatusNotFound, 20404,
		"The requested resource " + r.URL.Path + " was not found"})
}

func (f *Fake) accountJSON() map[string]any {
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC1123Z)
	return map[string]any{
		"sid": f.AccountSID, "owner_account_sid": f.AccountSID, "friendly_name": "ReplyReset test account",
		"status": f.accountStatus, "type": f.accountType,
		// Twilio does return the auth token here: whoever reads it must not print it.
		"auth_token":   f.AuthToken,
		"date_created": created, "date_updated": created,
		"uri": f.base() + ".json",
		"subresource_uris": map[string]string{
			"incoming_phone_numbers": f.base() + "/IncomingPhoneNumbers.json",
			"messages":               f.base() + "/Messages.json",
			"calls":                  f.base() + "/Calls.json",
		},
	}
}

// listNumbers is one page of the owned numbers matching PhoneNumber, which
// like Twilio's matches partial numbers and takes '*' for any digit.
func (f *Fake) listNumbers(q url.Values) (int, any) {
	filter := q.Get("PhoneNumber")
	re, err := regexp.Compile(strings.ReplaceAll(regexp.QuoteMeta(filter), `\*`, `[0-9]`))
	if err != nil {
		return errorBody(twilioError{400, 21421, "PhoneNumber is invalid"})
	}
	pageSize := 50
	if n, err := strconv.Atoi(q.Get("PageSize")); err == nil && n > 0 {
		pageSize = min(n, 1000)
	}
	list := []any{}
	for _, n := range f.owned {
		if !re.MatchString(n.number) || len(list) == pageSize {
			continue
		}
		list = append(list, map[string]any{
			"sid": n.sid, "account_sid": f.AccountSID, "phone_number": n.number, "friendly_name": n.number,
			"capabilities": map[string]bool{"sms": n.sms, "mms": n.sms, "voice": n.voice, "fax": false},
			"status":       "in-use", "origin": "twilio", "api_version": "2010-04-01",
			"uri": f.base() + "/IncomingPhoneNumbers/" + n.sid + ".json",
		})
	}
	uri := f.base() + "/IncomingPhoneNumbers.json?" + q.Encode()
	return http.StatusOK, map[string]any{
		"incoming_phone_numbers": list, "page": 0, "page_size": pageSize, "start": 0, "end": max(len(list)-1, 0),
		"first_page_uri": uri, "previous_page_uri": nil, "next_page_uri": nil, "uri": uri,
	}
}

// listMessages is one page of the SMS accepted for To (and From, when
// given), newest first, as Twilio lists an account's messages.
func (f *Fake) listMessages(q url.Values) (int, any) {
	pageSize := 50
	if n, err := strconv.Atoi(q.Get("PageSize")); err == nil && n > 0 {
		pageSize = min(n, 1000)
	}
	list := []any{}
	for i := len(f.resources) - 1; i >= 0 && len(list) < pageSize; i-- {
		res := f.resources[i]
		if res.Kind != "sms" || (q.Get("To") != "" && res.To != q.Get("To")) || (q.Get("From") != "" && res.From != q.Get("From")) {
			continue
		}
		list = append(list, f.messageJSON(res))
	}
	uri := f.base() + "/Messages.json?" + q.Encode()
	return http.StatusOK, map[string]any{
		"messages": list, "page": 0, "page_size": pageSize, "start": 0, "end": max(len(list)-1, 0),
		"first_page_uri": uri, "previous_page_uri": nil, "next_page_uri": nil, "uri": uri,
	}
}

func (f *Fake) createMessage(form url.Values) (int, any) {
	res := Resource{Kind: "sms", To: form.Get("To"), From: form.Get("From"),
		MessagingServiceSID: form.Get("MessagingServiceSid"), Body: form.Get("Body"),
		StatusCallback: form.Get("StatusCallback")}
	switch {
	case res.To == "":
		return errorBody(twilioError{400, 21604, "A 'To' phone number is required."})
	case !e164.MatchString(res.To):
		return errorBody(twilioError{400, 21211, "Invalid 'To' Phone Number: " + res.To})
	case res.From == "" && res.MessagingServiceSID == "":
		return errorBody(twilioError{400, 21603, "A 'From' phone number is required."})
	case res.Body == "":
		return errorBody(twilioError{400, 21602, "Message body is required."})
	}
	if e, ok := f.rejects[res.To]; ok {
		return errorBody(e)
	}
	f.add(&res, "SM")
	return http.StatusCreated, f.messageJSON(res)
}

func (f *Fake) createCall(form url.Values) (int, any) {
	res := Resource{Kind: "call", To: form.Get("To"), From: form.Get("From"),
		Twiml: form.Get("Twiml"), StatusCallback: form.Get("StatusCallback")}
	switch {
	case res.To == "":
		return errorBody(twilioError{400, 21201, "No 'To' number is specified"})
	case !e164.MatchString(res.To):
		return errorBody(twilioError{400, 21211, "Invalid 'To' Phone Number: " + res.To})
	case res.From == "":
		return errorBody(twilioError{400, 21213, "No 'From' number is specified"})
	case res.Twiml == "" && form.Get("Url") == "" && form.Get("ApplicationSid") == "":
		return errorBody(twilioError{400, 21205, "Url parameter is required"})
	}
	if e, ok := f.rejects[res.To]; ok {
		return errorBody(e)
	}
	f.add(&res, "CA")
	return http.StatusCreated, map[string]any{
		"sid": res.SID, "account_sid": f.AccountSID, "to": res.To, "to_formatted": res.To,
		"from": res.From, "from_formatted": res.From, "status": "queued",
		"direction": "outbound-api", "api_version": "2010-04-01",
		"date_created": nil, "date_updated": nil, "start_time": nil, "end_time": nil,
		"duration": nil, "price": nil, "price_unit": "USD", "answered_by": nil,
		"uri": f.base() + "/Calls/" + res.SID + ".json",
	}
}

func (f *Fake) updateMessage(sid string, form url.Values) (int, any) {
	i, ok := f.bySID[sid]
	if !ok || f.resources[i].Kind != "sms" {
		return errorBody(twilioError{http.StatusNotFound, 20404,
			"The requested resource /2010-04-01/Accounts/" + f.AccountSID + "/Messages/" + sid + ".json was not found"})
	}
	if body, set := form["Body"]; set && len(body) == 1 && body[0] == "" {
		f.resources[i].Body = ""
		f.resources[i].Redacted = true
		f.resources[i].Redactions++
	}
	return http.StatusOK, f.messageJSON(f.resources[i])
}

// add gives res a new SID with prefix and keeps it; f.mu is held.
func (f *Fake) add(res *Resource, prefix string) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	res.SID = prefix + hex.EncodeToString(b[:])
	res.Created = time.Now()
	f.bySID[res.SID] = len(f.resources)
	f.resources = append(f.resources, *res)
}

func (f *Fake) base() string { return "/2010-04-01/Accounts/" + f.AccountSID }

func (f *Fake) messageJSON(res Resource) map[string]any {
	created := res.Created.UTC().Format(time.RFC1123Z)
	status := "queued"
	var from, service any
	if res.From != "" {
		from = res.From
	}
	if res.MessagingServiceSID != "" {
		service, status = res.MessagingServiceSID, "accepted"
	}
	return map[string]any{
		"sid": res.SID, "account_sid": f.AccountSID, "api_version": "2010-04-01",
		"body": res.Body, "to": res.To, "from": from, "messaging_service_sid": service,
		"status": status, "direction": "outbound-api", "num_media": "0", "num_segments": "1",
		"date_created": created, "date_updated": created, "date_sent": nil,
		"error_code": nil, "error_message": nil, "price": nil, "price_unit": "USD",
		"uri":              f.base() + "/Messages/" + res.SID + ".json",
		"subresource_uris": map[string]string{"media": f.base() + "/Messages/" + res.SID + "/Media.json"},
	}
}

func errorBody(e twilioError) (int, any) {
	var code any
	if e.code != 0 {
		code = e.code
	}
	return e.status, map[string]any{"code": code, "message": e.message,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(e.code), "status": e.status}
}

// StatusCallback posts a delivery report for sid to callbackURL as Twilio
// does, signed with authToken: MessageSid/MessageStatus (and the legacy
// SmsSid/SmsStatus) for SM… SIDs, CallSid/CallStatus for CA… SIDs, plus
// AccountSid, To, From and, when errorCode is not 0, ErrorCode. It returns
// the HTTP status of the answer.
func (f *Fake) StatusCallback(ctx context.Context, callbackURL, authToken, sid, status string, errorCode int) (int, error) {
	return f.StatusCallbackVia(ctx, callbackURL, callbackURL, authToken, sid, status, errorCode)
}

// StatusCallbackVia is StatusCallback posted to postURL but signed for
// callbackURL: the URL Twilio was given, when the gateway under test
// listens elsewhere (a test server behind its public URL).
func (f *Fake) StatusCallbackVia(ctx context.Context, postURL, callbackURL, authToken, sid, status string, errorCode int) (int, error) {
	form := url.Values{"AccountSid": {f.AccountSID}, "ApiVersion": {"2010-04-01"}}
	if res, ok := f.Resource(sid); ok {
		form.Set("To", res.To)
		if res.From != "" {
			form.Set("From", res.From)
		}
	}
	if strings.HasPrefix(sid, "CA") {
		form.Set("CallSid", sid)
		form.Set("CallStatus", status)
	} else {
		form.Set("MessageSid", sid)
		form.Set("SmsSid", sid)
		form.Set("MessageStatus", status)
		form.Set("SmsStatus", status)
	}
	if errorCode != 0 {
		form.Set("ErrorCode", strconv.Itoa(errorCode))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, postURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", Sign(authToken, callbackURL, form))
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
