package twiliotest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
)

// AcceptTwiML does with a webhook's TwiML answer what Twilio does: each
// <Message> becomes an outbound message (an SM… resource, as if created
// through the API) from the number texted (to) to the sender (from),
// whose status callback is the verb's action attribute, or its deprecated
// statusCallback. It returns the messages created, in order.
func (f *Fake) AcceptTwiML(from, to, twiml string) ([]Resource, error) {
	var doc struct {
		XMLName  xml.Name `xml:"Response"`
		Messages []struct {
			Body           string `xml:",chardata"`
			Action         string `xml:"action,attr"`
			StatusCallback string `xml:"statusCallback,attr"`
		} `xml:"Message"`
	}
	if err := xml.Unmarshal([]byte(twiml), &doc); err != nil {
		return nil, fmt.Errorf("twiliotest: the answer is not TwiML: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Resource
	for _, m := range doc.Messages {
		cb := m.Action
		if cb == "" {
			cb = m.StatusCallback
		}
		res := Resource{Kind: "sms", To: from, From: to, Body: m.Body, StatusCallback: cb}
		f.add(&res, "SM")
		out = append(out, res)
	}
	return out, nil
}

// Report posts a status report for message sid to the status callback it
// was created with, as Twilio does, signed with the fake's auth token for
// that URL. When postBase is set (scheme and host of a test server), the
// request goes there instead, with the callback's path and query. It
// returns the HTTP status of the answer.
func (f *Fake) Report(ctx context.Context, postBase, sid, status string, errorCode int) (int, error) {
	res, ok := f.Resource(sid)
	if !ok {
		return 0, fmt.Errorf("twiliotest: no message %s", sid)
	}
	if res.StatusCallback == "" {
		return 0, errors.New("twiliotest: message " + sid + " has no status callback")
	}
	post := res.StatusCallback
	if postBase != "" {
		cb, err := url.Parse(res.StatusCallback)
		if err != nil {
			return 0, err
		}
		base, err := url.Parse(postBase)
		if err != nil {
			return 0, err
		}
		cb.Scheme, cb.Host = base.Scheme, base.Host
		post = cb.String()
	}
	return f.StatusCallbackVia(ctx, post, res.StatusCallback, f.AuthToken, sid, status, errorCode)
}
