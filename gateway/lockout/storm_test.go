package lockout_test

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

func lockMany(e *watchEnv, prefix string, n int, at time.Time) []string {
	var names []string
	for i := range n {
		u := fmt.Sprintf("%s%02d", prefix, i)
		e.phones++
		e.enroll(u, fmt.Sprintf("+1201555%04d", 1000+e.phones), "en", enroll.StateActive)
		e.scan.lock(u, at.Add(time.Duration(i)*time.Second))
		names = append(names, u)
	}
	return names
}

func (e *watchEnv) textCount(users []string) int {
	n := 0
	for _, u := range users {
		n += len(e.texts(u))
	}
	return n
}

// TestLockoutStorm: 12 accounts locked together with a threshold of 10
// give one mail to each admin listing them, no text; lockouts during the
// storm are held back too; once the window is quiet, texts resume.
func TestLockoutStorm(t *testing.T) {
	e := newWatchEnv(t)
	w := e.watch()
	e.poll(w)
	start := e.clock.Now()
	users := lockMany(e, "s", 12, start.Add(-20*time.Second))
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(users); n != 0 {
		t.Fatalf("%d texts during a storm, want none", n)
	}
	mails := e.mailer.mails()
	if len(mails) != 2 {
		t.Fatalf("%d admin mails, want 2 (one per distinct admin address): %+v", len(mails), mails)
	}
	to := []string{mails[0].To, mails[1].To}
	slices.Sort(to)
	if !slices.Equal(to, []string{"Tier 2 <TIER2@example.test>", "helpdesk@example.test"}) {
		t.Errorf("mails went to %q", to)
	}
	m := mails[0]
	if !strings.Contains(m.Subject, "12 accounts") || !strings.Contains(m.Subject, "5 minutes") {
		t.Errorf("subject = %q", m.Subject)
	}
	for _, u := range users {
		line := u + " (User " + strings.ToUpper(u) + "), "
		if !strings.Contains(m.Text, line) || !strings.Contains(m.HTML, "<li>"+line) {
			t.Errorf("the mail does not list %s", u)
		}
	}
	e.wantAudit("lockout_storm", "", "started", 1)
	e.wantAudit("lockout_storm_mail", "", "ok", 1)
	if n := len(e.audit("lockout_storm_suppressed", "")); n != 12 {
		t.Errorf("%d lockout_storm_suppressed events, want 12", n)
	}

	// Three minutes on, another lockout: held back, no second mail.
	late := e.clock.Advance(3 * time.Minute)
	lateUsers := lockMany(e, "late", 1, late.Add(-time.Second))
	e.poll(w)
	if n := e.textCount(lateUsers); n != 0 {
		t.Errorf("a lockout during the storm was texted")
	}
	if n := len(e.mailer.mails()); n != 2 {
		t.Errorf("%d admin mails after a later lockout, want still 2", n)
	}
	e.wantAudit("lockout_storm_suppressed", lateUsers[0], "suppressed", 1)

	// Quiet for the window since the last lockout: the storm is over.
	e.clock.Advance(4*time.Minute + 58*time.Second)
	e.poll(w)
	e.wantAudit("lockout_storm_ended", "", "ok", 0)
	e.clock.Advance(2 * time.Second)
	e.poll(w)
	e.wantAudit("lockout_storm_ended", "", "ok", 1)
	after := lockMany(e, "after", 1, e.clock.Now())
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(after); n != 1 {
		t.Fatalf("%d texts after the storm, want 1", n)
	}
	if n := e.textCount(users); n != 0 {
		t.Errorf("held-back lockouts were texted after the storm")
	}
}

// TestLockoutStormAcrossPolls: the threshold counts lockouts within the
// window across scans; the one that crosses it starts the storm.
func TestLockoutStormAcrossPolls(t *testing.T) {
	e := newWatchEnv(t)
	w := e.watch()
	e.poll(w)
	t0 := e.clock.Now()
	first := lockMany(e, "a", 10, t0)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(first); n != 10 {
		t.Fatalf("%d texts for 10 lockouts (threshold 10), want 10", n)
	}
	e.wantAudit("lockout_storm", "", "started", 0)
	// Outside the window of the first: no storm.
	e.clock.Advance(5 * time.Minute)
	outside := lockMany(e, "b", 1, e.clock.Now().Add(-time.Second))
	e.poll(w)
	if n := e.textCount(outside); n != 1 {
		t.Fatalf("a lockout more than a window after the others: %d texts, want 1", n)
	}
	// Ten more within the window of that one: the tenth crosses the threshold.
	e.clock.Advance(time.Minute)
	second := lockMany(e, "c", 10, e.clock.Now().Add(-15*time.Second))
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := e.textCount(second); n != 0 {
		t.Errorf("%d texts for lockouts of the scan that started the storm, want 0", n)
	}
	e.wantAudit("lockout_storm", "", "started", 1)
	mails := e.mailer.mails()
	if len(mails) != 2 || !strings.Contains(mails[0].Subject, "11 accounts") || !strings.Contains(mails[0].Text, outside[0]) {
		t.Fatalf("mails = %+v, want 2 listing 11 accounts", mails)
	}
}

// TestLockoutStormSurvivesRestart: a restart during a storm neither texts
// the lockouts that follow nor mails the admins again.
func TestLockoutStormSurvivesRestart(t *testing.T) {
	e := newWatchEnv(t)
	w := e.watch()
	lockMany(e, "s", 11, e.clock.Now().Add(-time.Minute))
	e.poll(w)
	e.wantAudit("lockout_storm", "", "started", 1)
	e.reopen()
	w = e.watch()
	e.clock.Advance(time.Minute)
	more := lockMany(e, "m", 2, e.clock.Now().Add(-time.Second))
	e.poll(w)
	if n := e.textCount(more); n != 0 {
		t.Errorf("%d texts after a restart during a storm, want 0", n)
	}
	if n := len(e.mailer.mails()); n != 2 {
		t.Errorf("%d admin mails, want 2 (one storm)", n)
	}
	e.wantAudit("lockout_storm", "", "started", 1)
}

// TestLockoutStormMailRetries: an admin the relay refused is mailed at
// the next poll, the others are not mailed twice; with mail off the storm
// is audited as such.
func TestLockoutStormMailRetries(t *testing.T) {
	e := newWatchEnv(t)
	refuse := atomic.Bool{}
	refuse.Store(true)
	e.mailer.fail = func(to string) bool { return refuse.Load() && strings.Contains(to, "helpdesk") }
	w := e.watch()
	lockMany(e, "s", 11, e.clock.Now().Add(-time.Minute))
	e.poll(w)
	if n := len(e.mailer.mails()); n != 1 {
		t.Fatalf("%d mails sent, want 1 (the other refused)", n)
	}
	e.wantAudit("lockout_storm_mail", "", "ok", 0)
	refuse.Store(false)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	mails := e.mailer.mails()
	if len(mails) != 2 || mails[1].To != "helpdesk@example.test" {
		t.Fatalf("mails = %d (%+v), want the refused admin mailed once more", len(mails), mails)
	}
	e.wantAudit("lockout_storm_mail", "", "ok", 1)
	e.clock.Advance(30 * time.Second)
	e.poll(w)
	if n := len(e.mailer.mails()); n != 2 {
		t.Errorf("%d mails after the mail went out, want 2", n)
	}

	off := newWatchEnv(t)
	off.noMail = true
	w = off.watch()
	users := lockMany(off, "s", 11, off.clock.Now().Add(-time.Minute))
	off.poll(w)
	off.wantAudit("lockout_storm_mail", "", "mail_off", 1)
	if n := off.textCount(users); n != 0 {
		t.Errorf("%d texts in a storm with mail off, want 0", n)
	}
}
