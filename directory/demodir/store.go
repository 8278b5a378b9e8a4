package demodir

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

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
