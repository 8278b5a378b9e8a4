package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/replyreset/replyreset/directory/demodir"
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

// embeddedDirectory starts the embedded AD directory (directory/demodir)
// with one plain user and returns it, that user and a configuration whose
// admin group is the directory's (the helpdesk admin is its member).
func embeddedDirectory(t *testing.T) (*demodir.Server, string, testConfig) {
	t.Helper()
	srv, err := demodir.Start(context.Background(), demodir.Options{CAFile: filepath.Join(t.TempDir(), "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.AddUser(demodir.UserSpec{Username: "plainuser", Password: "Plain#Pass1x", DisplayName: "Plain User"}); err != nil {
		t.Fatal(err)
	}
	svc := srv.ServiceAccount()
	return srv, "plainuser", testConfig{Dialect: "ad", URLs: []string{srv.URL()}, CAFile: srv.CAFile(), BindDN: svc.DN,
		BindPassword: svc.Password, BaseDN: srv.BaseDN(), AdminGroup: srv.AdminGroupDN()}
}

// embeddedConfig is a configuration of a fresh embedded directory, whose
// demodir.HelpdeskUsername may own API tokens.
func embeddedConfig(t *testing.T) testConfig {
	_, _, c := embeddedDirectory(t)
	return c
}

func TestAPITokenCommands(t *testing.T) {
	t.Parallel()
	srv, plain, c := embeddedDirectory(t)
	owner := srv.HelpdeskAdmin().Username
	f := writeConfig(t, c)
	r := mustRun(t, "api-token", "create", "grafana", "-config", f.Path, "-owner", owner, "-scopes", "write,read")
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "rr_") || len(secret) != 3+43 || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("create printed %q on stdout, want the secret alone on one line", r.stdout)
	}
	wantContains(t, r, r.stderr, `API token "grafana" created`, "for "+owner+" with scopes read,write", "shown only this once",
		"It stops working when "+owner+" leaves directory.admin_group")

	r = runCLI(t, "api-token", "create", "-config", f.Path, "-owner", owner, "-scopes", "read", "GRAFANA")
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, `replyreset api-token create: a live token is already named "GRAFANA": revoke it first, or pick another name`)
	r = runCLI(t, "api-token", "create", "-config", f.Path, "-owner", plain, "-scopes", "read", "ci")
	wantCode(t, r, 1)
	wantLine(t, r, r.stderr, "replyreset api-token create: -owner "+plain+": a token belongs to an enabled member of directory.admin_group, and "+
		plain+" is not a member of directory.admin_group")
	r = runCLI(t, "api-token", "create", "-config", f.Path, "-owner", "nobody", "-scopes", "read", "ci")
	wantCode(t, r, 1)
	wantContains(t, r, r.stderr, "nobody is not in the directory")

	r = mustRun(t, "api-token", "list", "-config", f.Path)
	header := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0])
	if strings.Join(header, " ") != "NAME ID OWNER SCOPES STATE CREATED CREATED BY LAST USED" {
		t.Errorf("list header %q", header)
	}
	if line, ok := lineWithPrefix(r.stdout, "grafana "); !ok || !strings.Contains(line, " "+owner+" ") ||
		!strings.Contains(line, " read,write ") || !strings.Contains(line, " live ") || !strings.Contains(line, "never") {
		t.Errorf("list does not show grafana owned by %s, read,write, live and never used:\n%v", owner, r)
	}
	if strings.Contains(r.stdout, secret) || strings.Contains(r.stdout, secret[3:]) {
		t.Error("list shows the secret")
	}
	list := listTokens(t, f)
	if len(list) != 1 || list[0].Name != "grafana" || list[0].Owner != owner || strings.Join(list[0].Scopes, ",") != "read,write" ||
		!strings.HasPrefix(list[0].CreatedBy, "cli:") || list[0].Revoked() {
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
	if got := strings.Join(actions, " "); got != "api_token_create/ok api_token_create/denied api_token_create/denied api_token_create/denied "+
		"api_token_revoke/ok api_token_revoke/denied" {
		t.Errorf("audit actions %q", got)
	}
	// Nor does the data file hold it.
	wantFileLacks(t, f.DataDir+"/replyreset.db", secret[3:])
}

func TestAPITokenUsage(t *testing.T) {
	t.Parallel()
	f := writeConfig(t, offlineConfig())
	const want = "want create -owner USER -scopes read,write NAME, list or revoke NAME, " +
		"e.g. replyreset api-token create -config config.yaml -owner jdoe -scopes read,write grafana"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"api-token", "-config", f.Path}, "replyreset api-token: usage: " + want},
		{[]string{"api-token", "-config", f.Path, "rotate", "x"}, "replyreset api-token: usage: " + want},
		{[]string{"api-token", "-config", f.Path, "create"}, "replyreset api-token create: usage: want NAME, e.g. replyreset api-token create -config config.yaml -owner jdoe -scopes read,write grafana"},
		{[]string{"api-token", "create", "a", "b", "-config", f.Path}, "replyreset api-token create: usage: want NAME, e.g. replyreset api-token create -config config.yaml -owner jdoe -scopes read,write grafana"},
		{[]string{"api-token", "-config", f.Path, "list", "x"}, "replyreset api-token list: usage: list takes no arguments"},
		{[]string{"api-token", "revoke", "-config", f.Path}, "replyreset api-token revoke: usage: want NAME, e.g. replyreset api-token revoke -config config.yaml grafana"},
		{[]string{"api-token", "create", "-config", f.Path, "-scopes", "read", "ci"}, "replyreset api-token create: usage: -owner USER is required: the admin the token belongs to (a member of directory.admin_group)"},
		{[]string{"api-token", "create", "-config", f.Path, "-owner", "jdoe", "ci"}, "replyreset api-token create: usage: -scopes: a token needs at least one scope (read, write, msp)"},
		{[]string{"api-token", "create", "ci", "--owner=jdoe", "--scopes", "read,admin", "-config", f.Path}, `replyreset api-token create: usage: -scopes: unknown scope "admin": the scopes are read, write, msp`},
	} {
		r := runCLI(t, tc.args...)
		wantCode(t, r, 2)
		wantLine(t, r, r.stderr, tc.want)
	}
	r := runCLI(t, "api-token", "-config", f.Path, "create", "-owner", "jdoe", "-scopes", "read", "my token")
	wantCode(t, r, 2)
	wantContains(t, r, r.stderr, "only letters, digits")
	// -owner and -scopes belong to create only.
	r = runCLI(t, "api-token", "list", "-config", f.Path, "-owner", "jdoe")
	wantCode(t, r, 2)
	wantContains(t, r, r.stderr, "unknown flag: --owner")
	wantNothingStored(t, f)
}

// putLegacyToken writes a token as a replyreset without token owners
// stored it (no owner, no scopes) into f's data file, and returns its
// secret.
func putLegacyToken(t *testing.T, f configFile, name string) string {
	t.Helper()
	_, release := openTestStore(t, f) // creates the data file
	release()
	sealer, err := enroll.LoadOrCreateKey(filepath.Join(f.DataDir, "replyreset.key"))
	if err != nil {
		t.Fatal(err)
	}
	secret := "rr_" + strings.Repeat("L", 43)
	hash, id := sealer.Hash("api-token", secret), "00aa11bb22cc33dd"
	db, err := bbolt.Open(filepath.Join(f.DataDir, "replyreset.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := `{"id":"` + id + `","name":"` + name + `","created_at":"2026-01-05T10:00:00Z","created_by":"cli:root","hash":"` + hash + `"}`
	err = db.Update(func(tx *bbolt.Tx) error {
		for bucket, kv := range map[string][2]string{"api_tokens": {id, rec}, "api_token_hashes": {hash, id}, "api_token_names": {name, id}} {
			if err := tx.Bucket([]byte(bucket)).Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestAPITokenOwnerLeavesServe: the real server, the embedded directory.
// A token works while its owner is in the admin group and is refused at
// the next request once the owner is taken out of the nested group that
// made it a member; a token stored before
// owners existed is listed as refused and answered 401 token_no_owner.
func TestAPITokenOwnerLeavesServe(t *testing.T) {
	t.Parallel()
	srv, _, c := embeddedDirectory(t)
	c.Listen = freePort(t)
	f := writeConfig(t, c)
	legacy := putLegacyToken(t, f, "old-script")
	r := mustRun(t, "api-token", "list", "-config", f.Path)
	if line, ok := lineWithPrefix(r.stdout, "old-script "); !ok || !strings.Contains(line, "refused: no owner") {
		t.Errorf("list does not show the legacy token as refused:\n%v", r)
	}
	wantContains(t, r, r.stderr, "warning: tokens made before tokens had an owner and scopes are refused: create each again")
	admin := srv.HelpdeskAdmin()
	secret := strings.TrimSpace(mustRun(t, "api-token", "create", "-config", f.Path, "-owner", admin.Username, "-scopes", "read", "bot").stdout)
	startServe(t, f, c.Listen)

	get := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+c.Listen+"/api/v1/summary", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(secret); code != http.StatusOK {
		t.Fatalf("while an admin: %d %s", code, body)
	}
	if code, body := get(legacy); code != http.StatusUnauthorized || !strings.Contains(body, `"token_no_owner"`) ||
		!strings.Contains(body, "replyreset api-token revoke old-script") {
		t.Errorf("legacy token: %d %s", code, body)
	}
	// The helpdesk admin is in the admin group through Tier2 (nested).
	if err := srv.RemoveMember("CN=Tier2,OU=Groups,"+srv.BaseDN(), admin.DN); err != nil {
		t.Fatal(err)
	}
	if code, body := get(secret); code != http.StatusUnauthorized || !strings.Contains(body, `"token_owner_not_admin"`) ||
		!strings.Contains(body, admin.Username+" is not a member of directory.admin_group") {
		t.Errorf("after the owner left the admin group: %d %s", code, body)
	}
}
