package directory

import (
	"fmt"
	"regexp"

	"github.com/go-ldap/ldap/v3"
)

// This file is the only place where user input becomes part of an LDAP
// filter. Values are escaped exactly once, here, with ldap.EscapeFilter;
// attribute names come from the configuration and are validated there.

var attributeNameRe = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$`)

// validAttributeName reports whether s is an attribute description (name or OID).
func validAttributeName(s string) bool { return attributeNameRe.MatchString(s) }

// userEqualityFilter selects the users of base (the configured user filter)
// whose attr equals value.
func userEqualityFilter(base, attr, value string) string {
	return fmt.Sprintf("(&%s(%s=%s))", base, attr, ldap.EscapeFilter(value))
}
