package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

func isNotFound(err error) bool { return errors.Is(err, enroll.ErrNotFound) }

func testPutGet(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	if _, err := s.Enrollment(ctx, "jdoe"); !isNotFound(err) {
		t.Fatalf("Enrollment of an unknown user: %v, want ErrNotFound", err)
	}
	want := enrollment("jdoe", phone1, enroll.StateActive)
	want.Language = "fr"
	want.Method = "voice"
	put(t, s, want)
	wantEqual(t, get(t, s, "jdoe"), want)

	// Replace: every field is the new record's.
	want2 := enrollment("jdoe", "", enroll.StatePending)
	want2.Language = "en"
	put(t, s, want2)
	wantEqual(t, get(t, s, "jdoe"), want2)
}

func testList(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	list, err := s.Enrollments(t.Context())
	if err != nil || len(list) != 0 {
		t.Fatalf("Enrollments of an empty store = %v, %v", list, err)
	}
	put(t, s, enrollment("carol", phone3, enroll.StateActive))
	put(t, s, enrollment("Alice", phone1, enroll.StateFrozen))
	put(t, s, enrollment("bob", "", enroll.StatePending))
	put(t, s, enrollment("dave", phone2, enroll.StateDeactivated))
	list, err = s.Enrollments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Username)
	}
	if want := []string{"Alice", "bob", "carol", "dave"}; !slices.Equal(names, want) {
		t.Errorf("Enrollments = %v, want %v (ordered by username, case-insensitively)", names, want)
	}
}

func testDelete(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	put(t, s, enrollment("jdoe", phone1, enroll.StateActive))
	put(t, s, enrollment("asmith", phone2, enroll.StateActive))
	if err := s.DeleteEnrollment(ctx, "jdoe"); err != nil {
		t.Fatalf("DeleteEnrollment: %v", err)
	}
	if _, err := s.Enrollment(ctx, "jdoe"); !isNotFound(err) {
		t.Errorf("Enrollment after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteEnrollment(ctx, "jdoe"); !isNotFound(err) {
		t.Errorf("second DeleteEnrollment: %v, want ErrNotFound", err)
	}
	get(t, s, "asmith") // the other one is untouched
	wantOwner(t, s, phone2, "asmith")
}

func testCaseInsensitive(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	put(t, s, enrollment("JDoe", phone1, enroll.StateActive))
	for _, name := range []string{"JDoe", "jdoe", "JDOE", "jDoE"} {
		if e := get(t, s, name); e.Username != "JDoe" {
			t.Errorf("Enrollment(%s).Username = %q, want the stored spelling JDoe", name, e.Username)
		}
	}
	// Another spelling is the same user: it replaces the record, keeps the
	// phone without ErrPhoneTaken, and the newest spelling is kept.
	e := enrollment("JDOE", phone1, enroll.StateActive)
	e.Language = "fr"
	put(t, s, e)
	list, err := s.Enrollments(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("Enrollments = %v, %v; want one record", list, err)
	}
	wantEqual(t, list[0], e)
	wantOwner(t, s, phone1, "JDOE")
	if err := s.DeleteEnrollment(ctx, "jdoe"); err != nil {
		t.Fatalf("DeleteEnrollment(jdoe): %v", err)
	}
	if _, err := s.Enrollment(ctx, "JDoe"); !isNotFound(err) {
		t.Errorf("Enrollment after delete: %v, want ErrNotFound", err)
	}
	wantOwner(t, s, phone1, "")
}

func testActiveOwns(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	wantOwner(t, s, phone1, "")
	put(t, s, enrollment("alice", phone1, enroll.StateActive))
	wantOwner(t, s, phone1, "alice")
	put(t, s, enrollment("alice", phone1, enroll.StateFrozen))
	wantOwner(t, s, phone1, "alice")
	e, err := s.EnrollmentByPhone(t.Context(), phone1)
	if err != nil || e.State != enroll.StateFrozen {
		t.Errorf("EnrollmentByPhone = %+v, %v; want the frozen record", e, err)
	}
	put(t, s, enrollment("alice", phone1, enroll.StateActive)) // same owner again: no ErrPhoneTaken
	wantOwner(t, s, phone1, "alice")
}

func testNewPhoneFreesOld(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	put(t, s, enrollment("alice", phone1, enroll.StateActive))
	put(t, s, enrollment("alice", phone2, enroll.StateActive))
	wantOwner(t, s, phone1, "")
	wantOwner(t, s, phone2, "alice")
	put(t, s, enrollment("bob", phone1, enroll.StateActive)) // the old number is free
	wantOwner(t, s, phone1, "bob")
}

func testPendingDoesNotOwn(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	put(t, s, enrollment("alice", phone1, enroll.StatePending))
	wantOwner(t, s, phone1, "")
	// A pending enrollment cannot block a verified one...
	put(t, s, enrollment("bob", phone1, enroll.StateActive))
	wantOwner(t, s, phone1, "bob")
	// ...nor be blocked while pending...
	put(t, s, enrollment("carol", phone1, enroll.StatePending))
	// ...but it cannot be verified onto an owned number.
	err := s.PutEnrollment(ctx, enrollment("alice", phone1, enroll.StateActive))
	if !errors.Is(err, enroll.ErrPhoneTaken) {
		t.Errorf("activating onto an owned number: %v, want ErrPhoneTaken", err)
	}
	if e := get(t, s, "alice"); e.State != enroll.StatePending {
		t.Errorf("alice after ErrPhoneTaken: state %s, want pending", e.State)
	}
	// Active → pending (a phone change in progress) gives the number up.
	put(t, s, enrollment("bob", phone1, enroll.StatePending))
	wantOwner(t, s, phone1, "")
	put(t, s, enrollment("alice", phone1, enroll.StateActive))
	wantOwner(t, s, phone1, "alice")
}

func testDeactivatedFrees(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	put(t, s, enrollment("alice", phone1, enroll.StateActive))
	put(t, s, enrollment("alice", phone1, enroll.StateDeactivated))
	wantOwner(t, s, phone1, "")
	if e := get(t, s, "alice"); e.Phone != phone1 {
		t.Errorf("deactivated record lost its phone: %q", e.Phone)
	}
	put(t, s, enrollment("bob", phone1, enroll.StateActive))
	wantOwner(t, s, phone1, "bob")
}

func testPhoneTaken(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	alice := enrollment("alice", phone1, enroll.StateActive)
	bob := enrollment("bob", phone2, enroll.StateActive)
	put(t, s, alice)
	put(t, s, bob)

	for _, st := range []enroll.State{enroll.StateActive, enroll.StateFrozen} {
		steal := enrollment("bob", phone1, st)
		steal.Language = "fr"
		if err := s.PutEnrollment(ctx, steal); !errors.Is(err, enroll.ErrPhoneTaken) {
			t.Errorf("bob (%s) taking alice's number: %v, want ErrPhoneTaken", st, err)
		}
		if err := s.PutEnrollment(ctx, enrollment("carol", phone1, st)); !errors.Is(err, enroll.ErrPhoneTaken) {
			t.Errorf("new carol (%s) taking alice's number: %v, want ErrPhoneTaken", st, err)
		}
	}
	wantEqual(t, get(t, s, "alice"), alice)
	wantEqual(t, get(t, s, "bob"), bob)
	wantOwner(t, s, phone1, "alice")
	wantOwner(t, s, phone2, "bob")
	if _, err := s.Enrollment(ctx, "carol"); !isNotFound(err) {
		t.Errorf("carol was stored despite ErrPhoneTaken: %v", err)
	}
}

func testDeleteFreesPhone(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	put(t, s, enrollment("alice", phone1, enroll.StateFrozen))
	if err := s.DeleteEnrollment(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, s, phone1, "")
	put(t, s, enrollment("bob", phone1, enroll.StateActive))
	wantOwner(t, s, phone1, "bob")
}

// testConcurrentClaims: of ten users claiming one phone at once (each a new
// active enrollment), exactly one gets it; the others get ErrPhoneTaken
// and are not stored, and the index names the winner.
func testConcurrentClaims(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.PutEnrollment(ctx, enrollment(fmt.Sprintf("user%d", i), phone1, enroll.StateActive))
		})
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		name := fmt.Sprintf("user%d", i)
		switch {
		case err == nil && winner == "":
			winner = name
		case err == nil:
			t.Errorf("%s and %s both got %s", winner, name, phone1)
		case !errors.Is(err, enroll.ErrPhoneTaken):
			t.Errorf("%s: %v, want nil or ErrPhoneTaken", name, err)
		default:
			if _, err := s.Enrollment(ctx, name); !isNotFound(err) {
				t.Errorf("%s was stored despite ErrPhoneTaken: %v", name, err)
			}
		}
	}
	if winner == "" {
		t.Fatal("nobody got the phone")
	}
	wantOwner(t, s, phone1, winner)
	if list, err := s.Enrollments(ctx); err != nil || len(list) != 1 {
		t.Errorf("Enrollments = %d records, %v; want the winner only", len(list), err)
	}
}

func testUpdateEnrollment(t *testing.T, open Opener) {
	s, _ := newStore(t, open)
	ctx := t.Context()
	if err := s.UpdateEnrollment(ctx, "ghost", func(*enroll.Enrollment) error { return nil }); !isNotFound(err) {
		t.Fatalf("update of an unknown user: %v, want ErrNotFound", err)
	}
	put(t, s, enrollment("jdoe", phone1, enroll.StateActive))
	put(t, s, enrollment("asmith", phone2, enroll.StateActive))

	// A change of phone moves the index, in the same write.
	err := s.UpdateEnrollment(ctx, "JDOE", func(e *enroll.Enrollment) error { e.Phone = phone3; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "jdoe"); got.Phone != phone3 {
		t.Fatalf("phone after update = %s", got.Phone)
	}
	if e, err := s.EnrollmentByPhone(ctx, phone3); err != nil || e.Username != "jdoe" {
		t.Fatalf("new phone not indexed: %+v %v", e, err)
	}
	if _, err := s.EnrollmentByPhone(ctx, phone1); !isNotFound(err) {
		t.Fatalf("old phone still indexed: %v", err)
	}

	// Refusals change nothing: fn's error, a taken phone, a new username.
	before := get(t, s, "jdoe")
	boom := errors.New("boom")
	for name, fn := range map[string]func(*enroll.Enrollment) error{
		"fn error":    func(e *enroll.Enrollment) error { e.Language = "xx"; return boom },
		"phone taken": func(e *enroll.Enrollment) error { e.Phone = phone2; return nil },
		"username":    func(e *enroll.Enrollment) error { e.Username = "other"; return nil },
		"nil":         nil,
	} {
		err := s.UpdateEnrollment(ctx, "jdoe", fn)
		switch name {
		case "fn error":
			if !errors.Is(err, boom) {
				t.Errorf("%s: %v", name, err)
			}
		case "phone taken":
			if !errors.Is(err, enroll.ErrPhoneTaken) {
				t.Errorf("%s: %v", name, err)
			}
		default:
			if !errors.Is(err, enroll.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		wantEqual(t, get(t, s, "jdoe"), before)
	}

	// Read-modify-write is atomic: 50 concurrent increments all count.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			if err := s.UpdateEnrollment(ctx, "jdoe", func(e *enroll.Enrollment) error { e.LastTOTPStep++; return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := get(t, s, "jdoe").LastTOTPStep; got != 50 {
		t.Fatalf("LastTOTPStep after 50 concurrent increments = %d", got)
	}
}
