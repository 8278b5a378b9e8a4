package directory

import (
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func TestLockoutFiltersEscape(t *testing.T) {
	hostile := `cn=a*b(c)\5c\,d,ou=x,dc=example,dc=org`
	since := time.Date(2026, 11, 22, 10, 42, 0, 0, time.UTC)
	for _, f := range []string{
		openldapLockoutFilter(openldapUserFilter, since, []lockSeen{{DN: hostile, Attr: attrLockedTime, Value: "20261122104200Z"},
			{DN: "uid=p,dc=example,dc=org", Attr: "modifyTimestamp", Value: "x)(uid=*"},
			{DN: "uid=q,dc=example,dc=org", Attr: "bad attr)(", Value: "1"}}),
		openldapLockoutFilter(openldapUserFilter, time.Time{}, nil),
		adLockoutFilter(adUserFilter, 0, 4012),
		adLockoutFilter(adUserFilter, 4012, 4015),
		adLockoutFilter(adUserFilter, 4012, 9000),
		adMemberInChainFilter(adUserFilter, hostile, "mail"),
		adInChainFilter(hostile),
		groupOrUserFilter(openldapUserFilter),
		groupFilter,
	} {
		if _, err := ldap.CompileFilter(f); err != nil {
			t.Errorf("filter %s does not compile: %v", f, err)
		}
		if strings.Contains(f, "a*b") || strings.Contains(f, "(c)") || strings.Contains(f, "x)(uid") || strings.Contains(f, "bad attr") {
			t.Errorf("filter %s holds an unescaped value", f)
		}
	}
	f := openldapLockoutFilter(openldapUserFilter, since, nil)
	if !strings.Contains(f, "(pwdAccountLockedTime>=20261122104200Z)") || !strings.Contains(f, "(pwdAccountLockedTime=*)") ||
		!strings.Contains(f, "(&(pwdAccountLockedTime=000001010000Z)(modifyTimestamp>=20261122104200Z))") {
		t.Errorf("incremental OpenLDAP filter = %s", f)
	}
	for _, c := range []struct {
		from, to int64
		want     string
	}{
		{0, 4012, "(&(lockoutTime>=1)(objectClass=user))"},
		{4012, 4012, "(&(|(uSNChanged=4012))(lockoutTime>=1)(objectClass=user))"},
		{4012, 4014, "(&(|(uSNChanged=4012)(uSNChanged=4013)(uSNChanged=4014))(lockoutTime>=1)(objectClass=user))"},
		{4012, 4012 + adUSNList, "(&(uSNChanged>=4012)(lockoutTime>=1)(objectClass=user))"},
		{4012, 4011, "(&(uSNChanged>=4012)(lockoutTime>=1)(objectClass=user))"},
	} {
		if f := adLockoutFilter("(objectClass=user)", c.from, c.to); f != c.want {
			t.Errorf("adLockoutFilter(%d, %d) = %s, want %s", c.from, c.to, f, c.want)
		}
	}
	if f := adLockoutFilter("(objectClass=user)", 4012, 4012+adUSNList-1); strings.Count(f, "(uSNChanged=") != adUSNList {
		t.Errorf("the widest listed interval lists %d USNs, want %d", strings.Count(f, "(uSNChanged="), adUSNList)
	}
}

func TestDecodeCursor(t *testing.T) {
	for _, raw := range []string{"", "garbage", `{"v":2,"dialect":"ad","usn":5}`, `{"v":1,"dialect":"openldap","usn":5}`} {
		if _, ok := decodeCursor([]byte(raw), DialectAD); ok {
			t.Errorf("decodeCursor(%q) accepted for ad", raw)
		}
	}
	c, ok := decodeCursor([]byte(`{"v":1,"dialect":"ad","dsa":"CN=NTDS Settings,CN=DC1","usn":5}`), DialectAD)
	if !ok || c.USN != 5 || c.DSA != "CN=NTDS Settings,CN=DC1" {
		t.Errorf("decodeCursor = %+v, %v", c, ok)
	}
}

func TestGroupMemberValues(t *testing.T) {
	for in, want := range map[string]string{
		"uid=a,dc=example,dc=org#'0101'B": "uid=a,dc=example,dc=org",
		"uid=a,dc=example,dc=org":         "uid=a,dc=example,dc=org",
		`uid=a\#'x'B,dc=example,dc=org`:   `uid=a\#'x'B,dc=example,dc=org`,
		`dc=org,cn=a\#'01'B`:              `dc=org,cn=a\#'01'B`,
	} {
		if got := stripUID(in); got != want {
			t.Errorf("stripUID(%q) = %q, want %q", in, got, want)
		}
	}
	if normDN("UID=Alice, OU=People,DC=Example,DC=org") != normDN("uid=alice,ou=people,dc=example,dc=org") {
		t.Errorf("normDN does not fold case and spacing")
	}
	if normDN("not a dn") != "" || normDN("") != "" {
		t.Errorf("normDN accepts a non-DN")
	}
}
