package web

import (
	"context"
	"testing"

	"github.com/replyreset/replyreset/web/browsertest"
)

// Headless Chromium for the browser tests comes from web/browsertest (the
// flags, profile, timeout and screenshot-on-failure live there, shared with
// cmd/replyreset's journey test); browser_test.go holds this package's
// page-specific helpers.

// newBrowser starts a fresh Chromium for the test and returns its tab
// context (browsertest.New).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.New(t)
}
