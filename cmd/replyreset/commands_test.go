package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
)

// ---- check-config ----------------------------------------------------------

func TestCheckConfigValid(t *testing.T) {
	for _, lab := range labs {
		t.Run(lab.name, func(t *testing.T) {
			t.Parallel()
			s := lab.get(t)
			f := writeConfig(t, labConfig(s))
			r := runCLI(t, "check-config", "-config", f.Path)
			wantCode(t, r, 0)
			wantLine(t, r, r.stdout, f.Path+": syntax and values OK")
			line, ok := lineWithPrefix(r.stdout, "directory "+s.LDAPSURL+": OK (")
			if !ok {
				t.Fatalf("want a line \"directory %s: OK (...)\":\n%v", s.LDAPSURL, r)
			}
			for _, want := range []string{"certificate verified", "bound as " + s.ServiceDN, "base DN " + s.BaseDN + " found"} {
				if !strings.Contains(line, want) {
					t.Errorf("the OK line lacks %q: %s", want, line)
				}
			}
			if strings.Contains(r.stdout, "FAILED") || r.stderr != "" {
				t.Errorf("a passing check printed a failure:\n%v", r)
			}
		})
	}
}

// badFile is a configuration with exactly three problems (an unknown key, a
// URL with the wrong scheme, a bad duration) and its expected report.
func badFile(t *testing.T) (path string, problems []string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "config.yaml")
	writeFile(t, path, `listen: "127.0.0.1:8080"
public_url: https://reset.example.test
data_dir: `+q(filepath.Join(dir, "data"))+`
directory:
  dialect: openldap
  urls: ["ldaps://127.0.0.1:3636", "http://127.0.0.1:389"]
  start_tsl: true
  bind_dn: "cn=replyreset-svc,dc=example,dc=org"
  bind_password: "Service#Pass1"
  base_dn: "dc=example,dc=org"
  timeout: 10 seconds
sms:
  provider: twilio
  twilio:
    account_sid: `+testAccountSID+`
    auth_token: `+q(testAuthToken)+`
    from: "`+testFromNumber+`"
`)
	return path, []string{
		"line 6: directory.urls[1]: scheme must be ldap or ldaps",
		"line 7: directory.start_tsl: unknown key (did you mean start_tls?)",
		`line 11: directory.timeout: "10 seconds" is not a duration (e.g. 30s, 5m)`,
	}
}

func TestCheckConfigListsEveryProblem(t *testing.T) {
	t.Parallel()
	path, problems := badFile(t)
	r := runCLI(t, "check-config", "-config", path)
	wantCode(t, r, 1)
	want := append([]string{path + ": INVALID"}, problems...)
	if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("stdout:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	wantLine(t, r, r.stderr, "replyreset check-config: the configuration file has problems (listed above)")
}

func TestCheckConfigUsage(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "check-config")
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset check-config: usage: -config FILE is required (or set REPLYRESET_CONFIG; see config.example.yaml)")
	if r.stdout != "" {
		t.Errorf("a usage error printed to stdout:\n%v", r)
	}

	r = runCLI(t, "check-config", "-config")
	wantCode(t, r, 2)
	wantContains(t, r, r.stderr, "flag needs an argument: --config")

	r = runCLI(t, "check-config", "-bogus")
	wantCode(t, r, 2)
	wantContains(t, r, r.stderr, "unknown flag: --bogus")

	r = runCLI(t, "check-config", "-h")
	wantCode(t, r, 0)
	wantContains(t, r, r.stdout, "--config", "--offline")
}

func TestCheckConfigMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	r := runCLI(t, "check-config", "-config", path)
	wantCode(t, r, 1)
	wantLine(t, r, r.stdout, path+": INVALID")
	wantContains(t, r, r.stdout, "no such file or directory")
}

func TestCheckConfigDirectoryFailures(t *testing.T) {
	for _, lab := range labs {
		t.Run(lab.name, func(t *testing.T) {
			t.Parallel()
			s := lab.get(t)

			t.Run("wrong bind password", func(t *testing.T) {
				// A fresh account, so the failed bind counts against no
				// account another test uses (both labs lock after 5).
				c := labConfig(s)
				c.BindDN = s.AddUser(t, ldaplab.UserSpec{Username: s.UniqueName("ccbind")})
				c.BindPassword = "Wrong#Pass9"
				f := writeConfig(t, c)
				r := runCLI(t, "check-config", "-config", f.Path)
				wantCode(t, r, 1)
				wantLine(t, r, r.stdout, f.Path+": syntax and values OK")
				line, ok := lineWithPrefix(r.stdout, "directory "+s.LDAPSURL+": FAILED at bind: ")
				if !ok {
					t.Fatalf("want a line \"directory %s: FAILED at bind: ...\":\n%v", s.LDAPSURL, r)
				}
				// Said as what it is, not as "unavailable", and without the
				// server's diagnostic (AD's ends in a NUL byte).
				if want := fmt.Sprintf("directory %s: FAILED at bind: invalid credentials for bind_dn %q (check directory.bind_dn and directory.bind_password)",
					s.LDAPSURL, c.BindDN); line != want {
					t.Errorf("bind failure line\n got %s\nwant %s", line, want)
				}
				wantPrintable(t, r)
				if strings.Contains(r.stdout, "Wrong#Pass9") || strings.Contains(r.stderr, "Wrong#Pass9") {
					t.Errorf("check-config printed the bind password:\n%v", r)
				}
				wantLine(t, r, r.stderr, "replyreset check-config: 1 of 1 directory URLs failed")
			})

			t.Run("wrong base_dn", func(t *testing.T) {
				c := labConfig(s)
				c.BaseDN = "OU=nowhere," + s.BaseDN
				f := writeConfig(t, c)
				r := runCLI(t, "check-config", "-config", f.Path)
				wantCode(t, r, 1)
				line, ok := lineWithPrefix(r.stdout, "directory "+s.LDAPSURL+": FAILED at base_dn: ")
				if !ok {
					t.Fatalf("want a line \"directory %s: FAILED at base_dn: ...\":\n%v", s.LDAPSURL, r)
				}
				if want := fmt.Sprintf("base DN %q does not exist", c.BaseDN); !strings.Contains(line, want) {
					t.Errorf("the base_dn failure lacks %q: %s", want, line)
				}
				wantPrintable(t, r)
				wantLine(t, r, r.stderr, "replyreset check-config: 1 of 1 directory URLs failed")
			})

			t.Run("second URL down", func(t *testing.T) {
				c := labConfig(s)
				c.URLs = []string{s.LDAPSURL, unreachableURL}
				f := writeConfig(t, c)
				r := runCLI(t, "check-config", "-config", f.Path)
				wantCode(t, r, 1)
				if _, ok := lineWithPrefix(r.stdout, "directory "+s.LDAPSURL+": OK ("); !ok {
					t.Errorf("the good first URL is not reported OK:\n%v", r)
				}
				line, ok := lineWithPrefix(r.stdout, "directory "+unreachableURL+": FAILED at tcp: ")
				if !ok {
					t.Fatalf("want a line \"directory %s: FAILED at tcp: ...\":\n%v", unreachableURL, r)
				}
				if !strings.Contains(line, "check that the server runs and that no firewall blocks the port") {
					t.Errorf("the tcp failure does not tell what to check: %s", line)
				}
				wantLine(t, r, r.stderr, "replyreset check-config: 1 of 2 directory URLs failed")
			})
		})
	}
}

func TestCheckConfigOffline(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig()) // its directory URL cannot be reached
	start := time.Now()
	r := runCLI(t, "check-config", "-offline", "-config", f.Path)
	wantCode(t, r, 0)
	if want := f.Path + ": syntax and values OK\n"; r.stdout != want {
		t.Errorf("stdout = %q, want only %q (nothing dialled):\n%v", r.stdout, want, r)
	}
	if r.stderr != "" {
		t.Errorf("stderr not empty:\n%v", r)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("check-config -offline took %v", took)
	}

	// The same file without -offline dials and fails: the URL is really down.
	r = runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	if _, ok := lineWithPrefix(r.stdout, "directory "+unreachableURL+": FAILED at tcp: "); !ok {
		t.Errorf("want the unreachable URL to fail at tcp:\n%v", r)
	}
}

// ---- enroll, enrollments, audit ---------------------------------------------

const (
	enrollPhoneTyped = "+1 (201) 555-0142"
	enrollPhone      = "+12015550142"
)

// listEnrollments runs `enrollments -format json` and decodes it.
func listEnrollments(t *testing.T, f configFile) []enroll.Enrollment {
	t.Helper()
	r := mustRun(t, "enrollments", "-config", f.Path, "-format", "json")
	var list []enroll.Enrollment
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("enrollments -format json is not JSON: %v\n%v", err, r)
	}
	return list
}

// auditEvents runs `audit -format json` with extra flags and decodes it.
func auditEvents(t *testing.T, f configFile, flags ...string) []enroll.Event {
	t.Helper()
	r := mustRun(t, append([]string{"audit", "-config", f.Path, "-format", "json"}, flags...)...)
	var events []enroll.Event
	if err := json.Unmarshal([]byte(r.stdout), &events); err != nil {
		t.Fatalf("audit -format json is not JSON: %v\n%v", err, r)
	}
	return events
}

func wantNothingStored(t *testing.T, f configFile) {
	t.Helper()
	if list := listEnrollments(t, f); len(list) != 0 {
		t.Errorf("enrollments = %+v, want none", list)
	}
}

func TestEnroll(t *testing.T) {
	for _, lab := range labs {
		t.Run(lab.name, func(t *testing.T) {
			t.Parallel()
			s := lab.get(t)
			usernameAttr := map[string]string{ldaplab.DialectAD: "sAMAccountName", ldaplab.DialectOpenLDAP: "uid"}[s.Dialect]

			t.Run("existing user", func(t *testing.T) {
				f := writeConfig(t, labConfig(s))
				user := s.UniqueName("cli")
				s.AddUser(t, ldaplab.UserSpec{Username: user})

				r := mustRun(t, "enroll", "-config", f.Path, user, enrollPhoneTyped)
				wantLine(t, r, r.stdout, fmt.Sprintf("enrolled %s with %s (en); confirmation SMS queued", user, enrollPhone))
				// The confirmation SMS waits in the outbox for the server to send.
				r = mustRun(t, "outbox", "-config", f.Path, "-format", "json")
				if !strings.Contains(r.stdout, `"purpose": "enrolled"`) || !strings.Contains(r.stdout, `"to": "`+enrollPhone+`"`) {
					t.Errorf("outbox after enroll:\n%s", r.stdout)
				}

				// The table lists the user, normalised phone and state.
				r = mustRun(t, "enrollments", "-config", f.Path)
				header := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0])
				if want := []string{"USERNAME", "PHONE", "STATE", "LANGUAGE", "METHOD", "UPDATED"}; !slices.Equal(header, want) {
					t.Errorf("enrollments header = %q, want %q", header, want)
				}
				line, ok := lineWithPrefix(r.stdout, user+" ")
				if !ok {
					t.Fatalf("enrollments does not list %s:\n%v", user, r)
				}
				if got := strings.Fields(line); len(got) != 6 || got[1] != enrollPhone || got[2] != "active" || got[3] != "en" || got[4] != "helpdesk" {
					t.Errorf("enrollments row = %q, want %s %s active en helpdesk <time>", got, user, enrollPhone)
				}

				list := listEnrollments(t, f)
				if len(list) != 1 {
					t.Fatalf("enrollments = %+v, want one", list)
				}
				if e := list[0]; e.Username != user || e.Phone != enrollPhone || e.State != enroll.StateActive || e.VerifiedAt.IsZero() {
					t.Errorf("enrollment = %+v, want %s %s active and verified", e, user, enrollPhone)
				}

				events := auditEvents(t, f)
				if len(events) != 1 {
					t.Fatalf("audit = %+v, want one enroll event", events)
				}
				ev := events[0]
				if ev.Action != "enroll" || ev.Outcome != "ok" || !strings.HasPrefix(ev.Actor, "cli:") || ev.Username != user || ev.Phone != enrollPhone {
					t.Errorf("audit event = %+v, want action enroll, outcome ok, actor cli:..., user %s, phone %s", ev, user, enrollPhone)
				}
			})

			t.Run("by", func(t *testing.T) {
				f := writeConfig(t, labConfig(s))
				user := s.UniqueName("cliby")
				s.AddUser(t, ldaplab.UserSpec{Username: user})
				mustRun(t, "enroll", "-config", f.Path, "-by", "jdoe-helpdesk", "-language", "fr", user, "201 555 0143")
				list := listEnrollments(t, f)
				if len(list) != 1 || list[0].Phone != "+12015550143" || list[0].Language != "fr" {
					t.Errorf("enrollments = %+v, want %s +12015550143 fr (default_region US)", list, user)
				}
				events := auditEvents(t, f, "-action", "enroll")
				if len(events) != 1 || events[0].Actor != "cli:jdoe-helpdesk" {
					t.Errorf("audit = %+v, want one enroll event by cli:jdoe-helpdesk", events)
				}
			})

			t.Run("unknown user", func(t *testing.T) {
				f := writeConfig(t, labConfig(s))
				user := s.UniqueName("ghost")
				r := runCLI(t, "enroll", "-config", f.Path, user, enrollPhoneTyped)
				wantCode(t, r, 1)
				wantLine(t, r, r.stderr, fmt.Sprintf("replyreset enroll: user %q is not in the directory (searched %s under %s)", user, usernameAttr, s.BaseDN))
				if r.stdout != "" {
					t.Errorf("a failed enroll printed to stdout:\n%v", r)
				}
				wantNothingStored(t, f)
			})

			t.Run("invalid phone", func(t *testing.T) {
				f := writeConfig(t, labConfig(s))
				user := s.UniqueName("clibad")
				s.AddUser(t, ldaplab.UserSpec{Username: user})
				r := runCLI(t, "enroll", "-config", f.Path, user, "12")
				wantCode(t, r, 1)
				line, ok := lineWithPrefix(r.stderr, `replyreset enroll: phone "12": `)
				if !ok || len(line) < len(`replyreset enroll: phone "12": `)+10 {
					t.Errorf("want a line saying why phone \"12\" is refused:\n%v", r)
				}
				wantNothingStored(t, f)
			})

			t.Run("phone taken", func(t *testing.T) {
				f := writeConfig(t, labConfig(s))
				first, second := s.UniqueName("clione"), s.UniqueName("clitwo")
				s.AddUser(t, ldaplab.UserSpec{Username: first})
				s.AddUser(t, ldaplab.UserSpec{Username: second})
				mustRun(t, "enroll", "-config", f.Path, first, enrollPhoneTyped)

				// The same number typed another way (national format).
				r := runCLI(t, "enroll", "-config", f.Path, second, "(201) 555-0142")
				wantCode(t, r, 1)
				line, ok := lineWithPrefix(r.stderr, "replyreset enroll: ")
				if !ok || !strings.Contains(line, enrollPhone+" is already enrolled by "+first) {
					t.Errorf("want the conflict on %s named:\n%v", enrollPhone, r)
				}
				list := listEnrollments(t, f)
				if len(list) != 1 || list[0].Username != first || list[0].Phone != enrollPhone {
					t.Errorf("enrollments = %+v, want only %s with %s", list, first, enrollPhone)
				}
				if events := auditEvents(t, f, "-action", "enroll", "-user", second); len(events) != 0 {
					t.Errorf("audit shows an enroll of %s that was refused: %+v", second, events)
				}

				// Enrolling the holder again with the same number is fine.
				mustRun(t, "enroll", "-config", f.Path, first, enrollPhone)
			})
		})
	}
}

// TestEnrollAuditNamesTheActor: "every admin action is audited with who".
// $USER is unset under cron, systemd units and `docker exec`; the trail
// must still say who enrolled, not "cli:". Not parallel: it sets $USER.
func TestEnrollAuditNamesTheActor(t *testing.T) {
	t.Setenv("USER", "")
	s := ldaplab.OpenLDAP(t)
	f := writeConfig(t, labConfig(s))
	user := s.UniqueName("cliwho")
	s.AddUser(t, ldaplab.UserSpec{Username: user})
	mustRun(t, "enroll", "-config", f.Path, user, enrollPhoneTyped)
	events := auditEvents(t, f, "-action", "enroll")
	if len(events) != 1 {
		t.Fatalf("audit = %+v, want one enroll event", events)
	}
	if actor := events[0].Actor; actor == "cli:" || !strings.HasPrefix(actor, "cli:") {
		t.Errorf("with $USER unset and no -by, the audit actor is %q: the trail does not say who enrolled %s.\n"+
			"admincmds.go runEnroll defaults -by to os.Getenv(\"USER\"); fall back to os/user.Current() "+
			"(name, else uid) so the actor is never empty", actor, user)
	}
}

func TestEnrollUsage(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	for _, args := range [][]string{
		{"enroll", "-config", f.Path},
		{"enroll", "-config", f.Path, "jdoe"},
		{"enroll", "-config", f.Path, "jdoe", "+1", "201 555 0142"},
	} {
		r := runCLI(t, args...)
		wantCode(t, r, 2)
		wantLine(t, r, r.stderr, "replyreset enroll: usage: want USER PHONE, e.g. replyreset enroll -config config.yaml jdoe '+1 555 555 0101'")
	}
	r := runCLI(t, "enroll", "jdoe", enrollPhone)
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset enroll: usage: -config FILE is required (or set REPLYRESET_CONFIG; see config.example.yaml)")

	r = runCLI(t, "enroll", "-config", f.Path, "-language", "de", "jdoe", enrollPhone)
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, `replyreset enroll: usage: -language "de": must be en or fr`)
	wantNothingStored(t, f)
}

// openTestStore opens the data file of f as a command would.
func openTestStore(t *testing.T, f configFile) (enroll.Store, func()) {
	t.Helper()
	cfg, err := LoadConfig(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	st, release, err := (&cmdEnv{}).openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st, release
}

// seedAudit writes events straight into the data file of f.
func seedAudit(t *testing.T, f configFile, events []enroll.Event) {
	t.Helper()
	st, release := openTestStore(t, f)
	defer release()
	for _, ev := range events {
		if _, err := st.AppendAudit(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditFilters(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig()) // audit reads the data file only
	now := time.Now().UTC().Truncate(time.Second)
	seedAudit(t, f, []enroll.Event{
		{Time: now.Add(-5 * time.Minute), Actor: "cli:root", Action: "enroll", Username: "alice", Phone: "+12015550101", Outcome: "ok"},
		{Time: now.Add(-4 * time.Minute), Actor: "sms:+12015550101", Action: "reset", Username: "alice", Phone: "+12015550101", Outcome: "ok"},
		{Time: now.Add(-3 * time.Minute), Actor: "sms:+12015550102", Action: "reset", Username: "bob", Phone: "+12015550102", Outcome: "denied", Detail: "rate limited"},
		{Time: now.Add(-2 * time.Minute), Actor: "sms:+12015550102", Action: "unlock", Username: "bob", Phone: "+12015550102", Outcome: "ok"},
		{Time: now.Add(-1 * time.Minute), Actor: "cli:root", Action: "enroll", Username: "carol", Phone: "+12015550103", Outcome: "ok"},
	})
	summary := func(events []enroll.Event) []string {
		var out []string
		for _, ev := range events {
			out = append(out, ev.Username+"/"+ev.Action)
		}
		return out
	}
	for _, tc := range []struct {
		flags []string
		want  []string
	}{
		{nil, []string{"alice/enroll", "alice/reset", "bob/reset", "bob/unlock", "carol/enroll"}},
		{[]string{"-user", "alice"}, []string{"alice/enroll", "alice/reset"}},
		{[]string{"-user", "ALICE"}, []string{"alice/enroll", "alice/reset"}},
		{[]string{"-action", "reset"}, []string{"alice/reset", "bob/reset"}},
		{[]string{"-user", "bob", "-action", "unlock"}, []string{"bob/unlock"}},
		{[]string{"-action", "enroll", "-limit", "1"}, nil}, // one event; which one is checked below
		{[]string{"-user", "nobody"}, nil},
	} {
		events := auditEvents(t, f, tc.flags...)
		got := summary(events)
		if slices.Contains(tc.flags, "-limit") {
			if len(events) != 1 || events[0].Action != "enroll" {
				t.Errorf("audit %q = %q, want exactly one enroll event", tc.flags, got)
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("audit %q = %q, want %q", tc.flags, got, tc.want)
		}
	}
	if events := auditEvents(t, f, "-limit", "3"); len(events) != 3 {
		t.Errorf("audit -limit 3 gave %d events, want 3", len(events))
	}

	// The table: a header and one row per event.
	r := mustRun(t, "audit", "-config", f.Path, "-user", "bob")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("audit -user bob: want a header and 2 rows:\n%v", r)
	}
	if got, want := strings.Fields(lines[0]), []string{"SEQ", "TIME", "ACTOR", "ACTION", "USER", "OUTCOME", "DETAIL"}; !slices.Equal(got, want) {
		t.Errorf("audit header = %q, want %q", got, want)
	}
	if got := strings.Fields(lines[1]); len(got) < 6 || got[0] != "3" || got[3] != "reset" || got[4] != "bob" || got[5] != "denied" {
		t.Errorf("audit row = %q, want seq 3, reset, bob, denied", got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-format", "xml"}, "replyreset audit: usage: -format must be table, csv or json"},
		{[]string{"-limit", "-1"}, "replyreset audit: usage: -since and -limit must not be negative"},
		{[]string{"-since", "yesterday"}, ""},
	} {
		r := runCLI(t, append([]string{"audit", "-config", f.Path}, tc.args...)...)
		wantCode(t, r, 2)
		if tc.want != "" {
			wantLine(t, r, r.stderr, tc.want)
		}
	}
}

// TestJSONListsAreArrays: `-format json` is for scripts (jq '.[]'), so an
// empty result must be [] like a full one, not null.
func TestJSONListsAreArrays(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	for _, args := range [][]string{
		{"enrollments", "-config", f.Path, "-format", "json"},
		{"audit", "-config", f.Path, "-format", "json"},
	} {
		r := mustRun(t, args...)
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list == nil {
			t.Errorf("replyreset %s %s: with nothing to list, stdout = %q, want a JSON array ([]).\n"+
				"admincmds.go writeJSON encodes the nil slice from the store as null; `jq '.[]'` then fails. "+
				"Make the list non-nil (e.g. if list == nil { list = []T{} }) before writeJSON", args[0], args[len(args)-2], r.stdout)
		}
	}
}

// ---- serve -----------------------------------------------------------------

// server is runServe running in a goroutine.
type server struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	stderr *enrolltest.LogBuffer
}

// startServe starts runServe on f (whose listen address is addr) and waits
// until /healthz answers (any status), for at most 10 s.
func startServe(t *testing.T, f configFile, addr string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{addr: addr, cancel: cancel, done: make(chan error, 1), stderr: &enrolltest.LogBuffer{}}
	go func() { s.done <- runServe(ctx, f.Path, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("runServe still running 30 s after cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err // for Cleanup and stop
			t.Fatalf("runServe returned before serving: %v\nlog:\n%s", err, s.stderr)
		default:
		}
		resp, err := httpClient.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz on %s: no answer within 10 s: %v\nlog:\n%s", addr, err, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop cancels the context and wants runServe to return nil within 20 s.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("runServe returned %v after cancel, want nil (graceful shutdown)\nlog:\n%s", err, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("runServe did not return within 20 s of cancel\nlog:\n%s", s.stderr)
	}
}

var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

type healthBody struct {
	Status    string `json:"status"`
	Version   string `json:"version"`
	Leader    bool   `json:"leader"`
	Directory struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"directory"`
	Store struct {
		Backend string `json:"backend"`
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
	} `json:"store"`
}

func getHealth(t *testing.T, addr string) (int, healthBody) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("/healthz Content-Type = %q, want application/json", ct)
	}
	var h healthBody
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("/healthz is not JSON: %v\n%s", err, raw)
	}
	return resp.StatusCode, h
}

func TestServeHealthyAndGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := ldaplab.OpenLDAP(t)
	c := labConfig(s)
	c.Listen = freePort(t)
	f := writeConfig(t, c)
	srv := startServe(t, f, c.Listen)

	code, h := getHealth(t, c.Listen)
	if code != http.StatusOK || h.Status != "ok" || !h.Directory.OK || !h.Store.OK {
		t.Errorf("/healthz = %d %+v, want 200, status ok, directory.ok and store.ok true", code, h)
	}
	if h.Version != version {
		t.Errorf("/healthz version = %q, want %q", h.Version, version)
	}
	if h.Store.Backend != "bolt" {
		t.Errorf("/healthz store.backend = %q, want bolt", h.Store.Backend)
	}
	// One node leads its jobs at once; the term is won in the background,
	// so wait for it (bounded: never leading is the failure).
	for deadline := time.Now().Add(30 * time.Second); !h.Leader && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		_, h = getHealth(t, c.Listen)
	}
	if !h.Leader {
		t.Errorf("/healthz leader = false for a serve that runs alone, want true")
	}
	if log := srv.stderr.String(); !strings.Contains(log, `"msg":"replyreset listening"`) || !strings.Contains(log, `"addr":"`+c.Listen+`"`) {
		t.Errorf("the log does not say where replyreset listens:\n%s", log)
	}

	// While serve holds the data file, the admin commands run inside it
	// through the control socket: same output, same exit codes.
	user := s.UniqueName("live")
	s.AddUser(t, ldaplab.UserSpec{Username: user})
	r := runCLI(t, "enroll", "-config", f.Path, "-by", "helpdesk-ann", user, "+1 201 555 0177")
	wantCode(t, r, 0)
	wantContains(t, r, r.stdout, "enrolled "+user+" with +12015550177")
	list := listEnrollments(t, f)
	if len(list) != 1 || list[0].Username != user || list[0].Phone != "+12015550177" {
		t.Errorf("enrollments through the running server = %+v", list)
	}
	r = runCLI(t, "audit", "-config", f.Path, "-format", "json")
	wantCode(t, r, 0)
	wantContains(t, r, r.stdout, `"actor": "cli:helpdesk-ann"`)
	r = runCLI(t, "enroll", "-config", f.Path, "nobody-"+user, "+1 201 555 0178")
	wantCode(t, r, 1)
	wantContains(t, r, r.stderr, "is not in the directory")

	srv.stop(t)
	if conn, err := net.DialTimeout("tcp", c.Listen, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after shutdown", c.Listen)
	}
	if log := srv.stderr.String(); !strings.Contains(log, `"msg":"shutting down"`) {
		t.Errorf("the log does not record the shutdown:\n%s", log)
	}
	// Shutdown released the data file.
	mustRun(t, "enrollments", "-config", f.Path)
}

func TestServeDegradedDirectory(t *testing.T) {
	t.Parallel()
	c := offlineConfig() // nothing listens at the directory URL
	c.Listen = freePort(t)
	f := writeConfig(t, c)
	srv := startServe(t, f, c.Listen)

	for i := range 2 { // and it keeps serving
		code, h := getHealth(t, c.Listen)
		if code != http.StatusServiceUnavailable || h.Status != "degraded" || h.Directory.OK || h.Directory.Error == "" || !h.Store.OK {
			t.Errorf("/healthz #%d = %d %+v, want 503, status degraded, directory.ok false with an error, store.ok true", i+1, code, h)
		}
	}
	select {
	case err := <-srv.done:
		srv.done <- err
		t.Fatalf("runServe exited while the directory is down: %v", err)
	default:
	}
	srv.stop(t)
}

func TestServeBadConfig(t *testing.T) {
	t.Parallel()
	path, problems := badFile(t)
	r := runCLI(t, "serve", "-config", path)
	wantCode(t, r, 1)
	for _, p := range problems {
		wantContains(t, r, r.stderr, p)
	}
	if !strings.HasPrefix(r.stderr, "replyreset serve: ") {
		t.Errorf("stderr does not start with the command name:\n%v", r)
	}

	r = runCLI(t, "serve")
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset serve: usage: -config FILE is required (or set REPLYRESET_CONFIG; see config.example.yaml)")
}

func TestServeListenError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := offlineConfig()
	c.Listen = ln.Addr().String() // taken
	f := writeConfig(t, c)
	r := runCLI(t, "serve", "-config", f.Path)
	wantCode(t, r, 1)
	wantContains(t, r, r.stderr, "replyreset serve: listen: ", "address already in use")
}

// ---- dispatch --------------------------------------------------------------

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "frobnicate")
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, `replyreset: usage: unknown command "frobnicate"`)
	wantLine(t, r, r.stderr, "  replyreset [command]")
	for _, c := range newRoot(&cmdEnv{}, io.Discard, io.Discard).Commands() {
		if _, ok := lineWithPrefix(r.stderr, "  "+c.Name()+" "); !ok {
			t.Errorf("usage does not list %s:\n%v", c.Name(), r)
		}
	}
	r = runCLI(t, "enroments")
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, `replyreset: usage: unknown command "enroments" (did you mean enrollments?)`)

	r = runCLI(t)
	wantCode(t, r, 2)
	wantLine(t, r, r.stderr, "replyreset: usage: missing command")
	wantLine(t, r, r.stderr, "  replyreset [command]")

	for _, help := range []string{"help", "-h", "--help", "-help"} {
		r = runCLI(t, help)
		wantCode(t, r, 0)
		wantLine(t, r, r.stdout, "  replyreset [command]")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "version")
	wantCode(t, r, 0)
	if want := "replyreset " + version + "\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}
