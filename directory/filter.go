package directory

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// This file is the only place where user input becomes part of an LDAP
// filter. Values are escaped exactly once, here, with ldap.EscapeFilter;
// attribute names come from the configuration and are validated there.

var attributeNameRe = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$`)

// validAttributeName reports whether s is an attribute description (name or OID).
func validAttributeName(s string) bool { return attributeNameRe.MatchString(s) }

// validValue reports whether s may become part of a filter: valid UTF-8
// without control characters. Some servers (Samba) cut a value at NUL and
// would match a prefix.
func validValue(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// userEqualityFilter selects the users of base (the configured user filter)
// whose attr equals value.
func userEqualityFilter(base, attr, value string) string {
	return fmt.Sprintf("(&%s(%s=%s))", base, attr, ldap.EscapeFilter(value))
}

// userAnyOfFilter selects the users of base whose attr equals one of values.
func userAnyOfFilter(base, attr string, values []string) string {
	var b strings.Builder
	b.WriteString("(&" + base + "(|")
	for _, v := range values {
		fmt.Fprintf(&b, "(%s=%s)", attr, ldap.EscapeFilter(v))
	}
	b.WriteString("))")
	return b.String()
}

// oidInChain is LDAP_MATCHING_RULE_IN_CHAIN: Active Directory (and Samba)
// follow nested group membership server-side.
const oidInChain = "1.2.840.113556.1.4.1941"

// adUSNList is the largest USN interval the incremental AD filter lists
// value by value. Samba indexes uSNChanged for equality only: a range
// (uSNChanged>=N) makes it test every user (about 600 ms with 20,000
// users), while an OR of equalities costs index lookups (3 ms for 4 USNs,
// 10 ms for 100, 180 ms for 1,000: its OR is superlinear). AD answers both
// forms from its index.
const adUSNList = 256

// adLockoutFilter selects the users of base with a lockout time. With
// fromUSN > 0 only the entries whose uSNChanged lies in [fromUSN, toUSN]
// match (the incremental scan); lockoutTime is replicated, so a lockout
// changes uSNChanged. A wider interval uses (uSNChanged>=fromUSN): entries
// changed after toUSN then match as well, which only repeats them. The
// computed lock bit cannot be filtered on. The indexed or most selective
// terms come first: Samba's ldb evaluates an AND in order (the same filter
// with the user filter first took twice as long).
func adLockoutFilter(base string, fromUSN, toUSN int64) string {
	switch {
	case fromUSN <= 0:
		return fmt.Sprintf("(&(lockoutTime>=1)%s)", base)
	case toUSN >= fromUSN && toUSN-fromUSN < adUSNList:
		var b strings.Builder
		b.WriteString("(&(|")
		for u := fromUSN; u <= toUSN; u++ {
			fmt.Fprintf(&b, "(uSNChanged=%d)", u)
		}
		fmt.Fprintf(&b, ")(lockoutTime>=1)%s)", base)
		return b.String()
	}
	return fmt.Sprintf("(&(uSNChanged>=%d)(lockoutTime>=1)%s)", fromUSN, base)
}

// generalizedTime formats t for a filter on a GeneralizedTime attribute.
func generalizedTime(t time.Time) string { return t.UTC().Format("20060102150405Z") }

// lockSeen names one value already read by an OpenLDAP scan, to be left out
// of the next one: the entry DN and the value its attribute held.
type lockSeen struct {
	DN    string `json:"dn"`
	Attr  string `json:"a"` // pwdAccountLockedTime, or modifyTimestamp for a permanent lock
	Value string `json:"v"`
}

// openldapLockoutFilter selects the users of base whose
// pwdAccountLockedTime is present and, unless since is zero (a full sweep),
// set at or after since; a permanent lock (000001010000Z, older than any
// since) matches when the entry was modified at or after since. Each seen
// value is excluded exactly: a new lockout of the same entry has a new value.
// The presence term lets slapd start from the pwdAccountLockedTime presence
// index (the one ppolicy deployments have), so the server looks only at
// entries that carry a lock time at all.
func openldapLockoutFilter(base string, since time.Time, seen []lockSeen) string {
	var b strings.Builder
	b.WriteString("(&")
	b.WriteString(base)
	b.WriteString("(" + attrLockedTime + "=*)")
	if !since.IsZero() {
		ts := generalizedTime(since)
		fmt.Fprintf(&b, "(|(%s>=%s)(&(%s=%s)(modifyTimestamp>=%s)))", attrLockedTime, ts, attrLockedTime, permanentLockout, ts)
	}
	for _, s := range seen {
		if !validAttributeName(s.Attr) {
			continue
		}
		fmt.Fprintf(&b, "(!(&(entryDN=%s)(%s=%s)))", ldap.EscapeFilter(s.DN), s.Attr, ldap.EscapeFilter(s.Value))
	}
	b.WriteString(")")
	return b.String()
}

// adMemberInChainFilter selects the users of base that are members of
// groupDN, directly or through nested groups, and have mailAttr.
func adMemberInChainFilter(base, groupDN, mailAttr string) string {
	return fmt.Sprintf("(&%s%s(%s=*))", base, adInChainFilter(groupDN), mailAttr)
}

// adUsersInChainFilter selects the users of base that are members of
// groupDN, directly or through nested groups.
func adUsersInChainFilter(base, groupDN string) string {
	return "(&" + base + adInChainFilter(groupDN) + ")"
}

// anyAttrFilter selects the entries of base (a filter) with value in one of
// attrs (validated attribute names): equal to it, or with substring, holding
// it anywhere.
func anyAttrFilter(base string, attrs []string, value string, substring bool) string {
	v := ldap.EscapeFilter(value)
	if substring {
		v = "*" + v + "*"
	}
	var b strings.Builder
	b.WriteString("(&" + base + "(|")
	for _, a := range attrs {
		fmt.Fprintf(&b, "(%s=%s)", a, v)
	}
	b.WriteString("))")
	return b.String()
}

// adGroupFilter matches an Active Directory group.
const adGroupFilter = "(objectClass=group)"

// crossRefFilter matches the crossRef entries (under CN=Partitions) that
// name a domain's NetBIOS name.
const crossRefFilter = "(&(objectClass=crossRef)(nETBIOSName=*)(nCName=*))"

// adInChainFilter matches an entry (read with base scope) that is a member
// of groupDN, directly or through nested groups.
func adInChainFilter(groupDN string) string {
	return fmt.Sprintf("(memberOf:%s:=%s)", oidInChain, ldap.EscapeFilter(groupDN))
}

// groupOrUserFilter matches an entry (read with base scope) that is a user
// of base or a static group (groupOfNames, groupOfUniqueNames).
func groupOrUserFilter(base string) string {
	return "(|" + base + "(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
}

// groupFilter matches a static group (read with base scope).
const groupFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"

// sidFilter matches the entry whose objectSid is the binary SID raw, every
// byte hex-escaped.
func sidFilter(raw []byte) string {
	var b strings.Builder
	b.WriteString("(objectSid=")
	for _, x := range raw {
		fmt.Fprintf(&b, "\\%02x", x)
	}
	b.WriteString(")")
	return b.String()
}
