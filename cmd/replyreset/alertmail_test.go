package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// TestAdminAlertMailConfig: admin.alert_mail is a list of addresses, each
// one checked, with its key path and line.
func TestAdminAlertMailConfig(t *testing.T) {
	cfg := mustParseConfig(t, minimalConfig+"admin:\n  alert_mail: [\"soc@example.com\", \"SOC <soc2@example.com>\"]\n", nil, nil)
	if want := []string{"soc@example.com", "SOC <soc2@example.com>"}; !slices.Equal(cfg.Admin.AlertMail, want) {
		t.Errorf("admin.alert_mail = %q, want %q", cfg.Admin.AlertMail, want)
	}
	assertProblems(t, configProblems(t, minimalConfig+"admin:\n  alert_mail: [soc@example.com, \"not an address\"]\n", nil, nil),
		[]string{`line 11: admin.alert_mail[1]: "not an address" is not a mail address (e.g. security@example.com)`})
}

// TestCheckConfigWarnsAlertsReachNobody: check-config says, on a line
// starting "warning: ", when security alerts would reach nobody, and
// still exits 0.
func TestCheckConfigWarnsAlertsReachNobody(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	srv := newSMTP(t)
	const prefix = "warning: security alerts (NOT ME, lockout storms, SIM swaps, SMS budgets) reach nobody: "
	for _, tc := range []struct {
		name  string
		mail  bool
		edit  func(string) string
		warns string // "" = no warning
	}{
		{name: "mail off", warns: prefix + "mail is not configured (mail.host)"},
		{name: "no admin group, no alert_mail", mail: true,
			warns: prefix + "admin.alert_mail is empty and directory.admin_group is not set"},
		{name: "alert_mail", mail: true, edit: func(s string) string { return s + "admin:\n  alert_mail: [soc@example.com]\n" }},
		{name: "admin group with a mail", mail: true, edit: func(s string) string {
			return strings.Replace(s, "  timeout: 5s\n", "  timeout: 5s\n  admin_group: "+q(lab.AdminGroupDN)+"\n", 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := moreConfig{}
			if tc.mail {
				m.smtp = srv
			}
			f := writeMoreConfig(t, labConfig(lab), m)
			if tc.edit != nil {
				raw, err := os.ReadFile(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, f.Path, tc.edit(string(raw)))
			}
			r := runCLI(t, "check-config", "-config", f.Path)
			wantCode(t, r, 0)
			var warnings []string
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.HasPrefix(l, "warning: security alerts") {
					warnings = append(warnings, l)
				}
			}
			switch {
			case tc.warns == "" && len(warnings) > 0:
				t.Errorf("warned %q, want no warning\n%v", warnings, r)
			case tc.warns != "" && (len(warnings) != 1 || warnings[0] != tc.warns):
				t.Errorf("warnings %q, want %q\n%v", warnings, tc.warns, r)
			}
		})
	}
}
