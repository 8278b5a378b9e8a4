package directorytest

import (
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
