package directorytest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// LockoutDirectory is what the lockout suite drives: the directory, its
// lockout scanner and its admin-group lookups.
type LockoutDirectory interface {
	directory.Directory
	directory.LockoutScanner
	directory.AdminDirectory
	IsAdmin(ctx context.Context, username string) (bool, error)
}

// LockoutBackend adapts one directory server to the lockout suite.
type LockoutBackend struct {
	Backend
	// Scanner returns the implementation under test, bound as the service
	// account, with directory.admin_group set to adminGroup ("" for none),
	// closed on t.Cleanup.
	Scanner func(t *testing.T, adminGroup string) LockoutDirectory
	// AdminGroupDN is the fixture admin group; AdminUsername is a user with a
	// mail address that is a member of it only through a nested group.
	AdminGroupDN  string
	AdminUsername string
	// AddGroup creates a static group with the given member DNs (at least
	// one) and returns its DN; AddMember adds a member later (for cycles).
	AddGroup  func(t *testing.T, name string, memberDNs ...string) string
	AddMember func(t *testing.T, groupDN, memberDN string)
	// ShortLockout makes lockouts of the user at dn expire quickly, until
	// the test ends, and returns the lockout duration.
	ShortLockout func(t *testing.T, dn string) time.Duration
}

// RunLockout runs the lockout scanner and admin-group suite against b.
// The subtests lock accounts and must not run in parallel with other
// lockout tests on the same server (they count events exactly).
func RunLockout(t *testing.T, b LockoutBackend) {
	t.Run("FullSweep", func(t *testing.T) { testFullSweep(t, b) })
	t.Run("Incremental", func(t *testing.T) { testIncremental(t, b) })
	t.Run("UnlockedNotReported", func(t *testing.T) { testUnlockedNotReported(t, b) })
	t.Run("ExpiredNotReported", func(t *testing.T) { testExpiredNotReported(t, b) })
	t.Run("UnusableCursor", func(t *testing.T) { testUnusableCursor(t, b) })
	t.Run("AdminContacts", func(t *testing.T) { testAdminContacts(t, b) })
	t.Run("AdminGroupCycle", func(t *testing.T) { testAdminGroupCycle(t, b) })
	t.Run("NoAdminGroup", func(t *testing.T) { testNoAdminGroup(t, b) })
	t.Run("Cancelled", func(t *testing.T) { testScanCancelled(t, b) })
}

func scan(t *testing.T, d LockoutDirectory, cursor []byte, full bool) ([]directory.LockoutEvent, []byte, directory.ScanStats) {
	t.Helper()
	ev, next, st, err := d.ScanLockouts(ctxT(t), cursor, full)
	if err != nil {
		t.Fatalf("ScanLockouts(full=%v): %v", full, err)
	}
	if len(next) == 0 {
		t.Fatalf("ScanLockouts(full=%v) returned no cursor", full)
	}
	if st.EntriesRead < len(ev) {
		t.Errorf("ScanLockouts: %d events from %d entries read", len(ev), st.EntriesRead)
	}
	for _, e := range ev {
		if !e.User.Locked || e.LockedAt.IsZero() || e.User.DN == "" {
			t.Errorf("event %+v: want a locked user with a DN and a lock time", e)
		}
	}
	return ev, next, st
}

// eventsFor returns the events about username.
func eventsFor(ev []directory.LockoutEvent, username string) []directory.LockoutEvent {
	var out []directory.LockoutEvent
	for _, e := range ev {
		if e.User.Username == username {
			out = append(out, e)
		}
	}
	return out
}

func usernames(ev []directory.LockoutEvent) []string {
	var out []string
	for _, e := range ev {
		out = append(out, e.User.Username)
	}
	return out
}

// checkEventUser compares an event's User with FindUser's.
func checkEventUser(t *testing.T, d LockoutDirectory, e directory.LockoutEvent) {
	t.Helper()
	want := mustFind(t, d, e.User.Username)
	got := e.User
	if !sameDN(got.DN, want.DN) || got.Username != want.Username || got.DisplayName != want.DisplayName ||
		got.Mail != want.Mail || got.Mobile != want.Mobile || got.Locked != want.Locked ||
		!got.LockoutTime.Equal(want.LockoutTime) || got.MustChange != want.MustChange || got.Disabled != want.Disabled {
		t.Errorf("event user = %+v\nFindUser     = %+v", got, want)
	}
}

// lockedBetween locks dn and returns the interval in which it locked, widened
// to whole seconds (ppolicy's lock time has a resolution of one second).
func lockedBetween(t *testing.T, b LockoutBackend, dn string) (from, to time.Time) {
	t.Helper()
	from = time.Now().Truncate(time.Second).Add(-time.Second)
	b.LockOut(t, dn)
	return from, time.Now().Add(2 * time.Second)
}

func testFullSweep(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, "")
	locked, ldn := newUser(t, b.Backend, "lksweep")
	from, to := lockedBetween(t, b, ldn)
	free, _ := newUser(t, b.Backend, "lkfree")

	ev, cur, st := scan(t, d, nil, false)
	if !st.Full {
		t.Errorf("a nil cursor gave an incremental scan, want a full sweep")
	}
	got := eventsFor(ev, locked.Username)
	if len(got) != 1 {
		t.Fatalf("full sweep: %d events for locked user %s, want 1 (events for %v)", len(got), locked.Username, usernames(ev))
	}
	if at := got[0].LockedAt; at.Before(from) || at.After(to) {
		t.Errorf("LockedAt = %v, want between %v and %v", at, from, to)
	}
	checkEventUser(t, d, got[0])
	if len(eventsFor(ev, free.Username)) != 0 {
		t.Errorf("full sweep reported the unlocked user %s", free.Username)
	}
	// full=true sweeps whatever the cursor.
	ev, _, st = scan(t, d, cur, true)
	if !st.Full || len(eventsFor(ev, locked.Username)) != 1 {
		t.Errorf("full=true with a cursor: Full=%v, events %v; want a sweep that reports %s", st.Full, usernames(ev), locked.Username)
	}
}

func testIncremental(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, "")
	spec, dn := newUser(t, b.Backend, "lkinc")
	_, cur, _ := scan(t, d, nil, false)

	from, to := lockedBetween(t, b, dn)
	ev, cur, st := scan(t, d, cur, false)
	if st.Full {
		t.Errorf("a scan with a cursor was a full sweep")
	}
	if len(ev) != 1 || ev[0].User.Username != spec.Username {
		t.Fatalf("incremental scan after one lockout: events %v, want exactly [%s]", usernames(ev), spec.Username)
	}
	if at := ev[0].LockedAt; at.Before(from) || at.After(to) {
		t.Errorf("LockedAt = %v, want between %v and %v", at, from, to)
	}
	checkEventUser(t, d, ev[0])

	// Nothing changed: nothing read.
	ev, cur, st = scan(t, d, cur, false)
	if len(ev) != 0 || st.EntriesRead != 0 || st.Full {
		t.Fatalf("no-change scan: events %v, %d entries read, full=%v; want none, 0, false", usernames(ev), st.EntriesRead, st.Full)
	}
	// A change that is not a lockout: still nothing read.
	other, otherDN := newUser(t, b.Backend, "lkother")
	if got, err := b.RawBind(otherDN, "Wrong#Pass9z"); got != BindInvalid {
		t.Fatalf("bad bind as %s: %v (%v)", other.Username, got, err)
	}
	ev, cur, st = scan(t, d, cur, false)
	if len(ev) != 0 || st.EntriesRead != 0 {
		t.Fatalf("scan after an unrelated change: events %v, %d entries read; want none, 0", usernames(ev), st.EntriesRead)
	}
	// The cursor outlives the client (the monitor restarts).
	d2 := b.Scanner(t, "")
	ev, _, st = scan(t, d2, cur, false)
	if len(ev) != 0 || st.EntriesRead != 0 || st.Full {
		t.Fatalf("no-change scan by a new client: events %v, %d entries read, full=%v", usernames(ev), st.EntriesRead, st.Full)
	}
	// A second lockout is reported by the new client too.
	spec2, dn2 := newUser(t, b.Backend, "lkinc2")
	b.LockOut(t, dn2)
	ev, _, _ = scan(t, d2, cur, false)
	if len(ev) != 1 || ev[0].User.Username != spec2.Username {
		t.Fatalf("incremental scan after a second lockout: events %v, want exactly [%s]", usernames(ev), spec2.Username)
	}
}

func testUnlockedNotReported(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, "")
	unlocked, udn := newUser(t, b.Backend, "lkunl")
	failing, fdn := newUser(t, b.Backend, "lkfail")
	_, cur, _ := scan(t, d, nil, false)

	b.LockOut(t, udn)
	if err := d.Unlock(ctxT(t), mustFind(t, d, unlocked.Username)); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	for i := 0; i < 3; i++ { // below the threshold
		if got, err := b.RawBind(fdn, "Wrong#Pass9z"); got != BindInvalid {
			t.Fatalf("bad bind as %s: %v (%v)", failing.Username, got, err)
		}
	}
	for _, full := range []bool{false, true} {
		ev, _, _ := scan(t, d, cur, full)
		for _, name := range []string{unlocked.Username, failing.Username} {
			if len(eventsFor(ev, name)) != 0 {
				t.Errorf("scan (full=%v) reported %s, which is not locked", full, name)
			}
		}
	}
}

func testExpiredNotReported(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, "")
	spec, dn := newUser(t, b.Backend, "lkexp")
	dur := b.ShortLockout(t, dn)
	_, cur, _ := scan(t, d, nil, false)

	lockedAt := time.Now()
	b.LockOut(t, dn)
	ev, _, _ := scan(t, d, cur, false)
	if time.Since(lockedAt) < dur-time.Second && len(eventsFor(ev, spec.Username)) != 1 {
		t.Fatalf("scan within the lockout: events %v, want %s", usernames(ev), spec.Username)
	}
	// Wait until the lockout has expired by the directory's own reckoning.
	// No bind: a good bind would clear the stale lock time this is about.
	deadline := time.Now().Add(dur + 10*time.Second)
	time.Sleep(dur)
	for mustFind(t, d, spec.Username).Locked {
		if time.Now().After(deadline) {
			t.Fatalf("%s still locked %v after a %v lockout", spec.Username, time.Since(lockedAt), dur)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// From the cursor taken before the lockout, and in a full sweep.
	for _, full := range []bool{false, true} {
		ev, _, st := scan(t, d, cur, full)
		if len(eventsFor(ev, spec.Username)) != 0 {
			t.Errorf("scan (full=%v) reported %s, whose lockout has expired", full, spec.Username)
		}
		t.Logf("scan (full=%v) after expiry: %d entries read, %d events", full, st.EntriesRead, len(ev))
	}
}

func testUnusableCursor(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, "")
	spec, dn := newUser(t, b.Backend, "lkcur")
	b.LockOut(t, dn)
	for _, cur := range [][]byte{[]byte("garbage"), []byte(`{"v":99}`), []byte(`{}`)} {
		ev, _, st := scan(t, d, cur, false)
		if !st.Full || len(eventsFor(ev, spec.Username)) != 1 {
			t.Errorf("cursor %q: Full=%v, events %v; want a full sweep reporting %s", cur, st.Full, usernames(ev), spec.Username)
		}
	}
}

func contactNames(users []directory.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Username)
	}
	return out
}

func testAdminContacts(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, b.AdminGroupDN)
	ctx := ctxT(t)
	plain, _ := newUser(t, b.Backend, "notadmin")
	users, err := d.AdminContacts(ctx)
	if err != nil {
		t.Fatalf("AdminContacts: %v", err)
	}
	names := contactNames(users)
	if !slices.Contains(names, b.AdminUsername) {
		t.Fatalf("AdminContacts = %v, want %s (a member through a nested group)", names, b.AdminUsername)
	}
	if slices.Contains(names, plain.Username) {
		t.Errorf("AdminContacts = %v, includes the non-member %s", names, plain.Username)
	}
	for _, u := range users {
		if u.Mail == "" || u.DN == "" {
			t.Errorf("AdminContacts: %+v has no mail or DN", u)
		}
	}
	for name, want := range map[string]bool{b.AdminUsername: true, plain.Username: false} {
		if got, err := d.IsAdmin(ctx, name); err != nil || got != want {
			t.Errorf("IsAdmin(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	if got, err := d.IsAdmin(ctx, b.UniqueName("ghost")); got || !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("IsAdmin(unknown) = %v, %v; want false, ErrNotFound", got, err)
	}
	// An admin group that does not exist is an error, not "no admins".
	missing := b.Scanner(t, "cn=no-such-group-"+b.UniqueName("g")+","+dnParent(b.AdminGroupDN))
	if users, err := missing.AdminContacts(ctx); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("AdminContacts with a missing group = %v, %v; want ErrNotFound", contactNames(users), err)
	}
	if got, err := missing.IsAdmin(ctx, b.AdminUsername); got || err == nil {
		t.Errorf("IsAdmin with a missing group = %v, %v; want false and an error", got, err)
	}
}

// dnParent drops the first RDN of dn.
func dnParent(dn string) string {
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',':
			return dn[i+1:]
		}
	}
	return ""
}

func testAdminGroupCycle(t *testing.T, b LockoutBackend) {
	a, adn := newUser(t, b.Backend, "cyca")
	bb, bdn := newUser(t, b.Backend, "cycb")
	nomail := UserSpec{Username: b.UniqueName("cycc"), Password: initialPassword, DisplayName: "No Mail"}
	cdn := b.AddUser(t, nomail)
	outsider, _ := newUser(t, b.Backend, "cycd")
	g2 := b.AddGroup(t, b.UniqueName("g2"), bdn, cdn)
	g1 := b.AddGroup(t, b.UniqueName("g1"), g2, adn)
	b.AddMember(t, g2, g1) // g1 > g2 > g1 ...

	d := b.Scanner(t, g1)
	ctx := ctxT(t)
	users, err := d.AdminContacts(ctx)
	if err != nil {
		t.Fatalf("AdminContacts: %v", err)
	}
	want := []string{a.Username, bb.Username}
	slices.Sort(want)
	if got := contactNames(users); !slices.Equal(got, want) {
		t.Errorf("AdminContacts = %v, want %v (members with a mail, through a cycle)", got, want)
	}
	for name, want := range map[string]bool{a.Username: true, bb.Username: true, nomail.Username: true, outsider.Username: false} {
		if got, err := d.IsAdmin(ctx, name); err != nil || got != want {
			t.Errorf("IsAdmin(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}

func testNoAdminGroup(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, "")
	users, err := d.AdminContacts(ctxT(t))
	if err != nil || len(users) != 0 {
		t.Errorf("AdminContacts without admin_group = %v, %v; want none, nil", contactNames(users), err)
	}
	if got, err := d.IsAdmin(ctxT(t), b.AdminUsername); got || err != nil {
		t.Errorf("IsAdmin without admin_group = %v, %v; want false, nil", got, err)
	}
}

func testScanCancelled(t *testing.T, b LockoutBackend) {
	d := b.Scanner(t, b.AdminGroupDN)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cur := []byte("keep-me")
	_, next, _, err := d.ScanLockouts(ctx, cur, false)
	if err == nil {
		t.Fatalf("ScanLockouts with a cancelled context: no error")
	}
	if string(next) != string(cur) {
		t.Errorf("ScanLockouts failed and returned cursor %q, want the caller's %q", next, cur)
	}
	if _, err := d.AdminContacts(ctx); err == nil {
		t.Errorf("AdminContacts with a cancelled context: no error")
	}
	if _, err := d.IsAdmin(ctx, b.AdminUsername); err == nil {
		t.Errorf("IsAdmin with a cancelled context: no error")
	}
}
