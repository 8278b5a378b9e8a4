package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core release scripts/install-test-deps.sh installs
// from the npm registry (npm package axe-core).
const AxeVersion = "4.14.1"

// AxePath is where the axe-core script is read from: $AXE_CORE_JS, else
// axe.min.js as scripts/install-test-deps.sh installs it under
// $REPLYRESET_TEST_CACHE (default $HOME/.cache/replyreset).
func AxePath() string {
	if p := os.Getenv("AXE_CORE_JS"); p != "" {
		return p
	}
	dir := os.Getenv("REPLYRESET_TEST_CACHE")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".cache", "replyreset")
	}
	return filepath.Join(dir, "axe-core-"+AxeVersion, "node_modules", "axe-core", "axe.min.js")
}

var axeScript = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(AxePath())
	return string(b), err
})

// axeSource returns the axe-core script or stops the test: a failure when
// CI or REPLYRESET_INTEGRATION is set, a skip otherwise.
func axeSource(t testing.TB) string {
	t.Helper()
	src, err := axeScript()
	if err != nil || !strings.Contains(src, "axe") {
		msg := fmt.Sprintf("accessibility checks need axe-core %s at %s: %v "+
			"(run scripts/install-test-deps.sh, or set AXE_CORE_JS)", AxeVersion, AxePath(), err)
		if os.Getenv("CI") != "" || os.Getenv("REPLYRESET_INTEGRATION") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return src
}

// AxeViolation is one rule a page breaks, with the elements that break it.
type AxeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
	Summary string   `json:"summary"` // axe's "fix any/all of" text of the first node
}

func (v AxeViolation) String() string {
	return fmt.Sprintf("%s (%s): %s at %s: %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "), v.Summary)
}

// axeRun checks the page against WCAG 2.x A and AA and best practices, and
// returns the violations, each with up to five element selectors.
const axeRun = `axe.run(document, {resultTypes: ["violations"],
  runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
 .then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
   targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
   summary: (v.nodes[0] && v.nodes[0].failureSummary || "").replace(/\s+/g, " ")}))))`

// Axe injects axe-core into the current page of ctx and returns its
// violations. The script is evaluated through DevTools, so the pages' CSP
// (no scripts) does not stop it.
func Axe(t testing.TB, ctx context.Context) []AxeViolation {
	t.Helper()
	src := axeSource(t)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](src+"\n;true")); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run axe-core: %v", err)
	}
	var vs []AxeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("axe-core answer: %v: %s", err, out)
	}
	return vs
}

// WantAccessible fails the test (without stopping it) naming every axe-core
// violation of the current page; what names the page in the message.
func WantAccessible(t testing.TB, ctx context.Context, what string) {
	t.Helper()
	vs := Axe(t, ctx)
	if len(vs) == 0 {
		return
	}
	lines := make([]string, len(vs))
	for i, v := range vs {
		lines[i] = "  " + v.String()
	}
	t.Errorf("%s: %d axe-core violations:\n%s", what, len(vs), strings.Join(lines, "\n"))
}

// Viewport is a window size the pages are checked at.
type Viewport struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

// The viewports of the page checks: a phone (390x844, mobile and touch,
// scale 1 to keep screenshots small) and a desktop.
var (
	Phone     = Viewport{Name: "phone", Width: 390, Height: 844, Mobile: true}
	Desktop   = Viewport{Name: "desktop", Width: 1280, Height: 800}
	Viewports = []Viewport{Phone, Desktop}
)

// SetViewport makes the tab of ctx the size of v (for the pages opened
// next).
func SetViewport(t testing.TB, ctx context.Context, v Viewport) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if v.Mobile {
		opts = append(opts, chromedp.EmulateScale(1), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(v.Width, v.Height, opts...)); err != nil {
		t.Fatalf("viewport %s: %v", v.Name, err)
	}
}
