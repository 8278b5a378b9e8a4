// Package browsertest starts headless Chromium for tests, after
// shared/recipes/BROWSER.md: Debian's chromium, flags that keep it off
// every host but loopback, a seeded profile, one browser per test function,
// a per-test deadline and a screenshot when the test fails.
//
// It is test support, like net/http/httptest: import it from _test.go
// files only.
package browsertest

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

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Timeout bounds one browser test: start, all actions, shutdown. It is well
// under go test -timeout (default 10m): a -timeout panic skips Cleanup and
// leaks the profile directory.
const Timeout = 60 * time.Second

// ChromiumPath returns the browser binary ($CHROMIUM_PATH, else
// /usr/bin/chromium) or stops the test with a clear message: a failure
// when CI or REPLYRESET_INTEGRATION is set, a skip otherwise.
func ChromiumPath(t testing.TB) string {
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

// allocatorOptions: headless Chromium, run as root, that makes no request
// to any host but loopback.
func allocatorOptions(execPath, userDataDir string) []chromedp.ExecAllocatorOption {
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

// New starts a fresh Chromium for the test and returns its tab context;
// every action run with it is bounded by Timeout. The browser closes
// gracefully when the test ends. When the test fails, a screenshot of the
// page is saved to ArtifactDir and its path logged.
func New(t *testing.T) context.Context {
	t.Helper()
	execPath := ChromiumPath(t)
	// Not t.Context(): it is canceled before Cleanup runs, which SIGKILLs
	// Chromium instead of a graceful close.
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
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
	shots := ArtifactDir(t)
	actx, acancel := chromedp.NewExecAllocator(ctx, allocatorOptions(execPath, dir)...)
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
		if !t.Failed() {
			return
		}
		file := filepath.Join(shots, fileName(t.Name())+".png")
		if err := save(bctx, file); err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the failed page: %s", file)
	})
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil { // starts Chromium, opens the tab
		t.Fatalf("start browser: %v", err)
	}
	t.Logf("browser start: %v", time.Since(start).Round(time.Millisecond))
	return bctx
}

// ArtifactDir is where screenshots go: $BROWSER_ARTIFACTS (e.g. uploaded by
// CI), else a temporary directory of the test.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("BROWSER_ARTIFACTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// Screenshot saves the whole current page of ctx as a PNG at path (its
// directory is created) and logs where; it fails the test if it cannot.
// A relative path is taken under ArtifactDir.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(ArtifactDir(t), path)
	}
	if err := save(ctx, path); err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	t.Logf("screenshot: %s", path)
}

func save(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 = PNG, else JPEG
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, img, 0o644)
}

// fileName makes a test name (with / and spaces) a file name.
func fileName(testName string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(testName)
}

// Open navigates to url and returns the HTTP status of the page, after any
// redirect.
func Open(t testing.TB, ctx context.Context, url string) int64 {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return resp.Status
}

// Submit clicks the element sel (a CSS selector), waits for the page the
// form leads to (after any redirect) and returns its HTTP status.
func Submit(t testing.TB, ctx context.Context, sel string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("submit %s: %v", sel, err)
	}
	return resp.Status
}

// Do runs actions, failing the test with what on error.
func Do(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Text returns the visible text of the element sel (a CSS selector),
// trimmed.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// Eval evaluates a JavaScript expression whose value is a string.
func Eval(t testing.TB, ctx context.Context, expr string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

// AcceptLanguage makes the tab of ctx send this Accept-Language header
// (e.g. "fr-FR,fr;q=0.9") with every request from now on.
func AcceptLanguage(t testing.TB, ctx context.Context, accept string) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": accept}}); err != nil {
		t.Fatalf("set Accept-Language: %v", err)
	}
}

// ClearCookies forgets every cookie of the browser.
func ClearCookies(t testing.TB, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
}
