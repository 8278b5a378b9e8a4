package demodir

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/jimlambrt/gldap"
)

// The demo domain's fixed accounts. Passwords of the built-in Administrator
// and the service account are random per start; the demo's console login
// and the sample users have documented passwords.
const (
	// HelpdeskUsername and HelpdeskPassword log in to the admin console.
	HelpdeskUsername = "helpdeskadmin"
	HelpdeskPassword = "Helpdesk#2026"
	// SamplePassword is the initial password of every sample user (Seed).
	SamplePassword = "Welcome#2026"
	// ServiceUsername is the service account's sAMAccountName.
	ServiceUsername = "svc-replyreset"
)

func attrOf(name string, vals ...string) gldap.Attribute {
	return gldap.Attribute{Type: name, Vals: vals}
}

// build creates the domain: the naming context with its policy, the
// containers, the Administrator, the service account, the admin groups
// and, with opt.Seed, the sample organisation.
func (s *Server) build(opt Options) error {
	st := s.store
	rdns, err := parseDN(opt.BaseDN)
	if err != nil {
		return fmt.Errorf("demodir: base DN: %w", err)
	}
	st.base, st.baseKey = opt.BaseDN, strings.Join(rdns, ",")
	var sub [3]uint32
	for i := range sub {
		var b [4]byte
		_, _ = rand.Read(b[:])
		sub[i] = binary.LittleEndian.Uint32(b[:])
	}
	st.sidBase = fmt.Sprintf("S-1-5-21-%d-%d-%d", sub[0], sub[1], sub[2])
	now := s.clock.Now()

	window := opt.LockoutDuration
	if window <= 0 {
		window = 30 * time.Minute
	}
	_, dc := rdnValue(opt.BaseDN)
	domain := &entry{dn: opt.BaseDN, rdns: rdns, key: st.baseKey, kind: kindDomain}
	domain.set("objectClass", "top", "domain", "domainDNS")
	domain.set("dc", dc)
	domain.set("name", dc)
	domain.set("distinguishedName", opt.BaseDN)
	domain.set("objectCategory", "CN=Domain-DNS,CN=Schema,CN=Configuration,"+opt.BaseDN)
	domain.setInt("lockoutThreshold", int64(opt.LockoutThreshold))
	domain.setInt("lockoutDuration", durationTicks(opt.LockoutDuration))
	domain.setInt("lockOutObservationWindow", durationTicks(window))
	domain.setInt("minPwdLength", int64(opt.MinPasswordLength))
	domain.setInt("minPwdAge", 0)
	domain.setInt("maxPwdAge", durationTicks(opt.MaxPasswordAge))
	domain.setInt("pwdProperties", 1) // DOMAIN_PASSWORD_COMPLEX
	domain.setInt("pwdHistoryLength", 0)
	domain.set("objectSid", encodeSID(st.sidBase))
	domain.set("objectGUID", newGUID())
	domain.set("whenCreated", generalizedTime(now))
	usn := st.nextUSN()
	domain.setInt("uSNCreated", usn)
	domain.setInt("uSNChanged", usn)
	domain.set("whenChanged", generalizedTime(now))
	st.insert(domain)

	base := opt.BaseDN
	// The configuration naming context, with the domain's crossRef: the
	// product reads the NetBIOS name there (for DOMAIN\user logins).
	config := "CN=Configuration," + base
	for _, c := range []struct {
		dn    string
		attrs []gldap.Attribute
	}{
		{config, []gldap.Attribute{attrOf("objectClass", "top", "configuration")}},
		{"CN=Schema," + config, []gldap.Attribute{attrOf("objectClass", "top", "dMD")}},
		{"CN=Partitions," + config, []gldap.Attribute{attrOf("objectClass", "top", "crossRefContainer")}},
		{"CN=" + st.netbios + ",CN=Partitions," + config, []gldap.Attribute{attrOf("objectClass", "top", "crossRef"),
			attrOf("nCName", base), attrOf("nETBIOSName", st.netbios), attrOf("dnsRoot", st.realm), attrOf("systemFlags", "3")}},
	} {
		if err := s.addEntry(c.dn, c.attrs...); err != nil {
			return err
		}
	}
	st.ncHeads = []string{st.baseKey, st.normKey(config), st.normKey("CN=Schema," + config)}

	usersCN := "CN=Users," + base
	s.usersDN = "OU=Staff," + base
	s.adminGroupDN = "CN=Helpdesk,OU=Groups," + base
	for _, c := range []struct{ dn, class, desc string }{
		{usersCN, "container", "Default container for upgraded user accounts"},
		{"OU=Service Accounts," + base, "organizationalUnit", "Accounts of applications"},
		{"OU=Groups," + base, "organizationalUnit", "Security groups"},
		{s.usersDN, "organizationalUnit", "Staff (default OU for new users)"},
	} {
		if err := s.addEntry(c.dn, attrOf("objectClass", "top", c.class), attrOf("description", c.desc)); err != nil {
			return err
		}
	}
	st.resetScopes = [][]string{mustRDNs(s.usersDN)}

	st.rid = 499
	s.admin = Account{Username: "Administrator", DN: "CN=Administrator," + usersCN, Password: randomPassword()}
	if _, err := s.addUser(UserSpec{Username: s.admin.Username, Password: s.admin.Password, CN: "Administrator", OU: usersCN,
		PasswordNeverExpires: true}, attrOf("adminCount", "1"),
		attrOf("description", "Built-in account for administering the computer/domain")); err != nil {
		return err
	}
	st.adminKey = st.normKey(s.admin.DN)
	st.rid = 511
	if err := s.addEntry("CN=Domain Admins,"+usersCN, attrOf("objectClass", "top", "group"), attrOf("member", s.admin.DN),
		attrOf("adminCount", "1"), attrOf("description", "Designated administrators of the domain")); err != nil {
		return err
	}
	if err := s.addProtectedGroups(usersCN); err != nil {
		return err
	}
	st.rid = 1100

	s.service = Account{Username: ServiceUsername, DN: "CN=" + ServiceUsername + ",OU=Service Accounts," + base, Password: randomPassword()}
	if _, err := s.addUser(UserSpec{Username: ServiceUsername, Password: s.service.Password, CN: ServiceUsername,
		OU: "OU=Service Accounts," + base, DisplayName: "ReplyReset service account", PasswordNeverExpires: true},
		attrOf("description", "Resets passwords and unlocks users for ReplyReset")); err != nil {
		return err
	}
	st.serviceKey = st.normKey(s.service.DN)

	s.helpdesk = Account{Username: HelpdeskUsername, Password: HelpdeskPassword}
	s.helpdesk.DN, err = s.addUser(UserSpec{Username: HelpdeskUsername, Password: HelpdeskPassword, CN: "Helpdesk Admin",
		GivenName: "Helpdesk", Surname: "Admin", DisplayName: "Helpdesk Admin", Mail: HelpdeskUsername + "@" + st.realm,
		Mobile: "+12025550100", Title: "IT Service Desk", Department: "IT"})
	if err != nil {
		return err
	}
	tier2, err := s.AddGroup("Tier2", "", s.helpdesk.DN)
	if err != nil {
		return err
	}
	if _, err := s.AddGroup("Helpdesk", "", tier2); err != nil {
		return err
	}
	if opt.Seed {
		return s.seed()
	}
	return nil
}

// addProtectedGroups adds the groups Active Directory protects (by their
// well-known SIDs), as a new domain has them: Domain Users (513, every
// user's primary group), Schema and Enterprise Admins (518, 519) in
// CN=Users, and in CN=Builtin the builtin Administrators (S-1-5-32-544,
// holding the Administrator and Domain Admins) and the Account, Server,
// Print and Backup Operators (548 to 551).
func (s *Server) addProtectedGroups(usersCN string) error {
	st := s.store
	base := st.base
	adminsDN := "CN=Domain Admins," + usersCN
	st.rid = 512
	if err := s.addEntry("CN=Domain Users,"+usersCN, attrOf("objectClass", "top", "group"),
		attrOf("description", "All domain users")); err != nil {
		return err
	}
	st.rid = 517
	for _, name := range []string{"Schema Admins", "Enterprise Admins"} {
		if err := s.addEntry("CN="+name+","+usersCN, attrOf("objectClass", "top", "group"), attrOf("member", s.admin.DN),
			attrOf("adminCount", "1")); err != nil {
			return err
		}
	}
	builtin := "CN=Builtin," + base
	if err := s.addEntry(builtin, attrOf("objectClass", "top", "container")); err != nil {
		return err
	}
	for _, g := range []struct {
		rid     int64
		name    string
		members []string
	}{
		{544, "Administrators", []string{s.admin.DN, adminsDN, "CN=Enterprise Admins," + usersCN}},
		{548, "Account Operators", nil},
		{549, "Server Operators", nil},
		{550, "Print Operators", nil},
		{551, "Backup Operators", nil},
	} {
		attrs := []gldap.Attribute{attrOf("objectClass", "top", "group"), attrOf("groupType", "-2147483643"),
			attrOf("adminCount", "1")}
		if len(g.members) > 0 {
			attrs = append(attrs, attrOf("member", g.members...))
		}
		dn := "CN=" + g.name + "," + builtin
		if err := s.addEntry(dn, attrs...); err != nil {
			return err
		}
		st.mu.Lock()
		st.entries[st.normKey(dn)].set("objectSid", encodeSID("S-1-5-32", g.rid))
		st.mu.Unlock()
	}
	return nil
}

func mustRDNs(dn string) []string {
	rdns, err := parseDN(dn)
	if err != nil {
		panic(err)
	}
	return rdns
}

// addEntry adds an entry as the system.
func (s *Server) addEntry(dn string, attrs ...gldap.Attribute) error {
	if _, lerr := s.store.add(systemPrincipal, dn, attrs); lerr != nil {
		return fmt.Errorf("demodir: add %s: %w", dn, lerr)
	}
	return nil
}

// sample is one sample user.
type sample struct {
	given, surname, username, title, mobile, city string
	disabled, mustChange                          bool
}

// The sample organisation: OU=Sales and OU=Engineering under OU=Demo Users.
// Mobile numbers are in the fictional 555-0100..0199 range.
var sampleOUs = []struct {
	ou, department string
	users          []sample
}{
	{"Sales", "Sales", []sample{
		{"Alice", "Martin", "amartin", "Account Executive", "+14155550101", "San Francisco", false, false},
		{"Brian", "O'Connor", "boconnor", "Sales Manager", "+14155550102", "San Francisco", false, false},
		{"Carla", "Mendes", "cmendes", "Account Executive", "+14155550103", "Lisbon", false, false},
		{"David", "Kim", "dkim", "Sales Engineer", "+14155550104", "Seattle", false, false},
		{"Elena", "Petrova", "epetrova", "Regional Director", "+14155550105", "Berlin", false, false},
		{"Farid", "Haddad", "fhaddad", "Account Executive", "+14155550106", "Montreal", false, false},
		{"Grace", "Liu", "gliu", "Sales Operations Analyst", "+14155550107", "Singapore", false, false},
		{"Hugo", "Lefèvre", "hlefevre", "Account Executive", "+14155550108", "Paris", false, false},
		{"Isabel", "Santos", "isantos", "Inside Sales Representative", "+14155550109", "Madrid", false, true},
		{"Jamal", "Wright", "jwright", "Account Executive (on leave)", "+14155550110", "Chicago", true, false},
	}},
	{"Engineering", "Engineering", []sample{
		{"Kenji", "Sato", "ksato", "Staff Engineer", "+12065550121", "Tokyo", false, false},
		{"Laura", "Schmidt", "lschmidt", "Engineering Manager", "+12065550122", "Munich", false, false},
		{"Mohammed", "Al-Farsi", "malfarsi", "Site Reliability Engineer", "+12065550123", "Dubai", false, false},
		{"Nina", "Kowalski", "nkowalski", "Software Engineer", "+12065550124", "Warsaw", false, false},
		{"Oscar", "Nilsson", "onilsson", "QA Engineer", "", "Stockholm", false, false},
		{"Priya", "Raman", "praman", "Software Engineer", "+12065550126", "Bangalore", false, false},
		{"Quentin", "Dubois", "qdubois", "Security Engineer", "+12065550127", "Lyon", false, false},
		{"Rosa", "Jiménez", "rjimenez", "Data Engineer", "+12065550128", "Mexico City", false, false},
		{"Samuel", "Okafor", "sokafor", "Software Engineer", "+12065550129", "Lagos", false, false},
		{"Tara", "Nguyen", "tnguyen", "Intern", "+12065550130", "Seattle", false, true},
	}},
}

// seed adds the sample organisation; its users may be reset by the service
// account.
func (s *Server) seed() error {
	demoOU := "OU=Demo Users," + s.store.base
	if err := s.addEntry(demoOU, attrOf("objectClass", "top", "organizationalUnit"), attrOf("description", "Sample users of the demo")); err != nil {
		return err
	}
	s.store.mu.Lock()
	s.store.resetScopes = append(s.store.resetScopes, mustRDNs(demoOU))
	s.store.mu.Unlock()
	for _, o := range sampleOUs {
		ou := "OU=" + o.ou + "," + demoOU
		if err := s.addEntry(ou, attrOf("objectClass", "top", "organizationalUnit")); err != nil {
			return err
		}
		for _, u := range o.users {
			display := u.given + " " + u.surname
			if _, err := s.addUser(UserSpec{Username: u.username, Password: SamplePassword, CN: display, OU: ou,
				GivenName: u.given, Surname: u.surname, DisplayName: display, Mail: mailOf(u.given, u.surname, s.store.realm),
				Mobile: u.mobile, Title: u.title, Department: o.department, City: u.city,
				Disabled: u.disabled, MustChange: u.mustChange}); err != nil {
				return err
			}
		}
	}
	return nil
}

// mailOf makes first.last@realm from a name, letters only, accents dropped.
func mailOf(given, surname, realm string) string {
	fold := strings.NewReplacer("é", "e", "è", "e", "ê", "e", "á", "a", "à", "a", "í", "i", "ó", "o", "ú", "u", "ñ", "n", "ç", "c")
	clean := func(s string) string {
		var b strings.Builder
		for _, r := range fold.Replace(strings.ToLower(s)) {
			if r >= 'a' && r <= 'z' {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return clean(given) + "." + clean(surname) + "@" + realm
}
