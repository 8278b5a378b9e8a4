package demodir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/replyreset/replyreset/directory"
)

// UserSpec describes a user for AddUser.
type UserSpec struct {
	Username string // sAMAccountName (required; at most 20 characters); UPN is Username@Realm
	// Password; empty creates a disabled account without one, as AD does.
	Password string
	// CN is the RDN value (default Username); OU the container's DN
	// (default UsersDN, where the service account may reset passwords).
	CN, OU                                     string
	GivenName, Surname, DisplayName            string
	Mail, Mobile, Title, Department, City      string
	Disabled, MustChange, PasswordNeverExpires bool
}

// AddUser creates a user as the administrator would and returns its DN.
func (s *Server) AddUser(u UserSpec) (string, error) { return s.addUser(u) }

func (s *Server) addUser(u UserSpec, extra ...gldap.Attribute) (string, error) {
	if u.Username == "" {
		return "", fmt.Errorf("demodir: add user: no username")
	}
	if u.CN == "" {
		u.CN = u.Username
	}
	if u.OU == "" {
		u.OU = s.usersDN
	}
	dn := "CN=" + ldap.EscapeDN(u.CN) + "," + u.OU
	uac := int64(ufNormalAccount)
	if u.Disabled || u.Password == "" {
		uac |= ufAccountDisable
	}
	if u.Password == "" {
		uac |= ufPasswdNotReqd
	}
	if u.PasswordNeverExpires {
		uac |= ufDontExpirePasswd
	}
	attrs := []gldap.Attribute{
		attrOf("objectClass", "top", "person", "organizationalPerson", "user"),
		attrOf("sAMAccountName", u.Username),
		attrOf("userPrincipalName", u.Username+"@"+s.store.realm),
		attrOf("userAccountControl", strconv.FormatInt(uac, 10)),
	}
	if u.Password != "" {
		attrs = append(attrs, attrOf("unicodePwd", directory.EncodeUnicodePwd(u.Password)))
	}
	for name, v := range map[string]string{"givenName": u.GivenName, "sn": u.Surname, "displayName": u.DisplayName,
		"mail": u.Mail, "mobile": u.Mobile, "title": u.Title, "department": u.Department, "l": u.City} {
		if v != "" {
			attrs = append(attrs, attrOf(name, v))
		}
	}
	e, lerr := s.store.add(systemPrincipal, dn, append(attrs, extra...))
	if lerr != nil {
		return "", fmt.Errorf("demodir: add user %s: %w", dn, lerr)
	}
	if u.MustChange {
		s.store.mu.Lock()
		e.setInt("pwdLastSet", 0)
		s.store.mu.Unlock()
	}
	return e.dn, nil
}

// AddGroup creates a global security group in ou (default OU=Groups) with
// the given member DNs and returns its DN.
func (s *Server) AddGroup(name, ou string, memberDNs ...string) (string, error) {
	if ou == "" {
		ou = "OU=Groups," + s.store.base
	}
	dn := "CN=" + ldap.EscapeDN(name) + "," + ou
	attrs := []gldap.Attribute{attrOf("objectClass", "top", "group"), attrOf("sAMAccountName", name)}
	if len(memberDNs) > 0 {
		attrs = append(attrs, attrOf("member", memberDNs...))
	}
	if err := s.addEntry(dn, attrs...); err != nil {
		return "", err
	}
	return dn, nil
}

// AddMember adds memberDN to the group at groupDN.
func (s *Server) AddMember(groupDN, memberDN string) error {
	if lerr := s.store.modify(systemPrincipal, groupDN, []change{{op: gldap.AddAttribute, attr: "member", vals: []string{memberDN}}}, false); lerr != nil {
		return fmt.Errorf("demodir: add member %s to %s: %w", memberDN, groupDN, lerr)
	}
	return nil
}

// RemoveMember takes memberDN out of the group at groupDN.
func (s *Server) RemoveMember(groupDN, memberDN string) error {
	if lerr := s.store.modify(systemPrincipal, groupDN, []change{{op: gldap.DeleteAttribute, attr: "member", vals: []string{memberDN}}}, false); lerr != nil {
		return fmt.Errorf("demodir: remove member %s from %s: %w", memberDN, groupDN, lerr)
	}
	return nil
}

// Delete removes the leaf entry at dn.
func (s *Server) Delete(dn string) error {
	if lerr := s.store.del(systemPrincipal, dn); lerr != nil {
		return fmt.Errorf("demodir: delete %s: %w", dn, lerr)
	}
	return nil
}

// User is a person of the directory, as the demo's phone simulator lists it.
type User struct {
	Username    string
	DisplayName string
	Mail        string
	Mobile      string
	DN          string
	Title       string
	Department  string
	Locked      bool
	Disabled    bool
	MustChange  bool
}

// Users lists the people (user accounts except the built-in
// Administrator and the service account), sorted by username.
func (s *Server) Users() []User {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.clock.Now()
	var out []User
	for _, k := range st.order {
		e := st.entries[k]
		if e.kind != kindUser || k == st.adminKey || k == st.serviceKey {
			continue
		}
		flags := st.computedFlags(e, now)
		out = append(out, User{Username: e.first("sAMAccountName"), DisplayName: e.first("displayName"),
			Mail: e.first("mail"), Mobile: e.first("mobile"), DN: e.dn, Title: e.first("title"),
			Department: e.first("department"), Locked: flags&ufLockout != 0,
			Disabled: e.int("userAccountControl")&ufAccountDisable != 0, MustChange: e.pw != nil && e.int("pwdLastSet") == 0})
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)) })
	return out
}

// BindError is a refused bind: the LDAP result code, AD's sub-code (52e
// invalid credentials, 775 locked, 773 must change, 533 disabled, 532
// password expired, 701 account expired) and the diagnostic message.
type BindError struct {
	ResultCode int
	Data       string
	Message    string
}

func (e *BindError) Error() string {
	return fmt.Sprintf("bind refused: LDAP result %d, data %s", e.ResultCode, e.Data)
}

// Bind checks password for name (a DN, a userPrincipalName, a
// sAMAccountName or DOMAIN\name) exactly as an LDAP simple bind does,
// counting a failure toward the lockout: nil, or a *BindError.
func (s *Server) Bind(name, password string) error {
	if password == "" {
		return &BindError{ResultCode: gldap.ResultInvalidCredentials, Data: dataInvalid, Message: "empty password"}
	}
	_, lerr := s.store.bind(name, password)
	if lerr == nil {
		return nil
	}
	be := &BindError{ResultCode: lerr.code, Message: strings.TrimRight(lerr.msg, "\x00")}
	if _, rest, ok := strings.Cut(be.Message, "data "); ok {
		be.Data, _, _ = strings.Cut(rest, ",")
	}
	return be
}

// PolicyHinted reports whether the last modify of dn carried the policy
// hints control (AD's "apply the password policy to this reset").
func (s *Server) PolicyHinted(dn string) bool {
	v, _ := s.hinted.Load(strings.ToLower(dn))
	b, _ := v.(bool)
	return b
}

// Now is the server's current time.
func (s *Server) Now() time.Time { return s.clock.Now() }

// SetNow replaces the server's clock (nil: time.Now), keeping no offset.
func (s *Server) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	s.clock.now, s.clock.offset = now, 0
}

// Advance moves the server's clock forward by d (lockouts expire,
// passwords age).
func (s *Server) Advance(d time.Duration) {
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	s.clock.offset += d
}

// SetLockoutPolicy changes the domain's lockout threshold (0: never lock)
// and duration (0: until unlocked), as an administrator would on the
// domain object (which is also writable over LDAP).
func (s *Server) SetLockoutPolicy(threshold int, duration time.Duration) {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.domain()
	d.setInt("lockoutThreshold", int64(threshold))
	d.setInt("lockoutDuration", durationTicks(duration))
	if duration > 0 {
		d.setInt("lockOutObservationWindow", durationTicks(duration))
	}
	st.stamp(d, s.clock.Now())
}

// HighestCommittedUSN is the RootDSE's highestCommittedUSN.
func (s *Server) HighestCommittedUSN() int64 {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return s.store.usn
}

// Unlock clears the lockout of the account name designates (as Bind reads
// names), as an administrator's lockoutTime=0 does.
func (s *Server) Unlock(name string) error {
	s.store.mu.Lock()
	e := s.store.resolveAccount(name)
	s.store.mu.Unlock()
	if e == nil {
		return fmt.Errorf("demodir: unlock %q: no such account", name)
	}
	if lerr := s.store.modify(systemPrincipal, e.dn, []change{{op: gldap.ReplaceAttribute, attr: "lockoutTime", vals: []string{"0"}}}, false); lerr != nil {
		return fmt.Errorf("demodir: unlock %s: %w", e.dn, lerr)
	}
	return nil
}

// Rename gives the leaf entry at dn the common name cn (and the same name
// and, for a group, sAMAccountName when cn is a valid one), as a rename in the administrator's console does:
// objectSid, members and memberships stay, and member values naming it
// follow. It returns the new DN.
func (s *Server) Rename(dn, cn string) (string, error) {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	e, _, lerr := st.lookup(dn)
	if lerr != nil || e == nil {
		return "", fmt.Errorf("demodir: rename %s: no such entry", dn)
	}
	if st.hasChildren(e.key) {
		return "", fmt.Errorf("demodir: rename %s: not a leaf", dn)
	}
	parsed, err := ldap.ParseDN(e.dn)
	if err != nil || len(parsed.RDNs) < 2 {
		return "", fmt.Errorf("demodir: rename %s: bad DN", dn)
	}
	newDN := "CN=" + ldap.EscapeDN(cn) + "," + (&ldap.DN{RDNs: parsed.RDNs[1:]}).String()
	rdns, perr := parseDN(newDN)
	if perr != nil {
		return "", fmt.Errorf("demodir: rename %s: %w", dn, perr)
	}
	newKey := strings.Join(rdns, ",")
	if st.entries[newKey] != nil {
		return "", fmt.Errorf("demodir: rename %s: %s exists", dn, newDN)
	}
	oldKey := e.key
	st.unindex(e)
	delete(st.entries, oldKey)
	e.dn, e.rdns, e.key = newDN, rdns, newKey
	e.set("cn", cn)
	e.set("name", cn)
	e.set("distinguishedName", newDN)
	if e.kind == kindGroup && validSAM(cn) {
		e.set("sAMAccountName", cn)
	}
	st.entries[newKey] = e
	st.order[slices.Index(st.order, oldKey)] = newKey
	st.index(e)
	for _, k := range st.order {
		g := st.entries[k]
		vals := g.get("member")
		changed := false
		for i, v := range vals {
			if st.normKey(v) == oldKey {
				vals[i], changed = newDN, true
			}
		}
		if changed {
			g.set("member", vals...)
		}
	}
	st.linksDirty = true
	st.stamp(e, s.clock.Now())
	return newDN, nil
}
