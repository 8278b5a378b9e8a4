package directory

import (
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// assertions collects the (attribute, value) pairs of the equality and
// extensible-match terms of a compiled filter, with their values as the
// server will see them (unescaped bytes).
func assertions(p *ber.Packet, out *[][2]string) {
	switch p.Tag {
	case ldap.FilterEqualityMatch:
		if len(p.Children) == 2 {
			*out = append(*out, [2]string{p.Children[0].Data.String(), p.Children[1].Data.String()})
		}
		return
	case ldap.FilterExtensibleMatch:
		var attr, val string
		for _, c := range p.Children {
			switch c.Tag {
			case ldap.MatchingRuleAssertionType:
				attr = c.Data.String()
			case ldap.MatchingRuleAssertionMatchValue:
				val = c.Data.String()
			}
		}
		*out = append(*out, [2]string{attr, val})
		return
	case ldap.FilterSubstrings:
		if len(p.Children) == 2 {
			var b strings.Builder
			for _, s := range p.Children[1].Children {
				b.WriteString(s.Data.String())
			}
			*out = append(*out, [2]string{p.Children[0].Data.String(), b.String()})
		}
		return
	}
	for _, c := range p.Children {
		assertions(c, out)
	}
}

// compile parses filter as go-ldap will send it and returns its assertions.
func compile(t testing.TB, filter string) [][2]string {
	t.Helper()
	p, err := ldap.CompileFilter(filter)
	if err != nil {
		t.Fatalf("filter does not parse: %v\n%q", err, filter)
	}
	var out [][2]string
	assertions(p, &out)
	return out
}

// wantAssertion fails unless the compiled filter asserts exactly value
// (its bytes, unescaped) on attr.
func wantAssertion(t *testing.T, filter, attr, value string) {
	t.Helper()
	for _, a := range compile(t, filter) {
		if strings.EqualFold(a[0], attr) && a[1] == value {
			return
		}
	}
	t.Fatalf("filter %q does not assert %s = %q exactly (escaping lost or doubled)", filter, attr, value)
}

// FuzzFilters feeds user-controlled values into every filter builder: the
// output always parses with go-ldap's CompileFilter, the value comes out
// byte for byte (escaped exactly once: no injection, no double escaping),
// and no user byte changes the filter's structure (the number of terms is
// the same as for a plain value).
func FuzzFilters(f *testing.F) {
	for _, s := range []string{"jdoe", "*", "*)(uid=*", "a\\2a", "(|(objectClass=*))", "\x00", "é", "\xff\xfe",
		"CN=Helpdesk,OU=Groups,DC=example,DC=com", "CN=a\\,b+c,DC=x", "))))", "\\", "", "20260101000000Z"} {
		f.Add(s)
	}
	const base = "(&(objectClass=person)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
	plainTerms := func(filter string) int { return len(compile(f, filter)) }
	refUser := plainTerms(userEqualityFilter(base, "uid", "x"))
	refAnyOf := plainTerms(userAnyOfFilter(base, "uid", []string{"x", "y", "z"}))
	refAny := plainTerms(anyAttrFilter(base, []string{"uid", "cn", "mail"}, "x", false))
	refChain := plainTerms(adMemberInChainFilter(base, "x", "mail"))
	refLock := plainTerms(openldapLockoutFilter(base, time.Unix(1, 0), []lockSeen{{DN: "x", Attr: "pwdAccountLockedTime", Value: "x"}}))

	f.Fuzz(func(t *testing.T, v string) {
		count := func(filter string, want int) {
			t.Helper()
			if got := len(compile(t, filter)); got != want {
				t.Fatalf("filter %q has %d terms, want %d: the value changed its structure", filter, got, want)
			}
		}
		fl := userEqualityFilter(base, "uid", v)
		count(fl, refUser)
		wantAssertion(t, fl, "uid", v)

		fl = userAnyOfFilter(base, "uid", []string{"x", v, v + "y"})
		count(fl, refAnyOf)
		wantAssertion(t, fl, "uid", v)
		wantAssertion(t, fl, "uid", v+"y")

		fl = anyAttrFilter(base, []string{"uid", "cn", "mail"}, v, false)
		count(fl, refAny)
		wantAssertion(t, fl, "mail", v)
		if v != "" { // "*" + "" + "*" is a presence test, not a substring
			fl = anyAttrFilter(base, []string{"uid", "cn"}, v, true)
			count(fl, refAny-1)
			wantAssertion(t, fl, "cn", v)
		}

		fl = adMemberInChainFilter(base, v, "mail")
		count(fl, refChain)
		wantAssertion(t, fl, "memberOf", v)
		wantAssertion(t, adUsersInChainFilter(base, v), "memberOf", v)

		fl = openldapLockoutFilter(base, time.Unix(1, 0), []lockSeen{{DN: v, Attr: "pwdAccountLockedTime", Value: v}})
		count(fl, refLock)
		wantAssertion(t, fl, "entryDN", v)
		// An attribute name from a corrupted state is dropped, never spliced in.
		compile(t, openldapLockoutFilter(base, time.Time{}, []lockSeen{{DN: v, Attr: v, Value: v}}))

		// A SID from tokenGroups (any bytes) is one binary assertion.
		count(sidFilter([]byte(v)), 1)
		wantAssertion(t, sidFilter([]byte(v)), "objectSid", v)
	})
}
