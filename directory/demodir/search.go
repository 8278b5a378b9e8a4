package demodir

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jimlambrt/gldap"
)

// searchRequest is a search as the store sees it.
type searchRequest struct {
	base      string
	scope     gldap.Scope
	filter    *filter
	attrs     []string
	typesOnly bool
}

// result is one entry to send.
type result struct {
	dn    string
	attrs []attr
}

// compileSearch checks a search message's filter.
func compileSearch(m *gldap.SearchMessage) (searchRequest, *ldapError) {
	f, err := parseFilter(m.Filter)
	if err != nil {
		var ure *unknownRuleError
		if errors.As(err, &ure) {
			return searchRequest{}, errInappropriateMatching(ure.rule)
		}
		return searchRequest{}, errFilter(err)
	}
	return searchRequest{base: m.BaseDN, scope: m.Scope, filter: f, attrs: m.Attributes, typesOnly: m.TypesOnly}, nil
}

// find returns the keys of the entries that match req, in creation order.
func (s *store) find(req searchRequest) ([]string, *ldapError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var baseRDNs []string
	nc := ""
	if req.base != "" {
		b, matched, lerr := s.lookup(req.base)
		if lerr != nil {
			return nil, lerr
		}
		if b == nil {
			return nil, errNoSuchObject(matched)
		}
		baseRDNs = b.rdns
		nc = s.ncOf(b.rdns)
	}
	var keys []string
	for _, k := range s.order {
		e := s.entries[k]
		if !inScope(e.rdns, baseRDNs, req.scope) || (nc != "" && s.ncOf(e.rdns) != nc) {
			continue
		}
		if s.match(req.filter, e) == tTrue {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// inScope reports whether an entry with rdns is within scope of base.
func inScope(rdns, base []string, scope gldap.Scope) bool {
	if len(rdns) < len(base) || !slices.Equal(rdns[len(rdns)-len(base):], base) {
		return false
	}
	switch scope {
	case gldap.BaseObject:
		return len(rdns) == len(base)
	case gldap.SingleLevel:
		return len(rdns) == len(base)+1
	}
	return true
}

// render builds the attributes of the entry at key that req asks for; ok
// is false when the entry has gone since find.
func (s *store) render(key string, req searchRequest) (result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil {
		return result{}, false
	}
	all, named := selection(req.attrs)
	r := result{dn: e.dn}
	add := func(name string, vals []string) {
		if len(vals) == 0 {
			return
		}
		if req.typesOnly {
			vals = nil
		}
		r.attrs = append(r.attrs, attr{name: name, vals: vals})
	}
	for _, a := range e.attrs {
		if all || named[strings.ToLower(a.name)] {
			add(a.name, a.vals)
		}
	}
	if all || named["memberof"] {
		add("memberOf", s.memberOfDNs(e))
	}
	if named["tokengroups"] && req.scope == gldap.BaseObject && (e.kind == kindUser || e.kind == kindGroup) {
		add("tokenGroups", s.tokenGroups(e)) // AD constructs it for a base-scope read only
	}
	if named["msds-user-account-control-computed"] && e.kind == kindUser {
		add("msDS-User-Account-Control-Computed", []string{strconv.FormatInt(s.computedFlags(e, s.clock.Now()), 10)})
	}
	// Constructed for a base-scope read only, the narrowest of what
	// Windows does, so that clients read it as they must there.
	if named["msds-replattributemetadata"] && req.scope == gldap.BaseObject && e.kind == kindUser && !e.pwSet.IsZero() {
		add("msDS-ReplAttributeMetaData", []string{replAttributeMetaData("unicodePwd", e.pwSet)})
	}
	return r, true
}

// selection reads a search's attribute list: all user attributes ("*" or
// none), and the names asked for (lower case). "1.1" alone asks for none.
func selection(attrs []string) (all bool, named map[string]bool) {
	named = map[string]bool{}
	if len(attrs) == 0 {
		return true, named
	}
	for _, a := range attrs {
		switch a {
		case "*":
			all = true
		case "1.1", "+":
		default:
			named[strings.ToLower(a)] = true
		}
	}
	return all, named
}

// rootDSE renders the RootDSE (base "" with base scope).
func (s *store) rootDSE(req searchRequest, dnsHost string) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	config := "CN=Configuration," + s.base
	attrs := []attr{
		{"configurationNamingContext", []string{config}},
		{"currentTime", []string{generalizedTime(now)}},
		{"defaultNamingContext", []string{s.base}},
		{"dnsHostName", []string{dnsHost}},
		{"domainControllerFunctionality", []string{"7"}},
		{"domainFunctionality", []string{"7"}},
		{"dsServiceName", []string{"CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites," + config}},
		{"forestFunctionality", []string{"7"}},
		{"highestCommittedUSN", []string{strconv.FormatInt(s.usn, 10)}},
		{"isGlobalCatalogReady", []string{"FALSE"}},
		{"isSynchronized", []string{"TRUE"}},
		{"ldapServiceName", []string{s.realm + ":dc1$@" + strings.ToUpper(s.realm)}},
		{"namingContexts", []string{s.base, config, "CN=Schema," + config}},
		{"rootDomainNamingContext", []string{s.base}},
		{"schemaNamingContext", []string{"CN=Schema," + config}},
		{"serverName", []string{"CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites," + config}},
		{"subschemaSubentry", []string{"CN=Aggregate,CN=Schema," + config}},
		{"supportedCapabilities", []string{"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670", "1.2.840.113556.1.4.1791", "1.2.840.113556.1.4.1935"}},
		{"supportedControl", supportedControls},
		{"supportedExtension", []string{"1.3.6.1.4.1.1466.20037"}},
		{"supportedLDAPPolicies", []string{"MaxPageSize", "MaxResultSetSize"}},
		{"supportedLDAPVersion", []string{"3", "2"}},
		{"vendorName", []string{"ReplyReset demo directory (Active Directory dialect)"}},
	}
	all, named := selection(req.attrs)
	r := result{dn: ""}
	for _, a := range attrs {
		if all || named[strings.ToLower(a.name)] {
			if req.typesOnly {
				a.vals = nil
			}
			r.attrs = append(r.attrs, a)
		}
	}
	return r
}

// replAttributeMetaData is one value of the constructed
// msDS-ReplAttributeMetaData, as Windows writes it (the demo keeps the
// metadata of unicodePwd only: when the password was last set).
func replAttributeMetaData(name string, changed time.Time) string {
	return "<DS_REPL_ATTR_META_DATA>\n\t<pszAttributeName>" + name + "</pszAttributeName>\n\t<dwVersion>1</dwVersion>\n" +
		"\t<ftimeLastOriginatingChange>" + changed.UTC().Format(time.RFC3339) + "</ftimeLastOriginatingChange>\n" +
		"</DS_REPL_ATTR_META_DATA>\n"
}
