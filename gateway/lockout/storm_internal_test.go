package lockout

import (
	"testing"
	"time"

	"github.com/replyreset/replyreset/templates"
)

// TestFormatWindow: the storm window of the admin mail is worded from the
// catalog, as it was worded in Go before.
func TestFormatWindow(t *testing.T) {
	catalog, err := templates.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang string
		d    time.Duration
		want string
	}{
		{"en", 5 * time.Minute, "5 minutes"},
		{"en", time.Minute, "1 minute"},
		{"en", time.Hour, "1 hour"},
		{"en", 3 * time.Hour, "3 hours"},
		{"en", 90 * time.Second, "90 seconds"},
		{"en", time.Second, "1 second"},
		{"en", 1500 * time.Millisecond, "1.5s"},
		{"fr", 5 * time.Minute, "5 minutes"},
		{"fr", time.Minute, "1 minute"},
		{"fr", time.Hour, "1 heure"},
		{"fr", 2 * time.Hour, "2 heures"},
		{"fr", 90 * time.Second, "90 secondes"},
		{"fr", time.Second, "1 seconde"},
		{"fr-CA", 2 * time.Hour, "2 heures"},
		{"de", 2 * time.Hour, "2 hours"}, // unknown: English
	} {
		if got := formatWindow(catalog, tc.lang, tc.d); got != tc.want {
			t.Errorf("formatWindow(%s, %s) = %q, want %q", tc.lang, tc.d, got, tc.want)
		}
	}
}
