package directory_test

import (
	"testing"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// TestMain stops the lab servers after the tests and reports the tests
// that did not run for want of one (ldaplab.Main).
func TestMain(m *testing.M) { ldaplab.Main(m) }
