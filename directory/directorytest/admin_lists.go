package directorytest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// The admin-queries suite, part two: the lists (group members, the users
// under a container, the locked users).

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
