package main

// End-to-end tests of the command line: run() is called in-process with the
// same arguments an operator types, against real directory servers from
// directory/ldaplab (a Samba AD DC and OpenLDAP slapd on 127.0.0.1, in the
// test binary's own network namespace under `make test`).

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the replyreset binary, for tests that need
	// a real process (signals, exit codes): see runSelf.
	if os.Getenv("REPLYRESET_TEST_RUN_MAIN") == "1" {
		main()
	}
	code := m.Run()
	ldaplab.StopAll()
	ldaplab.ReportSkipped(code)
	os.Exit(code)
}

// labs are the directory servers the command line is tested against.
var labs = []struct {
	name string
	get  func(testing.TB) *ldaplab.Server
}{
	{"samba", ldaplab.Samba},
	{"openldap", ldaplab.OpenLDAP},
}

// Fake but well-formed Twilio credentials: nothing in these tests sends SMS.
const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "0123456789abcdef0123456789abcdef"
	testFromNumber = "+15550001111"
	testPublicURL  = "https://reset.example.test"
)

// unreachableURL is a directory URL nothing listens on: a dial fails at once.
const unreachableURL = "ldaps://127.0.0.1:1"

// testConfig is what a test varies in the configuration file; writeConfig
// fills in the rest.
type testConfig struct {
	Listen       string // default 127.0.0.1:8080
	Dialect      string
	URLs         []string
	CAFile       string
	BindDN       string
	BindPassword string // written to a file and referenced by bind_password_file
	BaseDN       string
	Timeout      string // directory.timeout; default 5s
	AdminGroup   string // directory.admin_group; default none
}

// labConfig is a valid configuration for a lab server, bound as its service
// account over verified LDAPS.
func labConfig(s *ldaplab.Server) testConfig {
	return testConfig{
		Dialect:      s.Dialect,
		URLs:         []string{s.LDAPSURL},
		CAFile:       s.CAFile,
		BindDN:       s.ServiceDN,
		BindPassword: s.ServicePassword,
		BaseDN:       s.BaseDN,
	}
}

// offlineConfig is a valid configuration whose directory cannot be reached:
// for commands that must not dial it.
func offlineConfig() testConfig {
	return testConfig{
		Dialect:      "openldap",
		URLs:         []string{unreachableURL},
		BindDN:       "cn=replyreset-svc,dc=example,dc=org",
		BindPassword: "Service#Pass1",
		BaseDN:       "dc=example,dc=org",
		Timeout:      "1s",
	}
}

// configFile is a configuration written into a test's temporary directory.
type configFile struct {
	Path    string // the YAML file
	DataDir string // its data_dir (replyreset.db lives here)
}

// writeConfig writes c as a YAML file, with data_dir and the bind password
// file in t.TempDir().
func writeConfig(t *testing.T, c testConfig) configFile {
	t.Helper()
	dir := t.TempDir()
	f := configFile{Path: filepath.Join(dir, "config.yaml"), DataDir: filepath.Join(dir, "data")}
	pwFile := filepath.Join(dir, "bind_password")
	if err := os.WriteFile(pwFile, []byte(c.BindPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Timeout == "" {
		c.Timeout = "5s"
	}
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i] = q(u)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\n", q(c.Listen))
	fmt.Fprintf(&b, "public_url: %s\n", q(testPublicURL))
	fmt.Fprintf(&b, "data_dir: %s\n", q(f.DataDir))
	fmt.Fprintf(&b, "log: {level: info, format: json}\n")
	fmt.Fprintf(&b, "directory:\n")
	fmt.Fprintf(&b, "  dialect: %s\n", c.Dialect)
	fmt.Fprintf(&b, "  urls: [%s]\n", strings.Join(urls, ", "))
	if c.CAFile != "" {
		fmt.Fprintf(&b, "  ca_file: %s\n", q(c.CAFile))
	}
	fmt.Fprintf(&b, "  bind_dn: %s\n", q(c.BindDN))
	fmt.Fprintf(&b, "  bind_password_file: %s\n", q(pwFile))
	fmt.Fprintf(&b, "  base_dn: %s\n", q(c.BaseDN))
	fmt.Fprintf(&b, "  timeout: %s\n", c.Timeout)
	if c.AdminGroup != "" {
		fmt.Fprintf(&b, "  admin_group: %s\n", q(c.AdminGroup))
	}
	fmt.Fprintf(&b, "sms:\n")
	fmt.Fprintf(&b, "  provider: twilio\n")
	fmt.Fprintf(&b, "  twilio:\n")
	fmt.Fprintf(&b, "    account_sid: %s\n", testAccountSID)
	fmt.Fprintf(&b, "    auth_token: %s\n", q(testAuthToken))
	fmt.Fprintf(&b, "    from: %s\n", q(testFromNumber))
	fmt.Fprintf(&b, "    api_base_url: %s\n", q(sharedTwilio().URL)) // no test talks to Twilio itself
	writeFile(t, f.Path, b.String())
	return f
}

// sharedTwilio is the fake Twilio every written configuration names: it
// knows the test credentials and owns testFromNumber. It lives as long as
// the test binary.
var sharedTwilio = sync.OnceValue(func() *twiliotest.Fake {
	f := twiliotest.NewFake(testAccountSID, testAuthToken)
	f.SetOwnedNumbers(testFromNumber)
	return f
})

// q quotes s as a YAML double-quoted scalar (a JSON string is one).
func q(s string) string { return strconv.Quote(s) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cliResult is what one command did.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

// String shows the whole run, for failure messages.
func (r cliResult) String() string {
	return fmt.Sprintf("replyreset %s\nexit code %d\n--- stdout:\n%s--- stderr:\n%s",
		strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runCLI runs the command line in-process, as `replyreset args...`.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return cliResult{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs a command that must exit 0.
func mustRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%v", r)
	}
	return r
}

// wantCode fails the test unless r exited with code.
func wantCode(t *testing.T, r cliResult, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d:\n%v", code, r)
	}
}

// wantLine fails the test unless out holds exactly the line want.
func wantLine(t *testing.T, r cliResult, out, want string) {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if line == want {
			return
		}
	}
	t.Errorf("want the line\n\t%s\nin:\n%v", want, r)
}

// wantContains fails the test unless out contains each of wants.
func wantContains(t *testing.T, r cliResult, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("want %q in:\n%v", w, r)
		}
	}
}

// lineWithPrefix returns the first line of out that starts with prefix.
func lineWithPrefix(out, prefix string) (string, bool) {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line, true
		}
	}
	return "", false
}

// freePort returns a TCP address on 127.0.0.1 that was free a moment ago
// (runServe listens on cfg.Listen and does not say which port it got).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
