package demodir

import (
	"crypto/rand"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jimlambrt/gldap"
)

// principal is who asks: the bound entry's key ("" when anonymous) and
// whether the connection is encrypted (AD writes unicodePwd only then).
type principal struct {
	key string
	tls bool
}

// systemKey is the principal of the Go API (AddUser, seeding): the
// administrator's rights on an encrypted connection.
const systemKey = "\x00system"

var systemPrincipal = principal{key: systemKey, tls: true}

// isAdmin: the built-in Administrator may write anything.
func (s *store) isAdmin(p principal) bool {
	return p.key != "" && (p.key == s.adminKey || p.key == systemKey)
}

// canReset: the password-reset delegation of the service account (Reset
// Password, write pwdLastSet and lockoutTime on user objects), as the
// Samba lab grants it. Protected accounts (adminCount=1, AdminSDHolder)
// are out of its reach, as on AD.
func (s *store) canReset(p principal, target *entry) bool {
	if s.isAdmin(p) {
		return true
	}
	if p.key == "" || p.key != s.serviceKey || target.kind != kindUser || target.int("adminCount") == 1 {
		return false
	}
	for _, scope := range s.resetScopes {
		if len(target.rdns) > len(scope) && slices.Equal(target.rdns[len(target.rdns)-len(scope):], scope) {
			return true
		}
	}
	return false
}

// newObjectSID returns the next SID of the domain, binary.
func (s *store) newObjectSID() string {
	s.rid++
	return encodeSID(s.sidBase, s.rid)
}

// encodeSID returns the binary form of the SID base (S-1-5-21-a-b-c)
// followed by rids.
func encodeSID(base string, rids ...int64) string {
	parts := strings.Split(strings.TrimPrefix(base, "S-"), "-") // 1, 5, 21, a, b, c
	rev, _ := strconv.Atoi(parts[0])
	auth, _ := strconv.ParseUint(parts[1], 10, 64)
	subs := parts[2:]
	for _, rid := range rids {
		subs = append(subs, strconv.FormatInt(rid, 10))
	}
	b := []byte{byte(rev), byte(len(subs))}
	var a [8]byte
	binary.BigEndian.PutUint64(a[:], auth)
	b = append(b, a[2:]...)
	for _, sub := range subs {
		n, _ := strconv.ParseUint(sub, 10, 32)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
	}
	return string(b)
}

func newGUID() string {
	var g [16]byte
	_, _ = rand.Read(g[:])
	return string(g[:])
}

// badSAMChars cannot appear in a sAMAccountName.
const badSAMChars = `"/\[]:;|=,+*?<>`

func validSAM(name string) bool {
	return name != "" && len([]rune(name)) <= 20 && !strings.ContainsAny(name, badSAMChars) &&
		!strings.HasSuffix(name, ".") && strings.TrimSpace(name) == name
}

// unique reports whether no entry but self has attr (an indexed one)
// equal to value.
func (s *store) unique(attr, value, self string) bool {
	k, ok := s.names[nameKey(attr, value)]
	return !ok || k == self
}

// add creates an entry from an LDAP add (or the Go API, as the
// administrator).
func (s *store) add(p principal, dn string, attrs []gldap.Attribute) (*entry, *ldapError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.isAdmin(p) {
		return nil, errInsufficientRights()
	}
	rdns, err := parseDN(dn)
	if err != nil || len(rdns) == 0 {
		return nil, errInvalidDN(dn)
	}
	key := strings.Join(rdns, ",")
	if s.entries[key] != nil {
		return nil, errEntryExists()
	}
	if s.entries[strings.Join(rdns[1:], ",")] == nil {
		_, matched, _ := s.lookup(dn)
		return nil, errNoSuchObject(matched)
	}
	now := s.clock.Now()
	e := &entry{dn: dn, rdns: rdns, key: key}
	var password *string
	for _, a := range attrs {
		def := defOf(a.Type)
		vals := slices.DeleteFunc(slices.Clone(a.Vals), func(v string) bool { return v == "" })
		switch {
		case len(vals) == 0:
			return nil, errConstraint(def.name)
		case def.system:
			return nil, errWillNotPerform("attribute " + def.name + " is owned by the system")
		case strings.EqualFold(def.name, "unicodePwd"):
			if !p.tls {
				return nil, errWillNotPerform("unicodePwd needs an encrypted connection")
			}
			pw, ok := decodeUnicodePwd(vals[0])
			if !ok || len(vals) != 1 {
				return nil, errAttrConversion()
			}
			password = &pw
			continue
		}
		if e.find(def.name) >= 0 {
			return nil, errValueExists(def.name)
		}
		e.set(def.name, vals...)
	}
	classes := e.get("objectClass")
	if len(classes) == 0 {
		return nil, errObjectClass("no objectClass")
	}
	e.kind = kindOf(classes)
	typ, value := rdnValue(dn)
	e.set(defOf(typ).name, value)
	e.set("name", value)
	e.set("distinguishedName", dn)
	if e.first("objectCategory") == "" {
		e.set("objectCategory", "CN="+categoryCN(e.kind)+",CN=Schema,CN=Configuration,"+s.base)
	}
	switch e.kind {
	case kindUser:
		if lerr := s.prepareUser(e, password, now); lerr != nil {
			return nil, lerr
		}
	case kindGroup:
		if lerr := s.prepareGroup(e); lerr != nil {
			return nil, lerr
		}
	default:
		if password != nil {
			return nil, errObjectClass("unicodePwd is not allowed on this class")
		}
	}
	e.setInt("instanceType", 4)
	e.set("objectGUID", newGUID())
	e.set("whenCreated", generalizedTime(now))
	usn := s.nextUSN()
	e.setInt("uSNCreated", usn)
	e.setInt("uSNChanged", usn)
	e.set("whenChanged", generalizedTime(now))
	s.insert(e)
	return e, nil
}

func (s *store) prepareUser(e *entry, password *string, now time.Time) *ldapError {
	sam := e.first("sAMAccountName")
	if sam == "" {
		sam = "$" + strings.ToUpper(strconv.FormatInt(s.rid+1, 36)) + "-DEMO"
		e.set("sAMAccountName", sam)
	}
	if !validSAM(sam) {
		return errConstraint("sAMAccountName")
	}
	if !s.unique("sAMAccountName", sam, "") {
		return errEntryExists()
	}
	if upn := e.first("userPrincipalName"); upn != "" && !s.unique("userPrincipalName", upn, "") {
		return errConstraint("userPrincipalName")
	}
	if e.first("userAccountControl") == "" {
		e.setInt("userAccountControl", uacDefaultNewAccount)
	}
	uac, err := strconv.ParseInt(e.first("userAccountControl"), 10, 64)
	if err != nil {
		return errConstraint("userAccountControl")
	}
	e.setInt("pwdLastSet", 0)
	if password != nil {
		if lerr := s.checkPassword(e, *password); lerr != nil {
			return lerr
		}
		setPassword(e, *password, now)
	} else if uac&(ufAccountDisable|ufPasswdNotReqd) == 0 {
		// AD refuses an enabled account without a password.
		return &ldapError{code: gldap.ResultUnwillingToPerform,
			msg: "0000052D: SvcErr: DSID-031A124C, problem 5003 (WILL_NOT_PERFORM), data 0\n\x00"}
	}
	e.set("objectSid", s.newObjectSID())
	for name, def := range map[string]int64{"accountExpires": neverExpires, "primaryGroupID": 513,
		"sAMAccountType": 805306368, "badPwdCount": 0, "badPasswordTime": 0, "lastLogon": 0,
		"logonCount": 0, "codePage": 0, "countryCode": 0} {
		if e.first(name) == "" {
			e.setInt(name, def)
		}
	}
	return nil
}

func (s *store) prepareGroup(e *entry) *ldapError {
	sam := e.first("sAMAccountName")
	if sam == "" {
		sam = e.first("cn")
		e.set("sAMAccountName", sam)
	}
	if !validSAM(sam) {
		return errConstraint("sAMAccountName")
	}
	if !s.unique("sAMAccountName", sam, "") {
		return errEntryExists()
	}
	if e.first("groupType") == "" {
		e.setInt("groupType", -2147483646) // global security group
	}
	members, lerr := s.resolveMembers(e.get("member"))
	if lerr != nil {
		return lerr
	}
	e.set("member", members...)
	e.setInt("sAMAccountType", 268435456)
	e.set("objectSid", s.newObjectSID())
	return nil
}

// resolveMembers maps member values to the DNs of existing entries, each
// once.
func (s *store) resolveMembers(vals []string) ([]string, *ldapError) {
	var out []string
	seen := map[string]bool{}
	for _, v := range vals {
		m, matched, lerr := s.lookup(v)
		if lerr != nil {
			return nil, lerr
		}
		if m == nil {
			return nil, errNoSuchObject(matched)
		}
		if seen[m.key] {
			return nil, errValueExists("member")
		}
		seen[m.key] = true
		out = append(out, m.dn)
	}
	return out, nil
}

// del deletes the leaf entry at dn and its group memberships.
func (s *store) del(p principal, dn string) *ldapError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.isAdmin(p) {
		return errInsufficientRights()
	}
	e, matched, lerr := s.lookup(dn)
	if lerr != nil {
		return lerr
	}
	if e == nil {
		return errNoSuchObject(matched)
	}
	if e.key == s.adminKey || e.key == s.serviceKey || e.key == s.baseKey {
		return errWillNotPerform("a critical system object cannot be deleted")
	}
	if s.hasChildren(e.key) {
		return errNotLeaf()
	}
	now := s.clock.Now()
	for _, gk := range s.groupsOf(e.key) {
		g := s.entries[gk]
		g.set("member", slices.DeleteFunc(slices.Clone(g.get("member")), func(m string) bool { return s.normKey(m) == e.key })...)
		s.stamp(g, now)
	}
	s.remove(e.key)
	s.nextUSN()
	return nil
}
