package enroll_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// A double tap on "Send verification code", or two tabs: the same number
// posted at once, many times in parallel, gets the same page every time,
// one code and one SMS.
func TestSendCodeDoubleTap(t *testing.T) {
	h := newHarness(t)
	token := h.activate("jdoe")
	const n = 8
	pages := make([]enroll.Page, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { pages[i], errs[i] = h.svc.SendCode(h.ctx, token, "(201) 555-0123", "sms") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if pages[i].Step != enroll.StepVerify || pages[i].Phone != phoneJdoe || !pages[i].ResendAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("send %d: page %+v, want the verify page of %s", i, pages[i], phoneJdoe)
		}
	}
	if ms := h.messages(); len(ms) != 1 || ms[0].Purpose != "code" {
		t.Fatalf("%d messages queued, want one code SMS: %+v", len(ms), ms)
	}
}

// cancelAfterUpdate is the data file, whose UpdateActivation cancels the
// request's context once it has written: the browser gave up on the
// request right after the send was recorded.
type cancelAfterUpdate struct {
	*bolt.Store
	cancel context.CancelFunc
}

func (s cancelAfterUpdate) UpdateActivation(ctx context.Context, hash string, fn func(*enroll.Activation) error) error {
	err := s.Store.UpdateActivation(ctx, hash, fn)
	s.cancel()
	return err
}

// The work a send starts is not bound to the request: once the send is
// recorded, the code is queued even when the request is canceled (it gave
// "enqueue code message: context canceled", a 500, and a code recorded as
// sent that never was).
func TestSendCodeOutlivesTheRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newHarness(t)
	h.svc = enroll.NewService(enroll.ServiceDeps{Store: cancelAfterUpdate{h.store, cancel}, Directory: h.users,
		Mailer: h.mailer, Mails: h.renderer, Messages: h.catalog, Sealer: h.sealer, Outbox: h.queue, Now: h.clock.Now}, h.settings)
	token := h.activate("jdoe")
	if _, err := h.svc.SendCode(ctx, token, phoneJdoe, "sms"); err != nil {
		t.Fatalf("SendCode with the request canceled after the send was recorded: %v", err)
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("the request was not canceled: the test proves nothing")
	}
	if ms := h.messages(); len(ms) != 1 || ms[0].Purpose != "code" || ms[0].To != phoneJdoe {
		t.Fatalf("queued %+v, want the code SMS", ms)
	}
	// The right code then completes, also from a request canceled halfway:
	// the enrollment and its confirmation SMS are not lost.
	ctx2, cancel2 := context.WithCancel(context.Background())
	h.svc = enroll.NewService(enroll.ServiceDeps{Store: cancelAfterUpdate{h.store, cancel2}, Directory: h.users,
		Mailer: h.mailer, Mails: h.renderer, Messages: h.catalog, Sealer: h.sealer, Outbox: h.queue, Now: h.clock.Now}, h.settings)
	if _, err := h.svc.VerifyCode(ctx2, token, h.lastCode()); err != nil {
		t.Fatalf("VerifyCode canceled halfway: %v", err)
	}
	if e, err := h.store.Enrollment(h.ctx, "jdoe"); err != nil || e.State != enroll.StateActive {
		t.Fatalf("enrollment %+v, %v", e, err)
	}
	if ms := h.messages(); len(ms) != 2 || ms[1].Purpose != "enrolled" {
		t.Fatalf("queued %+v, want the code and the confirmation", ms)
	}
}
