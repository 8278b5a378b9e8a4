package notify

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrDemoMailNotFound: no mail with that number in the demo mailbox.
var ErrDemoMailNotFound = errors.New("demo mailbox: no such mail")

// DemoMailbox is the demo's mail server: it keeps every mail in memory
// (the newest 500) for the mail outbox page. It implements Mailer.
type DemoMailbox struct {
	mu    sync.Mutex
	mails []DemoMail
	next  int
	now   func() time.Time
}

// DemoMail is one mail kept by the DemoMailbox.
type DemoMail struct {
	ID   int
	Time time.Time
	Mail
}

// NewDemoMailbox returns an empty mailbox.
func NewDemoMailbox(now func() time.Time) *DemoMailbox {
	if now == nil {
		now = time.Now
	}
	return &DemoMailbox{now: now}
}

// Send keeps m.
func (b *DemoMailbox) Send(ctx context.Context, m Mail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	b.mails = append(b.mails, DemoMail{ID: b.next, Time: b.now(), Mail: m})
	if len(b.mails) > 500 {
		b.mails = b.mails[len(b.mails)-500:]
	}
	return nil
}

// Mails returns the mails, newest first.
func (b *DemoMailbox) Mails() []DemoMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.mails)
	slices.Reverse(out)
	return out
}

// Mail returns the mail with id.
func (b *DemoMailbox) Mail(id int) (DemoMail, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.mails {
		if m.ID == id {
			return m, nil
		}
	}
	return DemoMail{}, ErrDemoMailNotFound
}
