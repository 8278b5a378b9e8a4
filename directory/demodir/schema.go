package demodir

import (
	"strings"
)

// syntax says how an attribute's values compare.
type syntax int

const (
	synString  syntax = iota // case-insensitive Unicode string
	synInteger               // 64-bit integer (INTEGER, LargeInteger)
	synDN                    // distinguished name
	synTime                  // GeneralizedTime
	synBinary                // octet string, compared byte for byte
	synBool                  // TRUE / FALSE
)

// attrDef is what the server knows of one attribute type.
type attrDef struct {
	name   string // lDAPDisplayName, the case the server answers with
	syntax syntax
	// system attributes are maintained by the server and cannot be written.
	system bool
	// constructed attributes are computed when read and returned only when
	// asked for by name (memberOf, a back link, is returned by "*" too).
	constructed bool
}

// The attributes Active Directory (and Samba) define that the demo uses.
var schemaDefs = []attrDef{
	{name: "objectClass"}, {name: "cn"}, {name: "name"}, {name: "sAMAccountName"},
	{name: "userPrincipalName"}, {name: "displayName"}, {name: "givenName"}, {name: "sn"},
	{name: "initials"}, {name: "mail"}, {name: "mobile"}, {name: "telephoneNumber"},
	{name: "homePhone"}, {name: "pager"}, {name: "ipPhone"}, {name: "description"},
	{name: "title"}, {name: "department"}, {name: "company"}, {name: "employeeID"},
	{name: "physicalDeliveryOfficeName"}, {name: "l"}, {name: "st"}, {name: "c"}, {name: "co"},
	{name: "streetAddress"}, {name: "postalCode"}, {name: "info"}, {name: "wWWHomePage"},
	{name: "ou"}, {name: "dc"}, {name: "preferredLanguage"}, {name: "nETBIOSName"}, {name: "dnsRoot"},

	{name: "userAccountControl", syntax: synInteger},
	{name: "lockoutTime", syntax: synInteger},
	{name: "pwdLastSet", syntax: synInteger},
	{name: "accountExpires", syntax: synInteger},
	{name: "groupType", syntax: synInteger},
	{name: "adminCount", syntax: synInteger},
	{name: "primaryGroupID", syntax: synInteger},
	{name: "codePage", syntax: synInteger},
	{name: "countryCode", syntax: synInteger},
	{name: "lockoutThreshold", syntax: synInteger},
	{name: "lockoutDuration", syntax: synInteger},
	{name: "lockOutObservationWindow", syntax: synInteger},
	{name: "minPwdLength", syntax: synInteger},
	{name: "minPwdAge", syntax: synInteger},
	{name: "maxPwdAge", syntax: synInteger},
	{name: "pwdProperties", syntax: synInteger},
	{name: "pwdHistoryLength", syntax: synInteger},
	{name: "systemFlags", syntax: synInteger},
	{name: "badPwdCount", syntax: synInteger, system: true},
	{name: "badPasswordTime", syntax: synInteger, system: true},
	{name: "lastLogon", syntax: synInteger, system: true},
	{name: "logonCount", syntax: synInteger, system: true},
	{name: "sAMAccountType", syntax: synInteger, system: true},
	{name: "instanceType", syntax: synInteger, system: true},
	{name: "uSNCreated", syntax: synInteger, system: true},
	{name: "uSNChanged", syntax: synInteger, system: true},
	{name: "msDS-User-Account-Control-Computed", syntax: synInteger, system: true, constructed: true},
	{name: "msDS-ReplAttributeMetaData", system: true, constructed: true},

	{name: "member", syntax: synDN},
	{name: "manager", syntax: synDN},
	{name: "managedBy", syntax: synDN},
	{name: "nCName", syntax: synDN},
	{name: "objectCategory", syntax: synDN},
	{name: "distinguishedName", syntax: synDN, system: true},
	{name: "memberOf", syntax: synDN, system: true, constructed: true},
	{name: "tokenGroups", syntax: synBinary, system: true, constructed: true},

	{name: "whenCreated", syntax: synTime, system: true},
	{name: "whenChanged", syntax: synTime, system: true},

	{name: "objectGUID", syntax: synBinary, system: true},
	{name: "objectSid", syntax: synBinary, system: true},
	{name: "unicodePwd", syntax: synBinary},
	{name: "thumbnailPhoto", syntax: synBinary},

	{name: "isCriticalSystemObject", syntax: synBool, system: true},
}

var schema = func() map[string]attrDef {
	m := make(map[string]attrDef, len(schemaDefs))
	for _, d := range schemaDefs {
		m[strings.ToLower(d.name)] = d
	}
	return m
}()

// defOf returns the definition of the attribute named name (any case); an
// unknown attribute is a case-insensitive string with the given name.
func defOf(name string) attrDef {
	if d, ok := schema[strings.ToLower(name)]; ok {
		return d
	}
	return attrDef{name: name}
}

// AD's userAccountControl and computed flags.
const (
	ufAccountDisable     = 0x2
	ufLockout            = 0x10
	ufPasswdNotReqd      = 0x20
	ufNormalAccount      = 0x200
	ufDontExpirePasswd   = 0x10000
	ufPasswordExpired    = 0x800000
	uacDefaultNewAccount = ufAccountDisable | ufPasswdNotReqd | ufNormalAccount // 546, AD's default for an LDAP add
)

// Matching rules.
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

// Controls.
const (
	oidPagedResults          = "1.2.840.113556.1.4.319"
	oidPolicyHints           = "1.2.840.113556.1.4.2239"
	oidPolicyHintsDeprecated = "1.2.840.113556.1.4.2066"
	oidPermissiveModify      = "1.2.840.113556.1.4.1413"
)

// supportedControls are listed in the RootDSE and accepted when critical.
var supportedControls = []string{oidPagedResults, oidPermissiveModify, oidPolicyHintsDeprecated, oidPolicyHints}

// objectCategoryShort maps the class names a filter may give for
// objectCategory (AD resolves them to the class's defaultObjectCategory) to
// the category's CN.
var objectCategoryShort = map[string]string{
	"person":             "person",
	"user":               "person",
	"group":              "group",
	"organizationalunit": "organizational-unit",
	"container":          "container",
	"domain":             "domain-dns",
	"domaindns":          "domain-dns",
	"computer":           "computer",
}

// entryKind is the structural class of an entry, as far as the server cares.
type entryKind int

const (
	kindOther entryKind = iota
	kindDomain
	kindContainer
	kindOU
	kindUser
	kindGroup
)

// kindOf derives the kind from objectClass values.
func kindOf(classes []string) entryKind {
	has := func(c string) bool {
		for _, v := range classes {
			if strings.EqualFold(v, c) {
				return true
			}
		}
		return false
	}
	switch {
	case has("user"):
		return kindUser
	case has("group"):
		return kindGroup
	case has("organizationalUnit"):
		return kindOU
	case has("domainDNS") || has("domain"):
		return kindDomain
	case has("container"):
		return kindContainer
	}
	return kindOther
}

// categoryCN is the CN of the objectCategory of a kind.
func categoryCN(k entryKind) string {
	switch k {
	case kindUser:
		return "Person"
	case kindGroup:
		return "Group"
	case kindOU:
		return "Organizational-Unit"
	case kindDomain:
		return "Domain-DNS"
	case kindContainer:
		return "Container"
	}
	return "Top"
}
