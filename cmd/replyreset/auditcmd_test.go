package main

import (
	"encoding/csv"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func TestAuditCSV(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	at := time.Date(2025, 3, 14, 10, 42, 0, 0, time.UTC)
	seedAudit(t, f, []enroll.Event{
		{Time: at, Actor: "admin:ann", Action: "deactivate", Username: "=HYPERLINK(\"http://evil\")", Outcome: "ok",
			Detail: "a, \"quoted\"\nsecond line", SourceIP: "192.0.2.7"},
		{Time: at.Add(time.Minute), Actor: "sms:+12015550101", Action: "reset", Username: "jdoe", Phone: "+12015550101",
			Outcome: "ok", Detail: "-1+1"},
		{Time: at.Add(2 * time.Minute), Actor: "@evil", Action: "unlock", Username: "bob", Outcome: "error", Detail: "plain"},
	})
	r := mustRun(t, "audit", "-config", f.Path, "-format", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("audit -format csv is not RFC 4180: %v\n%s", err, r.stdout)
	}
	want := [][]string{
		{"seq", "time", "actor", "action", "username", "phone", "outcome", "detail", "source_ip"},
		{"1", "2025-03-14T10:42:00Z", "admin:ann", "deactivate", "'=HYPERLINK(\"http://evil\")", "", "ok", "a, \"quoted\"\nsecond line", "192.0.2.7"},
		{"2", "2025-03-14T10:43:00Z", "sms:+12015550101", "reset", "jdoe", "'+12015550101", "ok", "'-1+1", ""},
		{"3", "2025-03-14T10:44:00Z", "'@evil", "unlock", "bob", "", "error", "plain", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("CSV rows:\n%q\nwant\n%q", rows, want)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("CSV row %d = %q\nwant        %q", i, rows[i], want[i])
		}
	}
	// Filters apply to every format; an empty result is just the header.
	r = mustRun(t, "audit", "-config", f.Path, "-format", "csv", "-user", "nobody")
	if r.stdout != strings.Join(want[0], ",")+"\n" {
		t.Errorf("empty CSV = %q, want the header only", r.stdout)
	}
}

func TestAuditTimeFilters(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	day := func(d int) time.Time { return time.Date(2025, 3, d, 12, 0, 0, 0, time.Local) }
	seedAudit(t, f, []enroll.Event{
		{Time: day(10), Actor: "cli:root", Action: "enroll", Username: "a", Outcome: "ok"},
		{Time: day(12), Actor: "cli:root", Action: "enroll", Username: "b", Outcome: "ok"},
		{Time: day(14), Actor: "cli:root", Action: "deactivate", Username: "c", Outcome: "ok"},
		{Time: time.Now().Add(-time.Hour), Actor: "cli:root", Action: "enroll", Username: "d", Outcome: "ok"},
	})
	users := func(flags ...string) []string {
		var out []string
		for _, ev := range auditEvents(t, f, flags...) {
			out = append(out, ev.Username)
		}
		return out
	}
	for _, tc := range []struct {
		flags []string
		want  []string
	}{
		{[]string{"-since", "2025-03-12"}, []string{"b", "c", "d"}},
		{[]string{"-until", "2025-03-12"}, []string{"a"}},
		{[]string{"-since", "2025-03-11", "-until", "2025-03-14"}, []string{"b"}},
		{[]string{"-since", day(12).UTC().Format(time.RFC3339)}, []string{"b", "c", "d"}},
		{[]string{"-until", day(12).Add(time.Second).Format(time.RFC3339)}, []string{"a", "b"}},
		{[]string{"-since", "24h"}, []string{"d"}},
		{[]string{"-since", "2025-03-01", "-action", "enroll", "-limit", "2"}, []string{"b", "d"}},
	} {
		if got := users(tc.flags...); !slices.Equal(got, tc.want) {
			t.Errorf("audit %q = %q, want %q", tc.flags, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-format", "xml"}, "replyreset audit: usage: -format must be table, csv or json"},
		{[]string{"-since", "last week"}, `replyreset audit: usage: -since "last week": want RFC 3339 (2025-03-14T10:42:00Z), a date (2025-03-14) or an age (24h)`},
		{[]string{"-until", "2025-13-01"}, `replyreset audit: usage: -until "2025-13-01": want RFC 3339 (2025-03-14T10:42:00Z), a date (2025-03-14) or an age (24h)`},
		{[]string{"-since", "2025-03-14", "-until", "2025-03-14"}, "replyreset audit: usage: -since must be before -until"},
	} {
		r := runCLI(t, append([]string{"audit", "-config", f.Path}, tc.args...)...)
		wantCode(t, r, 2)
		wantLine(t, r, r.stderr, tc.want)
	}
}

func TestForwardedArgs(t *testing.T) {
	t.Chdir(t.TempDir())
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	got := absoluteConfig([]string{"backup", "-config", "c.yaml", "-o=out.db", "-since", "2025-03-14", "--until=24h", "jdoe"})
	midnight := time.Date(2025, 3, 14, 0, 0, 0, 0, time.Local).Format(time.RFC3339)
	want := []string{"backup", "-config", dir + "/c.yaml", "-o=" + dir + "/out.db", "-since", midnight, "--until=24h", "jdoe"}
	if !slices.Equal(got, want) {
		t.Errorf("absoluteConfig =\n%q\nwant\n%q", got, want)
	}
}
