package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

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
