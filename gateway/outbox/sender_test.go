package outbox_test

import (
	"regexp"
	"testing"

	"github.com/replyreset/replyreset/gateway/outbox"
)

func TestLocalSender(t *testing.T) {
	var s outbox.Sender = outbox.LocalSender{}
	a, err := s.SendSMS(t.Context(), "+15550002222", "hi")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Call(t.Context(), "+15550002222", "hi", "en")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^OB[0-9a-f]{32}$`)
	if !re.MatchString(a.ProviderID) || !re.MatchString(b.ProviderID) || a.ProviderID == b.ProviderID ||
		a.Status != "sent" || b.Status != "sent" {
		t.Errorf("receipts %+v %+v, want distinct OB… IDs, status sent", a, b)
	}
}
