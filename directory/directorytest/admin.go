package directorytest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// AdminDirectory is what the admin-queries suite drives: the directory and
// the admin console's queries.
type AdminDirectory interface {
	directory.Directory
	directory.AdminQueries
}

// Person is a fixture user with the attributes SearchUsers looks in.
type Person struct {
	UserSpec
	GivenName, Surname string
	// Parent is the DN of the OU to create the user in; "" is the default
	// users container (where the service account may reset and unlock).
	Parent string
}

// GroupSpec is a fixture group.
type GroupSpec struct {
	Name string // cn
	// AccountName is the AD sAMAccountName ("" = Name); ignored where
	// groups have none (see AdminBackend.GroupAccountNames).
	AccountName string
	Parent      string   // DN of the container; "" = the default groups container
	Members     []string // member DNs, at least one
}

// AdminBackend adapts one directory server to the admin-queries suite.
type AdminBackend struct {
	Backend
	// Open returns the implementation under test bound as the service
	// account, with base_dn set to baseDN ("" = the server's BaseDN),
	// closed on t.Cleanup.
	Open   func(t *testing.T, baseDN string) AdminDirectory
	BaseDN string
	// AddPerson creates a fixture user and returns its DN.
	AddPerson func(t *testing.T, p Person) string
	// AddGroup creates a static group and returns its DN; AddMember adds a
	// member later (for cycles).
	AddGroup  func(t *testing.T, g GroupSpec) string
	AddMember func(t *testing.T, groupDN, memberDN string)
	// AddOU creates an organizational unit under parent ("" = BaseDN) and
	// returns its DN.
	AddOU func(t *testing.T, name, parent string) string
	// ShortLockout makes lockouts of the user at dn expire quickly, until
	// the test ends, and returns the lockout duration.
	ShortLockout func(t *testing.T, dn string) time.Duration
	// GroupAccountNames says groups have an account name (AD
	// sAMAccountName) that GroupMembers accepts besides cn.
	GroupAccountNames bool
	// UPNSuffix is "@domain" when users log in as user@domain by
	// userPrincipalName = username+UPNSuffix (AD); "" when user@domain is
	// the mail attribute (OpenLDAP).
	UPNSuffix string
	// NetBIOSDomain is the only DOMAIN accepted in DOMAIN\user; "" when any
	// is (OpenLDAP has no domain).
	NetBIOSDomain string
}

// RunAdmin runs the admin-queries suite against b. The lockout subtests
// lock accounts; like RunLockout, they must not run in parallel with
// other tests that change the server's lockout policy.
func RunAdmin(t *testing.T, b AdminBackend) {
	t.Run("SearchSubstring", func(t *testing.T) { testSearchSubstring(t, b) })
	t.Run("SearchHostileInput", func(t *testing.T) { testSearchHostile(t, b) })
	t.Run("SearchTruncation", func(t *testing.T) { testSearchTruncation(t, b) })
	t.Run("GroupNested", func(t *testing.T) { testGroupNested(t, b) })
	t.Run("GroupLookup", func(t *testing.T) { testGroupLookup(t, b) })
	t.Run("UsersUnder", func(t *testing.T) { testUsersUnder(t, b) })
	t.Run("LockedUsers", func(t *testing.T) { testLockedUsers(t, b) })
	t.Run("LockedUsersExpired", func(t *testing.T) { testLockedUsersExpired(t, b) })
	t.Run("LoginForms", func(t *testing.T) { testLoginForms(t, b) })
	t.Run("Cancelled", func(t *testing.T) { testAdminCancelled(t, b) })
}

// addPerson creates p (Username and Password filled in when empty).
func addPerson(t *testing.T, b AdminBackend, prefix string, p Person) (Person, string) {
	t.Helper()
	if p.Username == "" {
		p.Username = b.UniqueName(prefix)
	}
	if p.Password == "" {
		p.Password = initialPassword
	}
	return p, b.AddPerson(t, p)
}

// checkUsers compares a list with the usernames wanted (in order) and each
// user with FindUser's view of it.
func checkUsers(t *testing.T, d AdminDirectory, what string, got []directory.User, want ...string) {
	t.Helper()
	if names := contactNames(got); !slices.Equal(names, want) {
		t.Errorf("%s = %v, want %v", what, names, want)
		return
	}
	for _, u := range got {
		f := mustFind(t, d, u.Username)
		if !sameDN(u.DN, f.DN) || u.DisplayName != f.DisplayName || u.Mail != f.Mail || u.Mobile != f.Mobile ||
			u.Locked != f.Locked || u.MustChange != f.MustChange || u.Disabled != f.Disabled {
			t.Errorf("%s: user %+v\nFindUser: %+v", what, u, f)
		}
	}
}

// sorted returns names sorted as the lists are: by username, case-insensitively.
func sorted(names ...string) []string {
	names = slices.Clone(names)
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return names
}

// only keeps the users of list whose username is one of names (the lists
// also hold other tests' users).
func only(list []directory.User, names ...string) []directory.User {
	return slices.DeleteFunc(slices.Clone(list), func(u directory.User) bool { return !slices.Contains(names, u.Username) })
}

func search(t *testing.T, d AdminDirectory, q string, limit int) ([]directory.User, bool) {
	t.Helper()
	users, truncated, err := d.SearchUsers(ctxT(t), q, limit)
	if err != nil {
		t.Fatalf("SearchUsers(%q, %d): %v", q, limit, err)
	}
	if !slices.IsSortedFunc(contactNames(users), func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	}) {
		t.Errorf("SearchUsers(%q) = %v, not sorted by username", q, contactNames(users))
	}
	return users, truncated
}

func testSearchSubstring(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	token := b.UniqueName("zq") // zq-xxxxxxxx
	byName, _ := addPerson(t, b, "", Person{UserSpec: UserSpec{Username: token + "a", DisplayName: "Alpha Person"}})
	byDisplay, _ := addPerson(t, b, "sb", Person{UserSpec: UserSpec{DisplayName: "Beta " + strings.ToUpper(token) + " Person"}})
	byMail, _ := addPerson(t, b, "sc", Person{UserSpec: UserSpec{DisplayName: "Gamma", Mail: "x." + token + "@example.test"}})
	byGiven, _ := addPerson(t, b, "sd", Person{UserSpec: UserSpec{DisplayName: "Delta"}, GivenName: "Gi" + token})
	bySurname, _ := addPerson(t, b, "se", Person{UserSpec: UserSpec{DisplayName: "Epsilon"}, Surname: token + "son"})
	other, _ := addPerson(t, b, "sf", Person{UserSpec: UserSpec{DisplayName: "Other " + token[:len(token)-1]}})
	want := sorted(byName.Username, byDisplay.Username, byMail.Username, byGiven.Username, bySurname.Username)

	for _, q := range []string{token, strings.ToUpper(token), "  " + token + "\t", token[1:], token[2:]} {
		got, truncated := search(t, d, q, 0)
		if truncated {
			t.Errorf("SearchUsers(%q) truncated with %d users", q, len(got))
		}
		checkUsers(t, d, "SearchUsers("+q+")", got, want...)
	}
	got, _ := search(t, d, "x."+token+"@example", 0)
	checkUsers(t, d, "SearchUsers(mail part)", got, byMail.Username)
	// The other user holds all but the last character of the token.
	got, _ = search(t, d, token[:len(token)-1], 0)
	checkUsers(t, d, "SearchUsers(prefix)", only(got, append(want, other.Username)...), sorted(append(want, other.Username)...)...)
	if got, _ := search(t, d, b.UniqueName("nomatch"), 0); len(got) != 0 {
		t.Errorf("SearchUsers(no match) = %v, want none", contactNames(got))
	}
}

func testSearchHostile(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx := ctxT(t)
	token := b.UniqueName("zh")
	odd, _ := addPerson(t, b, "hodd", Person{UserSpec: UserSpec{DisplayName: `Odd *(x)\ ` + token}})
	plain, _ := addPerson(t, b, "hplain", Person{UserSpec: UserSpec{DisplayName: "Plain " + token}})
	fixtures := []Person{odd, plain}
	if b.SpecialCharUsernames {
		weird, _ := addPerson(t, b, "", Person{UserSpec: UserSpec{Username: b.UniqueName("hw") + `*(`, DisplayName: "Weird " + token}})
		fixtures = append(fixtures, weird)
	}
	var names []string
	for _, p := range fixtures {
		names = append(names, p.Username)
	}
	// holds reports whether p literally holds q in an attribute the search
	// reads, as the servers compare (case-insensitively).
	holds := func(p Person, q string) bool {
		fields := []string{p.Username, p.DisplayName, p.Mail, p.GivenName, p.Surname}
		return slices.ContainsFunc(fields, func(f string) bool {
			return f != "" && strings.Contains(strings.ToLower(f), strings.ToLower(strings.TrimSpace(q)))
		})
	}
	for _, q := range []string{"*", "**", "(", ")", `\`, `\2a`, `*(x)\`, "*)(objectClass=*", token + ")(|(cn=*",
		"(&)", "(|)", `*` + token, token + `*`, `\` + token} {
		users, truncated, err := d.SearchUsers(ctx, q, 1000)
		if err != nil {
			t.Errorf("SearchUsers(%q): %v", q, err)
			continue
		}
		var want []string
		for _, p := range fixtures {
			if holds(p, q) {
				want = append(want, p.Username)
			}
		}
		if got := contactNames(only(users, names...)); !slices.Equal(got, sorted(want...)) {
			t.Errorf("SearchUsers(%q) found fixtures %v, want %v (those that hold it literally)", q, got, sorted(want...))
		}
		for _, u := range users {
			if !strings.Contains(strings.ToLower(u.Username+"\x00"+u.DisplayName+"\x00"+u.Mail), strings.ToLower(q)) {
				// cn, givenName, sn are not in User: only fixtures are
				// checked exactly; others are logged.
				t.Logf("SearchUsers(%q) also returned %s (%q)", q, u.Username, u.DisplayName)
			}
		}
		if q == "*" && truncated {
			t.Errorf("SearchUsers(%q) matched more than 1000 users: the star was not taken literally", q)
		}
	}
	if got, _ := search(t, d, `*(x)\ `+token, 0); !slices.Equal(contactNames(got), []string{odd.Username}) {
		t.Errorf("SearchUsers(the odd display name) = %v, want [%s]", contactNames(got), odd.Username)
	}
	for _, q := range []string{"", "   ", "\t\n", "\x00", token + "\x00", "\x00" + token, "a\x01b", "\xff\xfe", strings.Repeat("a", 257)} {
		if users, _, err := d.SearchUsers(ctx, q, 10); !errors.Is(err, directory.ErrInvalidInput) {
			t.Errorf("SearchUsers(%q) = %v, %v; want ErrInvalidInput", q, contactNames(users), err)
		}
	}
}

func testSearchTruncation(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	token := b.UniqueName("zt")
	var all []string
	for i := 0; i < 4; i++ {
		p, _ := addPerson(t, b, "tr", Person{UserSpec: UserSpec{DisplayName: "Trunc " + token}})
		all = append(all, p.Username)
	}
	all = sorted(all...)
	got, truncated := search(t, d, token, 3)
	if !truncated || len(got) != 3 {
		t.Errorf("SearchUsers(limit 3) of 4 matches = %v, truncated=%v; want 3 users, truncated", contactNames(got), truncated)
	}
	for _, u := range got {
		if !slices.Contains(all, u.Username) {
			t.Errorf("SearchUsers(limit 3) returned %s, not a match", u.Username)
		}
	}
	for _, limit := range []int{4, 0, -1, 1_000_000} {
		got, truncated := search(t, d, token, limit)
		if truncated || !slices.Equal(contactNames(got), all) {
			t.Errorf("SearchUsers(limit %d) = %v, truncated=%v; want %v, not truncated", limit, contactNames(got), truncated, all)
		}
	}
	got, truncated = search(t, d, token, 1)
	if !truncated || len(got) != 1 {
		t.Errorf("SearchUsers(limit 1) = %v, truncated=%v; want 1 user, truncated", contactNames(got), truncated)
	}
}

func members(t *testing.T, d AdminDirectory, group string) []directory.User {
	t.Helper()
	users, err := d.GroupMembers(ctxT(t), group)
	if err != nil {
		t.Fatalf("GroupMembers(%q): %v", group, err)
	}
	return users
}

func testGroupNested(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	u1, dn1 := addPerson(t, b, "gm1", Person{UserSpec: UserSpec{DisplayName: "Member One", Mail: b.UniqueName("gm1") + "@example.test"}})
	u2, dn2 := addPerson(t, b, "gm2", Person{UserSpec: UserSpec{DisplayName: "Member Two"}})
	u3, dn3 := addPerson(t, b, "gm3", Person{UserSpec: UserSpec{DisplayName: "Member Three"}})
	outsider, _ := addPerson(t, b, "gmout", Person{})
	n1, n2, n3 := b.UniqueName("gn1"), b.UniqueName("gn2"), b.UniqueName("gn3")
	g3 := b.AddGroup(t, GroupSpec{Name: n3, Members: []string{dn3}})
	g2 := b.AddGroup(t, GroupSpec{Name: n2, Members: []string{g3, dn2}})
	g1 := b.AddGroup(t, GroupSpec{Name: n1, Members: []string{dn1, g2}})
	all := sorted(u1.Username, u2.Username, u3.Username)

	checkUsers(t, d, "GroupMembers(g1)", members(t, d, g1), all...)
	checkUsers(t, d, "GroupMembers(g2)", members(t, d, g2), sorted(u2.Username, u3.Username)...)
	checkUsers(t, d, "GroupMembers(g3)", members(t, d, g3), u3.Username)
	for _, name := range []string{n1, strings.ToUpper(n1), " " + n1 + " "} {
		checkUsers(t, d, "GroupMembers(name "+name+")", members(t, d, name), all...)
	}
	if got := contactNames(members(t, d, g1)); slices.Contains(got, outsider.Username) {
		t.Errorf("GroupMembers(g1) = %v, includes the non-member %s", got, outsider.Username)
	}

	// g1 > g2 > g3 > g1: every group now holds everyone, and the walk ends.
	b.AddMember(t, g3, g1)
	for _, g := range []string{g1, g2, g3, n3} {
		checkUsers(t, d, "GroupMembers("+g+") with a cycle", members(t, d, g), all...)
	}
	// A user listed twice (directly and through a nested group) is listed once.
	b.AddMember(t, g1, dn3)
	checkUsers(t, d, "GroupMembers(g1) with a member twice", members(t, d, g1), all...)
}

func testGroupLookup(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx := ctxT(t)
	u, udn := addPerson(t, b, "gl", Person{})
	name := b.UniqueName("dup")
	ou := b.AddOU(t, b.UniqueName("glou"), "")
	ga := b.AddGroup(t, GroupSpec{Name: name, Members: []string{udn}})
	gb := b.AddGroup(t, GroupSpec{Name: name, AccountName: b.UniqueName("dupb"), Parent: ou, Members: []string{udn}})
	if users, err := d.GroupMembers(ctx, name); !errors.Is(err, directory.ErrAmbiguous) {
		t.Errorf("GroupMembers(%q), a name two groups have = %v, %v; want ErrAmbiguous", name, contactNames(users), err)
	}
	for _, g := range []string{ga, gb, strings.ToUpper(ga)} {
		checkUsers(t, d, "GroupMembers(DN "+g+")", members(t, d, g), u.Username)
	}
	if b.GroupAccountNames {
		account := b.UniqueName("acct")
		b.AddGroup(t, GroupSpec{Name: b.UniqueName("cnname"), AccountName: account, Members: []string{udn}})
		checkUsers(t, d, "GroupMembers(account name)", members(t, d, account), u.Username)
	}
	parent := dnParent(ga)
	for _, g := range []string{b.UniqueName("nogroup"), "cn=" + b.UniqueName("nogroup") + "," + parent, udn, "*", name + "*", "*)(cn=*"} {
		if users, err := d.GroupMembers(ctx, g); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("GroupMembers(%q) = %v, %v; want ErrNotFound", g, contactNames(users), err)
		}
	}
	for _, g := range []string{"", "  ", "\x00", name + "\x00", "cn=x,dc=elsewhere,dc=invalid", "cn=" + name + ",dc=invalid"} {
		if users, err := d.GroupMembers(ctx, g); !errors.Is(err, directory.ErrInvalidInput) {
			t.Errorf("GroupMembers(%q) = %v, %v; want ErrInvalidInput", g, contactNames(users), err)
		}
	}
}

func testUsersUnder(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx := ctxT(t)
	ou := b.AddOU(t, b.UniqueName("ou"), "")
	sub := b.AddOU(t, b.UniqueName("sub"), ou)
	sibling := b.AddOU(t, b.UniqueName("sib"), "")
	ux, _ := addPerson(t, b, "oux", Person{Parent: ou, UserSpec: UserSpec{DisplayName: "In OU"}})
	uy, _ := addPerson(t, b, "ouy", Person{Parent: sub, UserSpec: UserSpec{DisplayName: "In Sub"}})
	uz, _ := addPerson(t, b, "ouz", Person{Parent: sibling, UserSpec: UserSpec{DisplayName: "In Sibling"}})

	under := func(d AdminDirectory, base string) []directory.User {
		t.Helper()
		users, err := d.UsersUnder(ctx, base)
		if err != nil {
			t.Fatalf("UsersUnder(%q): %v", base, err)
		}
		return users
	}
	checkUsers(t, d, "UsersUnder(ou)", under(d, ou), sorted(ux.Username, uy.Username)...)
	checkUsers(t, d, "UsersUnder(sub)", under(d, sub), uy.Username)
	checkUsers(t, d, "UsersUnder(OU in upper case)", under(d, strings.ToUpper(ou)), sorted(ux.Username, uy.Username)...)
	checkUsers(t, d, "UsersUnder(sibling)", under(d, sibling), uz.Username)
	empty := b.AddOU(t, b.UniqueName("empty"), "")
	if got := under(d, empty); len(got) != 0 {
		t.Errorf("UsersUnder(empty OU) = %v, want none", contactNames(got))
	}
	missing := "ou=" + b.UniqueName("missing") + "," + b.BaseDN
	if users, err := d.UsersUnder(ctx, missing); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("UsersUnder(missing OU) = %v, %v; want ErrNotFound", contactNames(users), err)
	}
	for _, base := range []string{"", " ", "not a dn", "ou=x,dc=elsewhere,dc=invalid", "dc=invalid", ou + "\x00", "*"} {
		if users, err := d.UsersUnder(ctx, base); !errors.Is(err, directory.ErrInvalidInput) {
			t.Errorf("UsersUnder(%q) = %v, %v; want ErrInvalidInput", base, contactNames(users), err)
		}
	}

	// A client whose base_dn is the OU: the sibling and the server's base
	// are outside it, and its searches stay inside.
	narrow := b.Open(t, ou)
	checkUsers(t, narrow, "UsersUnder(sub) below a narrow base_dn", under(narrow, sub), uy.Username)
	checkUsers(t, narrow, "UsersUnder(base_dn) of a narrow client", under(narrow, ou), sorted(ux.Username, uy.Username)...)
	for _, base := range []string{sibling, b.BaseDN, dnParent(ou)} {
		if users, err := narrow.UsersUnder(ctx, base); !errors.Is(err, directory.ErrInvalidInput) {
			t.Errorf("UsersUnder(%q) outside base_dn %q = %v, %v; want ErrInvalidInput", base, ou, contactNames(users), err)
		}
	}
	// Only ux and uy lie below the narrow base_dn, and both hold "in".
	got, _ := search(t, narrow, "In ", 0)
	checkUsers(t, narrow, "SearchUsers below a narrow base_dn", got, sorted(ux.Username, uy.Username)...)
}

func locked(t *testing.T, d AdminDirectory) []directory.User {
	t.Helper()
	users, err := d.LockedUsers(ctxT(t))
	if err != nil {
		t.Fatalf("LockedUsers: %v", err)
	}
	for _, u := range users {
		if !u.Locked || u.LockoutTime.IsZero() || u.DN == "" {
			t.Errorf("LockedUsers: %+v, want a locked user with a DN and a lockout time", u)
		}
	}
	if !slices.IsSortedFunc(contactNames(users), func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	}) {
		t.Errorf("LockedUsers = %v, not sorted by username", contactNames(users))
	}
	return users
}

func testLockedUsers(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	lk, ldn := newUser(t, b.Backend, "lu")
	free, fdn := newUser(t, b.Backend, "lufree")
	for i := 0; i < 2; i++ { // bad binds below the threshold lock nothing
		if got, err := b.RawBind(fdn, "Wrong#Pass9z"); got != BindInvalid {
			t.Fatalf("bad bind as %s: %v (%v)", free.Username, got, err)
		}
	}
	from := time.Now().Truncate(time.Second).Add(-time.Second)
	b.LockOut(t, ldn)
	to := time.Now().Add(2 * time.Second)

	got := only(locked(t, d), lk.Username, free.Username)
	checkUsers(t, d, "LockedUsers after a lockout", got, lk.Username)
	if len(got) == 1 {
		if at := got[0].LockoutTime; at.Before(from) || at.After(to) {
			t.Errorf("LockoutTime = %v, want between %v and %v", at, from, to)
		}
	}
	if err := d.Unlock(ctxT(t), mustFind(t, d, lk.Username)); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if got := only(locked(t, d), lk.Username, free.Username); len(got) != 0 {
		t.Errorf("LockedUsers after Unlock = %v, want neither %s nor %s", contactNames(got), lk.Username, free.Username)
	}
}

func testLockedUsersExpired(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	spec, dn := newUser(t, b.Backend, "luexp")
	dur := b.ShortLockout(t, dn)
	lockedAt := time.Now()
	b.LockOut(t, dn)
	got := only(locked(t, d), spec.Username)
	if time.Since(lockedAt) < dur-time.Second && len(got) != 1 {
		t.Fatalf("LockedUsers within the lockout = %v, want %s", contactNames(got), spec.Username)
	}
	waitLockExpired(t, d, spec.Username, lockedAt, dur)
	if got := only(locked(t, d), spec.Username); len(got) != 0 {
		t.Errorf("LockedUsers lists %s, whose lockout has expired", spec.Username)
	}
}

// waitLockExpired waits until the lockout of username, started at lockedAt
// for dur, has expired by the directory's own reckoning (FindUser). It does
// not bind: a good bind would clear the stale lock time.
func waitLockExpired(t *testing.T, d directory.Directory, username string, lockedAt time.Time, dur time.Duration) {
	t.Helper()
	deadline := time.Now().Add(dur + 10*time.Second)
	time.Sleep(time.Until(lockedAt.Add(dur)))
	for mustFind(t, d, username).Locked {
		if time.Now().After(deadline) {
			t.Fatalf("%s still locked %v after a %v lockout", username, time.Since(lockedAt), dur)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testLoginForms(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx := ctxT(t)
	p, dn := addPerson(t, b, "login", Person{UserSpec: UserSpec{DisplayName: "Login Person", Mail: b.UniqueName("lmail") + "@example.test"}})
	principal := p.Mail
	if b.UPNSuffix != "" {
		principal = p.Username + b.UPNSuffix
	}
	domain := b.NetBIOSDomain
	if domain == "" {
		domain = "ANYDOMAIN"
	}
	for _, login := range []string{p.Username, principal, strings.ToUpper(principal), domain + `\` + p.Username,
		strings.ToLower(domain) + `\` + strings.ToUpper(p.Username)} {
		u, err := d.Authenticate(ctx, login, p.Password)
		if err != nil || !sameDN(u.DN, dn) || u.Username != p.Username {
			t.Errorf("Authenticate(%q) = %s %s, %v; want %s", login, u.Username, u.DN, err, dn)
		}
	}
	if _, err := d.Authenticate(ctx, principal, "Wrong#Pass9z"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("Authenticate(%q, wrong password) = %v, want ErrInvalidCredentials", principal, err)
	}
	if _, err := d.Authenticate(ctx, domain+`\`+p.Username, ""); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("Authenticate(DOMAIN\\user, empty password) = %v, want ErrInvalidCredentials", err)
	}
	notFound := []string{`\` + p.Username, domain + `\`, domain + `\\` + p.Username, domain + `\` + principal,
		"@" + p.Username, p.Username + "@", b.UniqueName("ghost") + "@example.test", domain + `\` + b.UniqueName("ghost"),
		"*@example.test", domain + `\*`, p.Username + "\x00@x"}
	if b.NetBIOSDomain != "" {
		notFound = append(notFound, "NOT"+b.NetBIOSDomain+`\`+p.Username)
	}
	if b.UPNSuffix != "" {
		notFound = append(notFound, p.Mail) // AD: user@domain is the UPN, not the mail
	}
	for _, login := range notFound {
		if u, err := d.Authenticate(ctx, login, p.Password); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("Authenticate(%q) = %s, %v; want ErrNotFound", login, u.DN, err)
		}
	}
	if b.UPNSuffix == "" {
		// Mail is not unique: a shared one names nobody.
		shared := b.UniqueName("shared") + "@example.test"
		s1, _ := addPerson(t, b, "lsh", Person{UserSpec: UserSpec{Mail: shared}})
		addPerson(t, b, "lsh", Person{UserSpec: UserSpec{Mail: shared}})
		if _, err := d.Authenticate(ctx, shared, s1.Password); !errors.Is(err, directory.ErrAmbiguous) {
			t.Errorf("Authenticate(a mail two users have) = %v, want ErrAmbiguous", err)
		}
	}
	if b.SpecialCharUsernames {
		// A username that looks like user@domain names its owner, even when
		// it is another user's mail.
		owner, odn := addPerson(t, b, "", Person{UserSpec: UserSpec{Username: b.UniqueName("at") + "@example.test"}})
		addPerson(t, b, "atmail", Person{UserSpec: UserSpec{Mail: owner.Username}})
		if u, err := d.Authenticate(ctx, owner.Username, owner.Password); err != nil || !sameDN(u.DN, odn) {
			t.Errorf("Authenticate(%q), a username = %s, %v; want %s", owner.Username, u.DN, err, odn)
		}
	}
}

func testAdminCancelled(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := d.SearchUsers(ctx, "anyone", 10); err == nil || errors.Is(err, directory.ErrInvalidInput) {
		t.Errorf("SearchUsers with a cancelled context: %v, want an unavailable error", err)
	}
	if _, err := d.GroupMembers(ctx, "anygroup"); err == nil || errors.Is(err, directory.ErrNotFound) {
		t.Errorf("GroupMembers with a cancelled context: %v, want an unavailable error", err)
	}
	if _, err := d.UsersUnder(ctx, b.BaseDN); err == nil {
		t.Errorf("UsersUnder with a cancelled context: no error")
	}
	if _, err := d.LockedUsers(ctx); err == nil {
		t.Errorf("LockedUsers with a cancelled context: no error")
	}
	if _, err := d.Authenticate(ctx, "anyone@example.test", "x"); err == nil || errors.Is(err, directory.ErrNotFound) {
		t.Errorf("Authenticate with a cancelled context: %v, want an unavailable error", err)
	}
}
