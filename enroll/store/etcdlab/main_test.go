package etcdlab_test

import (
	"testing"

	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// TestMain stops the shared cluster after the tests and reports the tests
// that did not run for want of one (etcdlab.Main).
func TestMain(m *testing.M) { etcdlab.Main(m) }
