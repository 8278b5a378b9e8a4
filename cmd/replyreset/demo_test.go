package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/demodir"
	"github.com/replyreset/replyreset/web/browsertest"
)

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "-listen", "0.0.0.0:8080"}, "loopback only"},
		{[]string{"demo", "-listen", "192.0.2.1:8080"}, "loopback only"},
		{[]string{"demo", "-listen", "nonsense"}, "missing port"},
		{[]string{"demo", "-language", "de"}, "-language must be en or fr"},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
	} {
		var out, errb strings.Builder
		code := run(context.Background(), tc.args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestDemoCtrlC runs `replyreset demo` as a process, as a user would, and
// presses Ctrl-C: the banner names the URLs, the pages answer, SIGINT stops
// it with exit status 0 and the temporary data directory is gone.
func TestDemoCtrlC(t *testing.T) {
	t.Run("temporary data", func(t *testing.T) { demoCtrlC(t, "") })
	// --data names a directory that does not exist yet (two levels): the
	// demo creates it and keeps it, with the data file, at exit.
	t.Run("data directory", func(t *testing.T) { demoCtrlC(t, filepath.Join(t.TempDir(), "demo", "data")) })
}

func demoCtrlC(t *testing.T, dataDir string) {
	args := []string{"demo", "-listen", "127.0.0.1:0"}
	if dataDir != "" {
		args = append(args, "--data", dataDir)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "REPLYRESET_TEST_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	urlRE := regexp.MustCompile(`Phone simulator\s+(http://127\.0\.0\.1:\d+)/demo/phone`)
	dataRE := regexp.MustCompile(`Data: (\S+) \(removed at exit\)`)
	if dataDir != "" {
		dataRE = regexp.MustCompile(`Data: (` + regexp.QuoteMeta(dataDir) + `)$`)
	}
	var base, data string
	started := false // the progress line comes before the banner (issue 13 item 9)
	for base == "" || data == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before its banner; stderr:\n%s", stderr.String())
			}
			if strings.Contains(line, "replyreset demo: starting the demo directory") {
				started = true
			}
			if m := urlRE.FindStringSubmatch(line); m != nil {
				if !started {
					t.Fatalf("the banner came with no progress line before it")
				}
				base = m[1]
			}
			if m := dataRE.FindStringSubmatch(line); m != nil {
				data = m[1]
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no banner within 30 s; stderr:\n%s", stderr.String())
		}
	}
	for _, path := range []string{"/demo/phone", "/demo/mail", "/admin/login", "/healthz"} {
		resp, err := http.Get(base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	if _, err := os.Stat(filepath.Join(data, "replyreset.db")); err != nil {
		t.Fatalf("data file: %v", err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after Ctrl-C: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the demo did not stop within 20 s of Ctrl-C")
	}
	if dataDir != "" {
		if _, err := os.Stat(filepath.Join(dataDir, "replyreset.db")); err != nil {
			t.Fatalf("the data file in --data %s after exit: %v", dataDir, err)
		}
		return
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary data directory %s is still there: %v", data, err)
	}
}

// TestDemoStory walks the README's story in headless Chromium against
// `replyreset demo`: the admin activates a user, the email arrives, the
// user enrolls by SMS, five failed logins lock the account, the lockout
// text arrives, the user replies RESET and the password received signs in.
// With REPLYRESET_SCREENSHOTS=1 it refreshes the README's pictures in docs/.
func TestDemoStory(t *testing.T) {
	ctx := browsertest.New(t)
	runCtx, stop := context.WithCancel(context.Background())
	d, err := startDemo(runCtx, demoOptions{Listen: "127.0.0.1:0", Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		d.Close()
		if _, err := os.Stat(d.dataDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the temporary data directory is still there: %v", err)
		}
	}()
	var banner strings.Builder
	d.banner(&banner)
	for _, want := range []string{d.url + "/admin/", d.url + "/demo/phone", d.url + "/demo/mail", "helpdeskadmin"} {
		if !strings.Contains(banner.String(), want) {
			t.Fatalf("banner lacks %q:\n%s", want, banner.String())
		}
	}

	shots := os.Getenv("REPLYRESET_SCREENSHOTS") != ""
	shot := func(name string) {
		dir := browsertest.ArtifactDir(t)
		if shots {
			var err error
			if dir, err = filepath.Abs(filepath.Join("..", "..", "docs")); err != nil {
				t.Fatal(err)
			}
		}
		browsertest.Screenshot(t, ctx, filepath.Join(dir, name))
	}
	open := func(path string) {
		t.Helper()
		if st := browsertest.Open(t, ctx, d.url+path); st != 200 {
			t.Fatalf("open %s: %d", path, st)
		}
	}
	fill := func(id, value string) {
		t.Helper()
		browsertest.Eval(t, ctx, `(document.getElementById("`+id+`").value = "", "")`)
		browsertest.Do(t, ctx, "type into #"+id, chromedp.SendKeys(chromedp.ID(id), value))
	}
	submit := func(sel string) {
		t.Helper()
		if st := browsertest.Submit(t, ctx, sel); st != 200 {
			t.Fatalf("submit %s: %d: %s", sel, st, browsertest.Eval(t, ctx, `document.body.innerText.slice(0, 300)`))
		}
	}
	lastBubble := func() string {
		return browsertest.Eval(t, ctx, `(() => { const b = [...document.querySelectorAll("#conversation li.in .bubble")]; return b.length ? b[b.length-1].innerText : ""; })()`)
	}
	// waitBubble reloads the phone until its newest incoming text matches.
	waitBubble := func(user string, re *regexp.Regexp) string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			open("/demo/phone?user=" + user)
			if b := lastBubble(); re.MatchString(b) {
				return b
			}
		}
		t.Fatalf("no text matching %s on %s's phone; last: %q", re, user, lastBubble())
		return ""
	}

	var user demodir.User
	for _, u := range d.dir.Users() {
		if u.Mobile != "" && u.Mail != "" {
			user = u
			break
		}
	}
	if user.Username == "" {
		t.Fatal("no sample user with a phone and a mail")
	}
	admin := d.dir.HelpdeskAdmin()

	// 1. The admin signs in (a member of the admin group through a nested
	//    group) and activates the user.
	open("/admin/login")
	fill("username", admin.Username)
	fill("password", admin.Password)
	submit("#login")
	open("/admin/users?q=" + user.Username)
	shot("demo-1-admin-users.png")
	fill("one", user.Username)
	submit("#activate-one")
	if got := browsertest.Text(t, ctx, "#summary"); !strings.Contains(got, "1 email sent, 0 not sent") {
		t.Fatalf("activation: %q", got)
	}

	// 2. The email arrives in the mailbox (through the mail queue, which
	//    the worker delivers in the background), with a working link.
	for deadline := time.Now().Add(20 * time.Second); len(d.backend.mailbox.Mails()) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the activation email did not reach the demo mailbox")
		}
	}
	open("/demo/mail")
	browsertest.Do(t, ctx, "open the newest mail", chromedp.Click(chromedp.CSS(`#mails li a`)), chromedp.WaitVisible(chromedp.ID("mail-body")))
	if to := browsertest.Text(t, ctx, "#mail-to"); to != user.Mail {
		t.Fatalf("mail to %q, want %q", to, user.Mail)
	}
	shot("demo-2-mailbox.png")
	link := browsertest.Eval(t, ctx, `document.querySelector("#mail-body a").href`)
	if !strings.HasPrefix(link, d.url+"/enroll/") {
		t.Fatalf("link %q", link)
	}

	// 3. The user enrolls the phone by SMS; the code arrives on the phone.
	if st := browsertest.Open(t, ctx, link); st != 200 {
		t.Fatalf("enrollment link: %d", st)
	}
	if got := browsertest.Eval(t, ctx, `document.getElementById("phone").value`); got != user.Mobile {
		t.Fatalf("phone pre-filled with %q, want %q", got, user.Mobile)
	}
	submit("#send")
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(waitBubble(user.Username, regexp.MustCompile(`verification code is \d{6}`)))
	if st := browsertest.Open(t, ctx, link); st != 200 {
		t.Fatalf("back to the link: %d", st)
	}
	fill("code", code)
	submit("#verify")
	browsertest.Text(t, ctx, "#done")
	shot("demo-3-enrolled.png")

	// 4. Five failed logins lock the account; the lockout text arrives.
	open("/demo/phone?user=" + user.Username)
	submit("#fail-logins")
	if _, err := d.app.dir.Authenticate(context.Background(), user.Username, demodir.SamplePassword); !errors.Is(err, directory.ErrLocked) {
		t.Fatalf("after five failures the account answers %v, want locked", err)
	}
	waitBubble(user.Username, regexp.MustCompile(`was locked at`))

	// 5. The user replies RESET and gets a password (an outbox message the
	// phone shows, not the webhook's answer), which signs in.
	fill("body", "RESET")
	submit("#send")
	reply := waitBubble(user.Username, regexp.MustCompile(`new password for`))
	lines := strings.Split(reply, "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "new password for") {
		t.Fatalf("RESET reply %q", reply)
	}
	password := strings.TrimSpace(lines[1])
	shot("demo-4-phone.png")
	fill("try-password", password)
	submit("#try")
	if got := browsertest.Text(t, ctx, "#notice"); !strings.Contains(got, "must be changed") {
		t.Fatalf("signing in with the texted password: %q", got)
	}
	if _, err := d.app.dir.Authenticate(context.Background(), user.Username, password); !errors.Is(err, directory.ErrMustChange) {
		t.Fatalf("the texted password binds with %v, want must-change", err)
	}
}
