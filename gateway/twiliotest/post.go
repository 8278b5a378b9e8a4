package twiliotest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// PostSMS posts an inbound SMS form to the webhook at url as Twilio does,
// signed with authToken for publicURL (the webhook's full URL as Twilio
// knows it, which may differ from url behind a proxy or a test server).
// It returns the HTTP status, the <Message> texts of a 200 answer (which
// must then be TwiML) and the raw answer.
func PostSMS(ctx context.Context, client *http.Client, url, publicURL, authToken string, form url.Values) (status int, messages []string, raw string, err error) {
	return PostSMSSigned(ctx, client, url, Sign(authToken, publicURL, form), form)
}

// PostSMSSigned is PostSMS with the X-Twilio-Signature header given as is;
// "" sends none.
func PostSMSSigned(ctx context.Context, client *http.Client, url, signature string, form url.Values) (status int, messages []string, raw string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signature != "" {
		req.Header.Set("X-Twilio-Signature", signature)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, string(body), err
	}
	if resp.StatusCode == http.StatusOK {
		var doc struct {
			Messages []string `xml:"Message"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			return resp.StatusCode, nil, string(body), fmt.Errorf("reply is not TwiML: %w\n%s", err, body)
		}
		messages = doc.Messages
	}
	return resp.StatusCode, messages, string(body), nil
}
