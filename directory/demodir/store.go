package demodir

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// clock is the server's time, adjustable for tests and demos.
type clock struct {
	mu     sync.Mutex
	now    func() time.Time
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now().Add(c.offset)
}

// store is the directory's data: every entry, in creation order.
type store struct {
	mu      sync.Mutex
	clock   *clock
	log     *slog.Logger
	base    string
	baseKey string
	realm   string // DNS domain, from the base DN: demo.example
	netbios string // DEMO

	// ncHeads are the keys of the naming contexts: the domain, the
	// configuration and the schema. A subtree search stays in its base's.
	ncHeads []string

	entries map[string]*entry // by key
	order   []string          // keys in creation order
	usn     int64             // highestCommittedUSN
	rid     int64             // last relative ID handed out
	sidBase string            // S-1-5-21-a-b-c

	adminKey, serviceKey string
	// resetScopes are the containers (normalized RDNs) where the service
	// account's reset delegation applies.
	resetScopes [][]string

	// names indexes the values of the unique naming attributes
	// (sAMAccountName, userPrincipalName): nameKey -> entry key.
	names map[string]string

	// memberOf is the back link of member: member key -> group keys. It is
	// rebuilt when linksDirty.
	memberOf   map[string][]string
	linksDirty bool
	normCache  map[string]string
}

// normKey is the comparison key of a DN value ("" when not a DN).
func (s *store) normKey(dn string) string {
	if k, ok := s.normCache[dn]; ok {
		return k
	}
	rdns, err := parseDN(dn)
	k := ""
	if err == nil {
		k = strings.Join(rdns, ",")
	}
	if len(s.normCache) > 50000 {
		clear(s.normCache)
	}
	s.normCache[dn] = k
	return k
}

// nextUSN commits a change: the new highestCommittedUSN.
func (s *store) nextUSN() int64 {
	s.usn++
	return s.usn
}

// stamp marks e as changed by a replicated write.
func (s *store) stamp(e *entry, now time.Time) {
	e.setInt("uSNChanged", s.nextUSN())
	e.set("whenChanged", generalizedTime(now))
}

// uniqueAttrs are the attributes whose values are unique in the domain.
var uniqueAttrs = []string{"sAMAccountName", "userPrincipalName"}

func nameKey(attr, value string) string {
	return strings.ToLower(attr) + "\x00" + strings.ToLower(value)
}

func (s *store) index(e *entry) {
	if s.names == nil {
		s.names = map[string]string{}
	}
	for _, a := range uniqueAttrs {
		if v := e.first(a); v != "" {
			s.names[nameKey(a, v)] = e.key
		}
	}
}

func (s *store) unindex(e *entry) {
	for _, a := range uniqueAttrs {
		if v := e.first(a); v != "" && s.names[nameKey(a, v)] == e.key {
			delete(s.names, nameKey(a, v))
		}
	}
}

// insert adds e (already checked) to the store.
func (s *store) insert(e *entry) {
	s.entries[e.key] = e
	s.order = append(s.order, e.key)
	s.index(e)
	s.linksDirty = true
}

func (s *store) remove(key string) {
	if e := s.entries[key]; e != nil {
		s.unindex(e)
	}
	delete(s.entries, key)
	if i := slices.Index(s.order, key); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
	s.linksDirty = true
}

// lookup finds the entry at dn; for a missing entry it returns the closest
// existing ancestor's DN as matched.
func (s *store) lookup(dn string) (e *entry, matched string, err *ldapError) {
	rdns, perr := parseDN(dn)
	if perr != nil {
		return nil, "", errInvalidDN(dn)
	}
	if e := s.entries[strings.Join(rdns, ",")]; e != nil {
		return e, "", nil
	}
	for i := 1; i < len(rdns); i++ {
		if a := s.entries[strings.Join(rdns[i:], ",")]; a != nil {
			return nil, a.dn, nil
		}
	}
	return nil, "", nil
}

// groupsOf returns the keys of the groups that list key as a member.
func (s *store) groupsOf(key string) []string {
	if s.linksDirty || s.memberOf == nil {
		s.memberOf = map[string][]string{}
		for _, gk := range s.order {
			for _, m := range s.entries[gk].get("member") {
				mk := s.normKey(m)
				s.memberOf[mk] = append(s.memberOf[mk], gk)
			}
		}
		s.linksDirty = false
	}
	return s.memberOf[key]
}

// dnValues returns the keys of the DN values of attribute lname of e,
// memberOf included.
func (s *store) dnValues(e *entry, lname string) []string {
	if lname == "memberof" {
		return s.groupsOf(e.key)
	}
	var keys []string
	for _, v := range e.get(lname) {
		if k := s.normKey(v); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// inChain reports whether following lname from e (transitively) reaches
// the entry whose key is target: LDAP_MATCHING_RULE_IN_CHAIN.
func (s *store) inChain(e *entry, lname, target string) bool {
	seen := map[string]bool{e.key: true}
	queue := s.dnValues(e, lname)
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if k == target {
			return true
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		if next := s.entries[k]; next != nil {
			queue = append(queue, s.dnValues(next, lname)...)
		}
	}
	return false
}

// memberOfDNs are the DNs of the groups e is a direct member of.
func (s *store) memberOfDNs(e *entry) []string {
	var dns []string
	for _, k := range s.groupsOf(e.key) {
		if g := s.entries[k]; g != nil {
			dns = append(dns, g.dn)
		}
	}
	return dns
}

// ncOf returns the key of the naming context that holds an entry with
// rdns: the deepest head that is the entry or one of its ancestors.
func (s *store) ncOf(rdns []string) string {
	best, depth := "", -1
	for _, h := range s.ncHeads {
		hr := strings.Split(h, ",")
		if len(hr) > depth && len(rdns) >= len(hr) && slices.Equal(rdns[len(rdns)-len(hr):], hr) {
			best, depth = h, len(hr)
		}
	}
	return best
}

// domain returns the naming context's head entry.
func (s *store) domain() *entry { return s.entries[s.baseKey] }

// children reports whether key has entries below it.
func (s *store) hasChildren(key string) bool {
	for _, k := range s.order {
		if e := s.entries[k]; len(e.rdns) > 0 && e.parentKey() == key {
			return true
		}
	}
	return false
}

// Windows time.

const fileTimeEpochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns ticks

// fileTime converts t to a Windows FILETIME (100 ns ticks since 1601).
func fileTime(t time.Time) int64 { return t.UnixNano()/100 + fileTimeEpochDiff }

// fromFileTime converts a FILETIME; 0 or less is the zero time.
func fromFileTime(ticks int64) time.Time {
	if ticks <= 0 {
		return time.Time{}
	}
	return time.Unix(0, (ticks-fileTimeEpochDiff)*100).UTC()
}

// generalizedTime formats t as AD does: 20260122104200.0Z.
func generalizedTime(t time.Time) string { return t.UTC().Format("20060102150405") + ".0Z" }

// parseGeneralizedTime accepts 20260122104200Z, 20260122104200.0Z and
// offsets.
func parseGeneralizedTime(s string) (time.Time, bool) {
	for _, layout := range []string{"20060102150405Z0700", "20060102150405.0Z0700", "20060102150405.000Z0700", "200601021504Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// neverTicks is AD's "never" for durations and expiry: 0x8000000000000000
// as a duration, 0x7FFFFFFFFFFFFFFF as accountExpires.
const (
	neverDuration = -9223372036854775808
	neverExpires  = 9223372036854775807
)

// durationTicks converts d to AD's negative 100 ns interval; 0 is "never".
func durationTicks(d time.Duration) int64 {
	if d <= 0 {
		return neverDuration
	}
	return -int64(d / 100)
}

// ticksDuration converts AD's negative interval; ok is false for "never".
func ticksDuration(ticks int64) (time.Duration, bool) {
	if ticks == 0 || ticks == neverDuration {
		return 0, false
	}
	if ticks < 0 {
		ticks = -ticks
	}
	return time.Duration(ticks) * 100, true
}

// tokenGroups is the constructed tokenGroups of e: the binary SIDs of
// every group e belongs to, directly, through nested groups or through its
// primary group (primaryGroupID, a RID of the domain), each once.
func (s *store) tokenGroups(e *entry) []string {
	seen := map[string]bool{e.key: true}
	queue := slices.Clone(s.groupsOf(e.key))
	if pg := e.int("primaryGroupID"); pg > 0 {
		sid := encodeSID(s.sidBase, pg)
		for _, k := range s.order {
			if g := s.entries[k]; g.kind == kindGroup && g.first("objectSid") == sid {
				queue = append(queue, k)
				break
			}
		}
	}
	var sids []string
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if seen[k] {
			continue
		}
		seen[k] = true
		g := s.entries[k]
		if g == nil {
			continue
		}
		if sid := g.first("objectSid"); sid != "" {
			sids = append(sids, sid)
		}
		queue = append(queue, s.groupsOf(k)...)
	}
	return sids
}
