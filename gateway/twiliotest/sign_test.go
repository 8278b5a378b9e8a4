package twiliotest

import (
	"net/url"
	"testing"
)

// The example from Twilio's webhook security documentation.
func TestSignMatchesTwilioExample(t *testing.T) {
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	got := Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", form)
	if want := "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
