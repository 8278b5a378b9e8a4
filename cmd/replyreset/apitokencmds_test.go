package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

// listTokens runs `api-token list -format json` and decodes it.
func listTokens(t *testing.T, f configFile) []enroll.APIToken {
	t.Helper()
	r := mustRun(t, "api-token", "list", "-config", f.Path, "-format", "json")
	var list []enroll.APIToken
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("api-token list -format json: %v\n%v", err, r)
	}
	return list
}

func TestAPITokenCommands(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig()) // tokens need no directory
	r := mustRun(t, "api-token", "create", "grafana", "-config", f.Path)
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "rr_") || len(secret) != 3+43 || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("create printed %q on stdout, want the secret alone on one line", r.stdout)
	}
	wantContains(t, r, r.stderr, `API token "grafana" created`, "shown only this once")

	r = runCLI(t, "api-token", "create", "-config", f.Path, "GRAFANA")
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, `replyreset api-token create: a live token is already named "GRAFANA": revoke it first, or pick another name`)

	r = mustRun(t, "api-token", "list", "-config", f.Path)
	header := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0])
	if strings.Join(header, " ") != "NAME ID STATE CREATED CREATED BY LAST USED" {
		t.Errorf("list header %q", header)
	}
	if line, ok := lineWithPrefix(r.stdout, "grafana "); !ok || !strings.Contains(line, " live ") || !strings.Contains(line, "never") {
		t.Errorf("list does not show grafana live and never used:\n%v", r)
	}
	if strings.Contains(r.stdout, secret) || strings.Contains(r.stdout, secret[3:]) {
		t.Error("list shows the secret")
	}
	list := listTokens(t, f)
	if len(list) != 1 || list[0].Name != "grafana" || !strings.HasPrefix(list[0].CreatedBy, "cli:") || list[0].Revoked() {
		t.Errorf("tokens = %+v", list)
	}

	r = mustRun(t, "api-token", "revoke", "-config", f.Path, "grafana")
	wantLine(t, r, r.stdout, `API token "grafana" (id `+list[0].ID+`) revoked: its secret no longer works`)
	r = runCLI(t, "api-token", "revoke", "-config", f.Path, "grafana")
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, `replyreset api-token revoke: no live API token is named "grafana" (see replyreset api-token list)`)
	if list := listTokens(t, f); len(list) != 1 || !list[0].Revoked() {
		t.Errorf("after revoke, tokens = %+v", list)
	}

	events := auditEvents(t, f)
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev.Action+"/"+ev.Outcome)
		if strings.Contains(ev.Detail, secret[3:]) {
			t.Errorf("the audit trail holds the secret: %+v", ev)
		}
	}
	if got := strings.Join(actions, " "); got != "api_token_create/ok api_token_create/denied api_token_revoke/ok api_token_revoke/denied" {
		t.Errorf("audit actions %q", got)
	}
	// Nor does the data file hold it.
	wantFileLacks(t, f.DataDir+"/replyreset.db", secret[3:])
}

func TestAPITokenUsage(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"api-token", "-config", f.Path}, "replyreset api-token: usage: want create NAME, list or revoke NAME, e.g. replyreset api-token create -config config.yaml grafana"},
		{[]string{"api-token", "-config", f.Path, "rotate", "x"}, "replyreset api-token: usage: want create NAME, list or revoke NAME, e.g. replyreset api-token create -config config.yaml grafana"},
		{[]string{"api-token", "-config", f.Path, "create"}, "replyreset api-token create: usage: want NAME, e.g. replyreset api-token create -config config.yaml grafana"},
		{[]string{"api-token", "create", "a", "b", "-config", f.Path}, "replyreset api-token create: usage: want NAME, e.g. replyreset api-token create -config config.yaml grafana"},
		{[]string{"api-token", "-config", f.Path, "list", "x"}, "replyreset api-token list: usage: list takes no arguments"},
		{[]string{"api-token", "revoke", "-config", f.Path}, "replyreset api-token revoke: usage: want NAME, e.g. replyreset api-token revoke -config config.yaml grafana"},
	} {
		r := runCLI(t, tc.args...)
		wantCode(t, r, 2)
		wantLine(t, r, r.stderr, tc.want)
	}
	r := runCLI(t, "api-token", "-config", f.Path, "create", "my token")
	wantCode(t, r, 2)
	wantContains(t, r, r.stderr, "only letters, digits")
}
