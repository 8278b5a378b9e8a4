package notify_test

import (
	"context"
	"testing"

	"github.com/replyreset/replyreset/gateway/notify"
)

func TestDemoMailbox(t *testing.T) {
	b := notify.NewDemoMailbox(nil)
	for _, s := range []string{"one", "two"} {
		if err := b.Send(context.Background(), notify.Mail{To: "a@example.com", Subject: s, Text: s}); err != nil {
			t.Fatal(err)
		}
	}
	ms := b.Mails()
	if len(ms) != 2 || ms[0].Subject != "two" || ms[0].ID != 2 {
		t.Fatalf("mails %+v", ms)
	}
	if m, err := b.Mail(1); err != nil || m.Subject != "one" {
		t.Fatalf("Mail(1): %+v %v", m, err)
	}
	if _, err := b.Mail(9); err == nil {
		t.Fatal("Mail(9) found")
	}
}
