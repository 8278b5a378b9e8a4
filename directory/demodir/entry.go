package demodir

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// attr is one attribute of an entry: the name as the server answers with
// it, and its values (never empty).
type attr struct {
	name string
	vals []string
}

// entry is one directory object.
type entry struct {
	dn    string   // as created
	rdns  []string // normalized RDNs, leaf first
	key   string   // normalized DN: strings.Join(rdns, ",")
	kind  entryKind
	attrs []attr
	pw    *passwordHash // nil: no password
	// pwSet is when the password was last set (unicodePwd's originating
	// change in msDS-ReplAttributeMetaData); zero with no password.
	pwSet time.Time
}

func (e *entry) find(name string) int {
	for i := range e.attrs {
		if strings.EqualFold(e.attrs[i].name, name) {
			return i
		}
	}
	return -1
}

// get returns the stored values of name (no constructed attributes).
func (e *entry) get(name string) []string {
	if i := e.find(name); i >= 0 {
		return e.attrs[i].vals
	}
	return nil
}

func (e *entry) first(name string) string {
	if v := e.get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (e *entry) int(name string) int64 {
	n, _ := strconv.ParseInt(e.first(name), 10, 64)
	return n
}

// set replaces the values of name; no values removes the attribute.
func (e *entry) set(name string, vals ...string) {
	i := e.find(name)
	switch {
	case len(vals) == 0 && i >= 0:
		e.attrs = slices.Delete(e.attrs, i, i+1)
	case len(vals) == 0:
	case i >= 0:
		e.attrs[i].vals = vals
	default:
		e.attrs = append(e.attrs, attr{name: defOf(name).name, vals: vals})
	}
}

func (e *entry) setInt(name string, n int64) { e.set(name, strconv.FormatInt(n, 10)) }

func (e *entry) clone() *entry {
	c := *e
	c.attrs = make([]attr, len(e.attrs))
	for i, a := range e.attrs {
		c.attrs[i] = attr{name: a.name, vals: slices.Clone(a.vals)}
	}
	return &c
}

func (e *entry) parentKey() string { return strings.Join(e.rdns[1:], ",") }

// rdnValue is the value of the entry's first RDN (CN=x: x).
func rdnValue(dn string) (typ, value string) {
	p, err := ldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 || len(p.RDNs[0].Attributes) == 0 {
		return "", ""
	}
	return p.RDNs[0].Attributes[0].Type, p.RDNs[0].Attributes[0].Value
}

// parseDN returns the normalized RDNs of dn, leaf first ("" is the root).
func parseDN(dn string) ([]string, error) {
	p, err := ldap.ParseDN(dn)
	if err != nil {
		return nil, err
	}
	rdns := make([]string, len(p.RDNs))
	for i, r := range p.RDNs {
		rdns[i] = strings.ToLower(r.String())
	}
	return rdns, nil
}
