package web

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Headless Chromium for the browser tests, after
// shared/recipes/BROWSER.md: Debian's chromium, flags that keep it off every
// host but loopback, one browser per test function.

// browserTestTimeout bounds one browser test: start, all actions, shutdown.
// Keep it well under go test -timeout (default 10m): a -timeout panic skips
// Cleanup and leaks the profile directory.
const browserTestTimeout = 60 * time.Second

// chromiumPath returns the browser binary or stops the test with a clear
// message: a failure when CI or REPLYRESET_INTEGRATION is set, a skip
// otherwise.
func chromiumPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("CHROMIUM_PATH")
	if p == "" {
		p = "/usr/bin/chromium" // Debian's "chromium" package
	}
	if _, err := exec.LookPath(p); err != nil {
		msg := fmt.Sprintf("browser tests need Chromium at %s: %v "+
			"(apt-get install -y chromium, or set CHROMIUM_PATH)", p, err)
		if os.Getenv("CI") != "" || os.Getenv("REPLYRESET_INTEGRATION") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// browserOptions: headless Chromium, run as root, that makes no request to
// any host but loopback.
func browserOptions(execPath, userDataDir string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // root: Chromium refuses to start with the sandbox
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userDataDir),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true), // Docker's /dev/shm is 64 MB
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("metrics-recording-only", true),
		// A flag name holds one value: put every feature in this one list.
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,"+
			"NetworkTimeServiceQuerying,AutofillServerCommunication"),
		// No flag turns these off in Chromium 156 (on-device model manifest,
		// Gaia ListAccounts): send them to a closed loopback port.
		chromedp.Flag("component-updater", "url-source=http://127.0.0.1:9/"),
		chromedp.Flag("gaia-url", "http://127.0.0.1:9"),
		// Catch-all: Chromium resolves no host name. "MAP *" also matches IP
		// literals, so loopback must be excluded explicitly (::1 without []).
		chromedp.Flag("host-resolver-rules",
			"MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE ::1, EXCLUDE localhost"),
	)
}

// newBrowser starts a fresh Chromium for the test and returns its tab
// context. When the test fails, a screenshot of the page is saved to
// $BROWSER_ARTIFACTS (else the test's temporary directory) and its path
// logged.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	execPath := chromiumPath(t)
	// Not t.Context(): it is canceled before Cleanup runs, which SIGKILLs
	// Chromium instead of a graceful close.
	ctx, cancel := context.WithTimeout(context.Background(), browserTestTimeout)
	t.Cleanup(cancel)
	// TempDir first: Cleanup is LIFO, so the dir is removed only after the
	// allocator has waited for Chromium to exit (else Chromium re-creates it).
	dir := t.TempDir()
	// Turn off the DNS-error probe (google.com via 8.8.8.8) of error pages.
	if err := os.MkdirAll(filepath.Join(dir, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"),
		[]byte(`{"alternate_error_pages":{"enabled":false}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The screenshot directory is made before the browser, so that it
	// outlives the browser's clean-up.
	shots := os.Getenv("BROWSER_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, browserOptions(execPath, dir)...)
	t.Cleanup(acancel) // cancels, then waits for the browser process
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		if err := chromedp.Cancel(bctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing browser: %v", err)
		}
		bcancel()
	})
	// Registered last, so it runs first: the page is still there.
	t.Cleanup(func() {
		if t.Failed() {
			saveScreenshot(t, bctx, shots)
		}
	})
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil { // starts Chromium, opens the tab
		t.Fatalf("start browser: %v", err)
	}
	t.Logf("browser start: %v", time.Since(start).Round(time.Millisecond))
	return bctx
}

// saveScreenshot writes the current page to dir and logs where.
func saveScreenshot(t *testing.T, ctx context.Context, dir string) {
	if ctx.Err() != nil {
		t.Logf("no screenshot: %v", ctx.Err())
		return
	}
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 = PNG
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	file := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+".png")
	if err := os.WriteFile(file, img, 0o644); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	t.Logf("screenshot of the failed page: %s", file)
}
