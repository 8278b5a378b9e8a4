package gateway

import (
	"regexp"
	"testing"

	"github.com/replyreset/replyreset/templates"
)

// keywordRE finds the commands a reply names: words in capitals ("NOT ME").
var keywordRE = regexp.MustCompile(`\b[A-Z]{2,}(?: [A-Z]{2,})*\b`)

// The HELP reply names every command, in the user's language, each as a
// word that ParseCommand reads as that command.
func TestHelpListsEveryCommand(t *testing.T) {
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "fr"} {
		help := catalog.Text(lang, "sms.help", nil)
		named := map[CommandKind]string{}
		for _, w := range keywordRE.FindAllString(help, -1) {
			if c := ParseCommand(w); c.Kind != Unknown {
				named[c.Kind] = w
			}
		}
		for _, k := range []CommandKind{Reset, Unlock, Status, NotMe, Stop, Start} {
			if named[k] == "" {
				t.Errorf("%s HELP does not name %v: %q", lang, k, help)
			}
		}
	}
	if catalog.Text("fr", "sms.help", nil) == catalog.Text("en", "sms.help", nil) {
		t.Error("the French HELP is the English one")
	}
}
