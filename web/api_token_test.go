package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
)

// TestAPITokenScopes: every route needs its scope (GET read, the others
// write); a token without it gets 403 insufficient_scope and changes
// nothing; msp, reserved, grants no route.
func TestAPITokenScopes(t *testing.T) {
	a := newAdminApp(t)
	owner := a.lab.HelpdeskUsername
	tokens := map[string]string{
		enroll.ScopeRead:  a.scopedToken("reader", owner, enroll.ScopeRead),
		enroll.ScopeWrite: a.scopedToken("writer", owner, enroll.ScopeWrite),
		enroll.ScopeMSP:   a.scopedToken("msp", owner, enroll.ScopeMSP),
	}
	before := len(a.events(""))
	for _, r := range apiRoutes(t, a) {
		path := strings.ReplaceAll(r.Path, ":username", "nobody-xyz")
		need := enroll.ScopeWrite
		if r.Method == http.MethodGet {
			need = enroll.ScopeRead
		}
		for scope, tok := range tokens {
			code, e := a.api(t, tok, r.Method, path, "", nil)
			what := r.Method + " " + path + " with a " + scope + " token"
			if scope == need {
				if code == http.StatusUnauthorized || code == http.StatusForbidden {
					t.Errorf("%s: %d %q (%s), want the call to go through", what, code, e.Error.Code, e.Error.Message)
				}
				continue
			}
			wantAPI(t, what, code, e, http.StatusForbidden, "insufficient_scope")
			if !strings.Contains(e.Error.Message, "needs an API token with the "+need+" scope; this one has: "+scope) {
				t.Errorf("%s: message %q", what, e.Error.Message)
			}
		}
	}
	// The refused calls changed nothing (the allowed ones, on an unknown
	// user, only audited their own failure).
	for _, ev := range a.events("")[before:] {
		if ev.Outcome == "ok" {
			t.Errorf("a call changed something: %+v", ev)
		}
	}
}

// TestAPITokenOwnerLeaves, against Samba AD: a token works only while its
// owner is an enabled member of the admin group (here through a nested
// group). Taking the owner out of the nested group, disabling the account
// or deleting it stops the token at the next request; other admins' tokens
// go on working.
func TestAPITokenOwnerLeaves(t *testing.T) {
	a := newAdminApp(t)
	ctx := context.Background()
	lab := a.lab
	keeper := a.scopedToken("keeper", lab.HelpdeskUsername, enroll.ScopeRead)

	// Only an admin may own a token.
	plain := a.user("notadmin")
	_, _, err := a.svc.CreateToken(ctx, enroll.TokenSpec{Name: "refused", Owner: plain, Scopes: []string{"read"}}, "cli:test")
	if !errors.Is(err, enroll.ErrAPITokenOwner) {
		t.Errorf("a token for a non-admin: %v, want ErrAPITokenOwner", err)
	}

	nestedOwner := func() (string, string) {
		name := lab.UniqueName("owner")
		dn := lab.AddUser(t, ldaplab.UserSpec{Username: name, Password: "Owner#Pass1x", DisplayName: "Owner " + name})
		sub := lab.AddGroup(t, ldaplab.GroupSpec{Name: lab.UniqueName("apiadm"), Members: []string{dn}})
		lab.AddMember(t, lab.AdminGroupDN, sub)
		return name, sub
	}
	for _, tc := range []struct {
		name, why string
		leave     func(t *testing.T, owner, sub string)
	}{
		{"removed from the nested group", "is not a member of directory.admin_group", func(t *testing.T, owner, sub string) {
			removeMember(t, lab, sub, owner)
		}},
		// The default AD user filter leaves disabled accounts out.
		{"disabled", "is not in the directory (removed, disabled", func(t *testing.T, owner, _ string) {
			m := ldap.NewModifyRequest(userDN(t, lab, owner), nil)
			m.Replace("userAccountControl", []string{"514"}) // NORMAL_ACCOUNT|ACCOUNTDISABLE
			if err := lab.AdminConn(t).Modify(m); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", "is not in the directory", func(t *testing.T, owner, _ string) {
			if err := lab.AdminConn(t).Del(ldap.NewDelRequest(userDN(t, lab, owner), nil)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner, sub := nestedOwner()
			tok := a.scopedToken(lab.UniqueName("tok"), owner, enroll.ScopeRead, enroll.ScopeWrite)
			if code, e := a.api(t, tok, "GET", "/api/v1/summary", "", nil); code != http.StatusOK {
				t.Fatalf("while an admin: %d %+v", code, e)
			}
			tc.leave(t, owner, sub)
			code, e := a.api(t, tok, "GET", "/api/v1/summary", "", nil)
			wantAPI(t, "the next request", code, e, http.StatusUnauthorized, "token_owner_not_admin")
			if !strings.Contains(e.Error.Message, owner+" "+tc.why) {
				t.Errorf("message %q, want it to say %q", e.Error.Message, owner+" "+tc.why)
			}
			code, e = a.api(t, tok, "POST", "/api/v1/lockouts/"+owner+"/unlock", "", nil)
			wantAPI(t, "a write", code, e, http.StatusUnauthorized, "token_owner_not_admin")
			evs := a.events("api_token_use")
			if len(evs) == 0 || evs[len(evs)-1].Outcome != "denied" || evs[len(evs)-1].Username != owner ||
				evs[len(evs)-1].SourceIP != "198.51.100.7" {
				t.Errorf("refusal not audited: %+v", evs)
			}
			if code, e := a.api(t, keeper, "GET", "/api/v1/summary", "", nil); code != http.StatusOK {
				t.Errorf("another admin's token: %d %+v", code, e)
			}
		})
	}
	// Refusals of a real token are not guesses: the address is not blocked.
	if _, blocked, err := a.store.Blocked(ctx, "api-token:ip:198.51.100.7", a.clock.Now()); err != nil || blocked {
		t.Errorf("address blocked after owner refusals: %v, %v", blocked, err)
	}
}

func userDN(t *testing.T, lab *ldaplab.Server, username string) string {
	t.Helper()
	res, err := lab.AdminConn(t).Search(ldapSearch(lab.BaseDN, "(sAMAccountName="+ldap.EscapeFilter(username)+")"))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("find %s: %v", username, err)
	}
	return res.Entries[0].DN
}
