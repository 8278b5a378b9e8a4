package directory

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestAdminQueryFiltersEscape(t *testing.T) {
	for _, hostile := range []string{`a*b(c)\5c`, `*)(objectClass=*`, "x\x00y", "é*"} {
		for _, f := range []string{
			anyAttrFilter(adUserFilter, []string{"sAMAccountName", "displayName"}, hostile, true),
			anyAttrFilter(adGroupFilter, []string{"cn", "sAMAccountName"}, hostile, false),
			adUsersInChainFilter(adUserFilter, "CN="+hostile+",DC=example,DC=com"),
		} {
			if _, err := ldap.CompileFilter(f); err != nil {
				t.Errorf("filter %s does not compile: %v", f, err)
			}
			if strings.Contains(f, hostile) {
				t.Errorf("filter %s holds %q unescaped", f, hostile)
			}
		}
	}
	if f := anyAttrFilter("(objectClass=user)", []string{"cn", "mail"}, "a*", true); f != `(&(objectClass=user)(|(cn=*a\2a*)(mail=*a\2a*)))` {
		t.Errorf("anyAttrFilter(substring) = %s", f)
	}
	if f := anyAttrFilter(groupFilter, []string{"cn"}, "R&D", false); f != "(&"+groupFilter+"(|(cn=R&D)))" {
		t.Errorf("anyAttrFilter(equality) = %s", f)
	}
}

func TestSearchAttributes(t *testing.T) {
	c := &Client{cfg: Config{Dialect: DialectAD, MailAttribute: "mail", UsernameAttribute: "CN"}}
	if got := strings.Join(c.searchAttributes(), ","); got != "CN,displayName,givenName,sn,mail,userPrincipalName" {
		t.Errorf("AD searchAttributes = %s", got)
	}
	c.cfg = Config{Dialect: DialectOpenLDAP, MailAttribute: "email"}
	if got := strings.Join(c.searchAttributes(), ","); got != "uid,displayName,cn,givenName,sn,email" {
		t.Errorf("OpenLDAP searchAttributes = %s", got)
	}
}

func TestInBase(t *testing.T) {
	c := &Client{cfg: Config{BaseDN: "OU=Corp,DC=example,DC=com"}}
	for dn, want := range map[string]bool{
		"OU=Corp,DC=example,DC=com":           true,
		"ou=corp, dc=Example,dc=com":          true,
		"OU=Sales,OU=Corp,DC=example,DC=com":  true,
		`CN=a\,b,OU=Corp,DC=example,DC=com`:   true,
		"DC=example,DC=com":                   false,
		"OU=Other,DC=example,DC=com":          false,
		"OU=Corp,DC=example,DC=org":           false,
		"OU=Corp,DC=example,DC=com,DC=evil":   false,
		"OU=Sales,OU=Corpx,DC=example,DC=com": false,
		"not a dn":                            false,
		"*)(cn=*,OU=Corp,DC=example,DC=com":   false,
		"":                                    false,
		"R&D=Team,OU=Corp,DC=example,DC=com":  false,
		"1.2.3.4=x,OU=Corp,DC=example,DC=com": true,
	} {
		if got := c.inBase(dn); got != want {
			t.Errorf("inBase(%q) = %v, want %v", dn, got, want)
		}
	}
	if err := c.checkInBase("op", "DC=example,DC=com"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("checkInBase(parent of base) = %v, want ErrInvalidInput", err)
	}
	if isDN("Helpdesk") || isDN("R&D=x") || !isDN("cn=Helpdesk,ou=groups,dc=example,dc=org") {
		t.Errorf("isDN tells names and DNs apart wrongly")
	}
}

func TestSortUsers(t *testing.T) {
	users := []User{{Username: "bob"}, {Username: "Alice"}, {Username: "alice", DN: "b"}, {Username: "alice", DN: "a"}, {Username: "Carol"}}
	sortUsers(users)
	var got []string
	for _, u := range users {
		got = append(got, u.Username+"/"+u.DN)
	}
	if s := strings.Join(got, " "); s != "Alice/ alice/a alice/b bob/ Carol/" {
		t.Errorf("sortUsers = %s", s)
	}
}

func TestCheckListSize(t *testing.T) {
	c, err := New(Config{Dialect: DialectAD, URLs: []string{"ldap://127.0.0.1:1"}, BindDN: "cn=x", BindPassword: "x",
		BaseDN: "dc=example,dc=com", MailAttribute: "mail", MobileAttribute: "mobile", Timeout: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		n       int
		limited bool
		want    error
	}{
		{0, false, nil}, {maxListEntries, false, nil}, {maxListEntries + 1, true, ErrTooMany},
		{maxListEntries + 1, false, ErrTooMany}, {500, true, ErrTooMany},
	} {
		if err := c.checkListSize("op", tc.n, tc.limited); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("checkListSize(%d, %v) = %v, want %v", tc.n, tc.limited, err, tc.want)
		}
	}
	for _, q := range []string{"", "a\x00", "\xff", "a\nb"} {
		if err := checkInput("op", "query", q); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("checkInput(%q) = %v, want ErrInvalidInput", q, err)
		}
	}
}
