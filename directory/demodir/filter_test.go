package demodir

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
)

// filterFixture is a small directory for filter tests: users with odd
// values, and nested groups g1 > g2 > g3 (g3 holds carol, g2 bob, g1 alice).
func filterFixture(t *testing.T) *Server {
	t.Helper()
	s := start(t, Options{})
	add := func(u UserSpec) string {
		t.Helper()
		dn, err := s.AddUser(u)
		if err != nil {
			t.Fatal(err)
		}
		return dn
	}
	alice := add(UserSpec{Username: "alice", Password: "Secret#Pass1", DisplayName: "Alice A*B (x)", Mail: "alice@example.test", Mobile: "+15550100101", GivenName: "Alice"})
	bob := add(UserSpec{Username: "bob", Password: "Secret#Pass1", DisplayName: `Bob \ Back`, Mail: "bob@example.test"})
	carol := add(UserSpec{Username: "carol", Password: "Secret#Pass1", DisplayName: "Carol Ünïcode", Disabled: true})
	add(UserSpec{Username: "dave", CN: "Dave, Jr.", Password: "Secret#Pass1", DisplayName: "Dave"})
	g3, err := s.AddGroup("g3", "", carol)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := s.AddGroup("g2", "", bob, g3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddGroup("g1", "", alice, g2); err != nil {
		t.Fatal(err)
	}
	return s
}

// names runs filter over the fixture's Staff OU and returns the
// sAMAccountNames of the users that match, sorted.
func names(t *testing.T, s *Server, filter string) ([]string, error) {
	t.Helper()
	f, err := parseFilter(filter)
	if err != nil {
		return nil, err
	}
	keys, lerr := s.store.find(searchRequest{base: s.UsersDN(), scope: gldap.WholeSubtree, filter: f})
	if lerr != nil {
		return nil, lerr
	}
	var out []string
	for _, k := range keys {
		if e := s.store.entries[k]; e.kind == kindUser {
			out = append(out, e.first("sAMAccountName"))
		}
	}
	slices.Sort(out)
	return out, nil
}

func TestFilterEvaluation(t *testing.T) {
	s := filterFixture(t)
	g1 := "CN=g1,OU=Groups," + s.BaseDN()
	g2 := "CN=g2,OU=Groups," + s.BaseDN()
	people := "(&(objectCategory=person)(objectClass=user))"
	for _, c := range []struct {
		filter string
		want   string // comma-separated usernames
	}{
		{"(sAMAccountName=alice)", "alice"},
		{"(SAMACCOUNTNAME=ALICE)", "alice"}, // names and values without case
		{"(mail=*)", "alice,bob,helpdeskadmin"},
		{"(!(mail=*))", "carol,dave"},
		{"(!(mobile=+15550100101))", "bob,carol,dave,helpdeskadmin"}, // absent counts as not equal
		{"(&(objectClass=user)(|(sAMAccountName=bob)(sAMAccountName=carol)))", "bob,carol"},
		{"(displayName=Alice A\\2aB \\28x\\29)", "alice"}, // escaped * ( ) are literal
		{"(displayName=Alice A*)", "alice"},
		{"(displayName=*\\2a*)", "alice"},
		{"(displayName=*\\5c*)", "bob"}, // a literal backslash
		{"(displayName=*\\28x\\29)", "alice"},
		{"(displayName=A*B*x*)", "alice"},
		{"(displayName=A*x*B*)", ""}, // substrings in order
		{"(displayName=carol ünïcode)", "carol"},
		{"(displayName=*ÜNÏ*)", "carol"},
		{"(cn=Dave\\2c Jr.)", "dave"},
		{"(displayName~=dave)", "dave"},
		{"(sAMAccountName>=c)", "carol,dave,helpdeskadmin"},
		{"(sAMAccountName<=b)", "alice"},
		{"(userAccountControl>=514)", "carol"},
		{"(userAccountControl<=512)", "alice,bob,dave,helpdeskadmin"},
		{"(userAccountControl:1.2.840.113556.1.4.803:=2)", "carol"},
		{"(userAccountControl:1.2.840.113556.1.4.804:=3)", "carol"},
		{"(&" + people + "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", "alice,bob,dave,helpdeskadmin"},
		{"(objectCategory=Person)", "alice,bob,carol,dave,helpdeskadmin"},
		{"(objectCategory=CN=Person,CN=Schema,CN=Configuration," + s.BaseDN() + ")", "alice,bob,carol,dave,helpdeskadmin"},
		{"(objectCategory=group)", ""},
		{"(memberOf=" + ldap.EscapeFilter(g1) + ")", "alice"},
		{"(memberOf=" + ldap.EscapeFilter(strings.ToUpper(g2)) + ")", "bob"},
		{"(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(g1) + ")", "alice,bob,carol"},
		{"(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(g2) + ")", "bob,carol"},
		{"(memberOf:1.2.840.113556.1.4.1941:=CN=nosuch,OU=Groups," + s.BaseDN() + ")", ""},
		{"(ou:dn:=Staff)", "alice,bob,carol,dave,helpdeskadmin"},
		{"(sAMAccountName:2.5.13.2:=BOB)", "bob"},
		{"(pwdLastSet>=1)", "alice,bob,carol,dave,helpdeskadmin"},
		{"(lockoutTime>=1)", ""},
		{"(whenCreated>=20000101000000.0Z)", "alice,bob,carol,dave,helpdeskadmin"},
		{"(whenCreated<=20000101000000Z)", ""},
		{"(msDS-User-Account-Control-Computed=0)", ""}, // constructed: cannot be filtered on
		{"(!(msDS-User-Account-Control-Computed=0))", ""},
		{"(userAccountControl=notanumber)", ""},
		{"(!(userAccountControl=notanumber))", ""}, // undefined stays undefined under NOT
		{"(nosuchattribute=*)", ""},
		{"(&)", "alice,bob,carol,dave,helpdeskadmin"},
		{"(|)", ""},
	} {
		got, err := names(t, s, c.filter)
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		var want []string
		if c.want != "" {
			want = strings.Split(c.want, ",")
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s matched %v, want %v", c.filter, got, want)
		}
	}
}

func TestFilterInChainOnMember(t *testing.T) {
	s := filterFixture(t)
	carol := "CN=carol," + s.UsersDN()
	f, err := parseFilter("(member:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(carol) + ")")
	if err != nil {
		t.Fatal(err)
	}
	keys, lerr := s.store.find(searchRequest{base: "OU=Groups," + s.BaseDN(), scope: gldap.SingleLevel, filter: f})
	if lerr != nil {
		t.Fatal(lerr)
	}
	var got []string
	for _, k := range keys {
		got = append(got, s.store.entries[k].first("cn"))
	}
	slices.Sort(got)
	if want := []string{"g1", "g2", "g3"}; !slices.Equal(got, want) {
		t.Errorf("groups holding carol through nesting = %v, want %v", got, want)
	}
}

func TestFilterErrors(t *testing.T) {
	s := filterFixture(t)
	for _, bad := range []string{"", "cn=x", "(cn=x", "(cn=\\zz)", "(&(cn=x)"} {
		if _, err := names(t, s, bad); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
	_, err := names(t, s, "(cn:1.2.3.4:=x)")
	var ure *unknownRuleError
	if !errors.As(err, &ure) || ure.rule != "1.2.3.4" {
		t.Errorf("unknown matching rule: %v, want an unknownRuleError", err)
	}
	// Over LDAP: inappropriateMatching.
	c := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	_, err = c.Search(ldap.NewSearchRequest(s.BaseDN(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(cn:1.2.3.4:=x)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInappropriateMatching) {
		t.Errorf("search with an unknown matching rule: %v, want inappropriateMatching", err)
	}
}

// TestSearchOverLDAP checks scopes, attribute selection, size limits and
// the naming-context boundary through the protocol.
func TestSearchOverLDAP(t *testing.T) {
	s := filterFixture(t)
	c := bound(t, s, s.ServiceAccount().DN, s.ServiceAccount().Password)
	search := func(base string, scope int, filter string, size int, attrs ...string) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, size, 0, false, filter, attrs, nil))
	}
	res, err := search(s.BaseDN(), ldap.ScopeWholeSubtree, "(sAMAccountName=alice)", 0, "sAMAccountName", "memberOf", "msDS-User-Account-Control-Computed")
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("search alice: %v, %+v", err, res)
	}
	e := res.Entries[0]
	if got := e.GetAttributeValue("sAMAccountName"); got != "alice" {
		t.Errorf("sAMAccountName = %q", got)
	}
	if got := e.GetAttributeValues("memberOf"); len(got) != 1 || !strings.HasPrefix(got[0], "CN=g1,") {
		t.Errorf("memberOf = %v, want the direct group g1 only", got)
	}
	if got := e.GetAttributeValue("msDS-User-Account-Control-Computed"); got != "0" {
		t.Errorf("computed flags = %q, want 0", got)
	}
	if len(e.Attributes) != 3 {
		t.Errorf("asked for 3 attributes, got %d", len(e.Attributes))
	}
	// "*": every stored attribute, memberOf, never unicodePwd or the constructed one.
	res, err = search("CN=alice,"+s.UsersDN(), ldap.ScopeBaseObject, "(objectClass=*)", 0)
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read alice: %v", err)
	}
	all := res.Entries[0]
	for _, a := range []string{"objectClass", "sAMAccountName", "userPrincipalName", "uSNChanged", "whenChanged", "objectGUID", "memberOf", "pwdLastSet"} {
		if len(all.GetAttributeValues(a)) == 0 {
			t.Errorf("\"*\" did not return %s", a)
		}
	}
	for _, a := range []string{"unicodePwd", "msDS-User-Account-Control-Computed"} {
		if len(all.GetAttributeValues(a)) != 0 {
			t.Errorf("\"*\" returned %s", a)
		}
	}
	// "1.1": no attributes.
	res, err = search("CN=alice,"+s.UsersDN(), ldap.ScopeBaseObject, "(objectClass=*)", 0, "1.1")
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].Attributes) != 0 {
		t.Errorf("1.1: %v, %+v", err, res)
	}
	// Scopes.
	res, err = search(s.BaseDN(), ldap.ScopeSingleLevel, "(objectClass=organizationalUnit)", 0, "1.1")
	if err != nil || len(res.Entries) != 3 { // Service Accounts, Groups, Staff
		t.Errorf("one-level OUs: %v, %d entries", err, len(res.Entries))
	}
	res, err = search("CN=alice,"+s.UsersDN(), ldap.ScopeBaseObject, "(sAMAccountName=bob)", 0, "1.1")
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("base scope with a non-matching filter: %v, %d entries", err, len(res.Entries))
	}
	// The configuration naming context is not part of the domain's subtree.
	res, err = search(s.BaseDN(), ldap.ScopeWholeSubtree, "(objectClass=crossRef)", 0, "1.1")
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("crossRef under the domain: %v, %d entries, want none", err, len(res.Entries))
	}
	res, err = search("CN=Partitions,CN=Configuration,"+s.BaseDN(), ldap.ScopeSingleLevel, "(objectClass=crossRef)", 0, "nETBIOSName", "nCName")
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("nETBIOSName") != "DEMO" {
		t.Errorf("crossRef: %v, %+v", err, res)
	}
	// Size limit: the first entries, then sizeLimitExceeded.
	res, err = search(s.BaseDN(), ldap.ScopeWholeSubtree, "(objectClass=user)", 2, "1.1")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || res == nil || len(res.Entries) != 2 {
		t.Errorf("size limit 2: %v, %+v", err, res)
	}
	// A missing base: noSuchObject with the best match.
	_, err = search("OU=Nowhere,"+s.UsersDN(), ldap.ScopeWholeSubtree, "(objectClass=*)", 0)
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultNoSuchObject || !strings.EqualFold(le.MatchedDN, s.UsersDN()) {
		t.Errorf("missing base: %v (matched %q)", err, le.MatchedDN)
	}
}
