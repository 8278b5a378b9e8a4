package gateway

import (
	"testing"

	"github.com/replyreset/replyreset/templates"
)

// TestReplyTextsRefuseSecrets: a webhook reply cannot be rendered with a
// password or a code in it (they go through the outbox): the attempt is a
// programming error caught at once, never an answer that carries one.
func TestReplyTextsRefuseSecrets(t *testing.T) {
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	c := &conversation{w: &Webhook{msgs: catalog}, lang: "en"}
	for key, args := range map[string]map[string]string{
		"sms.reset.ok_must_change": {"username": "jdoe", "password": "Secret#Pass1"},
		"sms.code":                 {"code": "123456", "minutes": "40"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("text(%s) with a secret did not refuse", key)
				}
			}()
			_ = c.text(key, args)
		}()
	}
	if got := c.text("sms.help", nil); got == "" {
		t.Error("a reply without a secret is refused")
	}
}
