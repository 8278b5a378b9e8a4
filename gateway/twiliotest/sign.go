// Package twiliotest helps tests speak to the gateway the way Twilio does.
// It is independent of the code under test: signatures are computed here by
// Twilio's published algorithm, not by twilio-go's validator.
package twiliotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Sign returns the X-Twilio-Signature Twilio sends for a form POST to
// fullURL: base64(HMAC-SHA1(auth token, URL followed by every POST key and
// value, keys sorted)).
func Sign(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(form.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
