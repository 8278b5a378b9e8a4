package demodir

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// filter is a compiled search filter (RFC 4515).
type filter struct {
	op       int // ldap.FilterAnd ... ldap.FilterExtensibleMatch
	children []*filter
	attr     string // attribute description as sent
	value    string // assertion value, unescaped
	initial  string // substrings
	any      []string
	final    string
	rule     string // extensible match
	dnAttrs  bool
}

// parseFilter compiles the string form of a filter. gldap hands the server
// the filter as go-ldap's DecompileFilter wrote it (values escaped), so
// CompileFilter gives back the exact assertion values.
func parseFilter(s string) (*filter, error) {
	p, err := ldap.CompileFilter(s)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", s, err)
	}
	return fromPacket(p)
}

var errBadFilter = errors.New("malformed filter")

func fromPacket(p *ber.Packet) (*filter, error) {
	f := &filter{op: int(p.Tag)}
	str := func(c *ber.Packet) string { return c.Data.String() }
	switch f.op {
	case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
		for _, c := range p.Children {
			cf, err := fromPacket(c)
			if err != nil {
				return nil, err
			}
			f.children = append(f.children, cf)
		}
		if f.op == ldap.FilterNot && len(f.children) != 1 {
			return nil, errBadFilter
		}
	case ldap.FilterEqualityMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual, ldap.FilterApproxMatch:
		if len(p.Children) != 2 {
			return nil, errBadFilter
		}
		f.attr, f.value = str(p.Children[0]), str(p.Children[1])
	case ldap.FilterPresent:
		f.attr = str(p)
	case ldap.FilterSubstrings:
		if len(p.Children) != 2 {
			return nil, errBadFilter
		}
		f.attr = str(p.Children[0])
		for _, c := range p.Children[1].Children {
			switch c.Tag {
			case ldap.FilterSubstringsInitial:
				f.initial = str(c)
			case ldap.FilterSubstringsAny:
				f.any = append(f.any, str(c))
			case ldap.FilterSubstringsFinal:
				f.final = str(c)
			}
		}
	case ldap.FilterExtensibleMatch:
		for _, c := range p.Children {
			switch c.Tag {
			case ldap.MatchingRuleAssertionMatchingRule:
				f.rule = str(c)
			case ldap.MatchingRuleAssertionType:
				f.attr = str(c)
			case ldap.MatchingRuleAssertionMatchValue:
				f.value = str(c)
			case ldap.MatchingRuleAssertionDNAttributes:
				f.dnAttrs = len(c.Data.Bytes()) > 0 && c.Data.Bytes()[0] != 0
			}
		}
		switch f.rule {
		case "", ruleBitAnd, ruleBitOr, ruleInChain, "2.5.13.2", "2.5.13.1":
		default:
			return nil, &unknownRuleError{rule: f.rule}
		}
		if f.attr == "" && f.rule != "" && f.rule != "2.5.13.2" {
			return nil, errBadFilter
		}
	default:
		return nil, errBadFilter
	}
	return f, nil
}

type unknownRuleError struct{ rule string }

func (e *unknownRuleError) Error() string { return "unknown matching rule " + e.rule }

// tri is a filter result: RFC 4511 filters are three-valued.
type tri int

const (
	tFalse tri = iota
	tTrue
	tUndefined
)

func boolTri(b bool) tri {
	if b {
		return tTrue
	}
	return tFalse
}

// match evaluates f against e (the caller holds s.mu).
func (s *store) match(f *filter, e *entry) tri {
	switch f.op {
	case ldap.FilterAnd:
		res := tTrue
		for _, c := range f.children {
			switch s.match(c, e) {
			case tFalse:
				return tFalse
			case tUndefined:
				res = tUndefined
			}
		}
		return res
	case ldap.FilterOr:
		res := tFalse
		for _, c := range f.children {
			switch s.match(c, e) {
			case tTrue:
				return tTrue
			case tUndefined:
				res = tUndefined
			}
		}
		return res
	case ldap.FilterNot:
		switch s.match(f.children[0], e) {
		case tTrue:
			return tFalse
		case tFalse:
			return tTrue
		}
		return tUndefined
	}
	def := defOf(f.attr)
	if def.constructed && !strings.EqualFold(def.name, "memberOf") {
		return tUndefined // AD cannot filter on constructed attributes
	}
	vals := s.filterValues(e, def)
	switch f.op {
	case ldap.FilterPresent:
		return boolTri(len(vals) > 0 || strings.EqualFold(def.name, "objectClass"))
	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch:
		return s.anyValue(vals, func(v string) tri { return s.equal(def, v, f.value) })
	case ldap.FilterGreaterOrEqual:
		return s.anyValue(vals, func(v string) tri { return ordered(def, v, f.value, func(c int) bool { return c >= 0 }) })
	case ldap.FilterLessOrEqual:
		return s.anyValue(vals, func(v string) tri { return ordered(def, v, f.value, func(c int) bool { return c <= 0 }) })
	case ldap.FilterSubstrings:
		return s.anyValue(vals, func(v string) tri { return boolTri(substringMatch(v, f)) })
	case ldap.FilterExtensibleMatch:
		return s.extensible(f, def, e, vals)
	}
	return tUndefined
}

// filterValues are the values of def on e that a filter sees: stored
// values and the memberOf back link.
func (s *store) filterValues(e *entry, def attrDef) []string {
	if strings.EqualFold(def.name, "memberOf") {
		return s.memberOfDNs(e)
	}
	return e.get(def.name)
}

func (s *store) anyValue(vals []string, test func(string) tri) tri {
	res := tFalse
	for _, v := range vals {
		switch test(v) {
		case tTrue:
			return tTrue
		case tUndefined:
			res = tUndefined
		}
	}
	return res
}

// equal compares a stored value with an assertion value by syntax.
func (s *store) equal(def attrDef, v, assertion string) tri {
	switch def.syntax {
	case synInteger:
		a, err1 := strconv.ParseInt(v, 10, 64)
		b, err2 := strconv.ParseInt(assertion, 10, 64)
		if err1 != nil || err2 != nil {
			return tUndefined
		}
		return boolTri(a == b)
	case synDN:
		if strings.EqualFold(def.name, "objectCategory") && !strings.Contains(assertion, "=") {
			// AD accepts a class name for objectCategory.
			cat, ok := objectCategoryShort[strings.ToLower(assertion)]
			_, cn := rdnValue(v)
			return boolTri(ok && strings.EqualFold(cn, cat))
		}
		k := s.normKey(assertion)
		if k == "" {
			return tUndefined
		}
		return boolTri(s.normKey(v) == k)
	case synTime:
		a, ok1 := parseGeneralizedTime(v)
		b, ok2 := parseGeneralizedTime(assertion)
		if !ok1 || !ok2 {
			return tUndefined
		}
		return boolTri(a.Equal(b))
	case synBinary:
		return boolTri(v == assertion)
	}
	return boolTri(strings.EqualFold(v, assertion))
}

// ordered applies an ordering match: ok(compare(v, assertion)).
func ordered(def attrDef, v, assertion string, ok func(int) bool) tri {
	switch def.syntax {
	case synInteger:
		a, err1 := strconv.ParseInt(v, 10, 64)
		b, err2 := strconv.ParseInt(assertion, 10, 64)
		if err1 != nil || err2 != nil {
			return tUndefined
		}
		return boolTri(ok(cmpInt(a, b)))
	case synTime:
		a, ok1 := parseGeneralizedTime(v)
		b, ok2 := parseGeneralizedTime(assertion)
		if !ok1 || !ok2 {
			return tUndefined
		}
		return boolTri(ok(a.Compare(b)))
	case synBinary:
		return boolTri(ok(bytes.Compare([]byte(v), []byte(assertion))))
	}
	return boolTri(ok(strings.Compare(strings.ToLower(v), strings.ToLower(assertion))))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// substringMatch is a case-insensitive initial*any*final match.
func substringMatch(v string, f *filter) bool {
	v = strings.ToLower(v)
	if !strings.HasPrefix(v, strings.ToLower(f.initial)) {
		return false
	}
	v = v[len(strings.ToLower(f.initial)):]
	for _, a := range f.any {
		i := strings.Index(v, strings.ToLower(a))
		if i < 0 {
			return false
		}
		v = v[i+len(strings.ToLower(a)):]
	}
	return strings.HasSuffix(v, strings.ToLower(f.final))
}

func (s *store) extensible(f *filter, def attrDef, e *entry, vals []string) tri {
	res := tFalse
	switch f.rule {
	case ruleBitAnd, ruleBitOr:
		mask, err := strconv.ParseInt(f.value, 10, 64)
		if err != nil || def.syntax != synInteger {
			return tUndefined
		}
		res = s.anyValue(vals, func(v string) tri {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return tUndefined
			}
			if f.rule == ruleBitAnd {
				return boolTri(n&mask == mask)
			}
			return boolTri(n&mask != 0)
		})
	case ruleInChain:
		target := s.normKey(f.value)
		if def.syntax != synDN || target == "" {
			return tUndefined
		}
		res = boolTri(s.inChain(e, strings.ToLower(def.name), target))
	default: // equality ("", caseIgnoreMatch, distinguishedNameMatch)
		if f.attr != "" {
			res = s.anyValue(vals, func(v string) tri { return s.equal(def, v, f.value) })
		}
	}
	if res != tTrue && f.dnAttrs {
		// :dn: — the entry's own DN components count as values.
		for _, rdn := range e.rdns {
			for ava := range strings.SplitSeq(rdn, "+") {
				typ, val, _ := strings.Cut(ava, "=")
				if (f.attr == "" || strings.EqualFold(typ, f.attr)) && strings.EqualFold(unescapeRDNValue(val), f.value) {
					return tTrue
				}
			}
		}
	}
	return res
}

// unescapeRDNValue undoes the escaping of a normalized RDN value.
func unescapeRDNValue(v string) string {
	p, err := ldap.ParseDN("x=" + v)
	if err != nil || len(p.RDNs) != 1 {
		return v
	}
	return p.RDNs[0].Attributes[0].Value
}
