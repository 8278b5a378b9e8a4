package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/gateway"
)

// Ports of the two slapd instances of TestDirectoryFailoverDuringResets
// (the lab's own slapd has 3389 and 3636).
const firstPort, secondPort = 3637, 3638

// TestDirectoryFailoverDuringResets runs the SMS reset path against two
// OpenLDAP servers with the same data (two slapd processes on one
// database), directory.urls = [first, second]. Under a load of RESETs the
// first server is killed (SIGKILL), later started again. Every RESET either
// queues a password, which then binds (must-change), or is answered with
// the "try again" reply; nothing else. Once the first server is back, the
// directory's connections return to it (established TCP connections to each
// server are counted in /proc/net/tcp) and leave the second. FallbackTTL is
// 2 s here instead of the product's 30 s, so that the return happens within
// the test.
func TestDirectoryFailoverDuringResets(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	first := lab.StartInstance(t, firstPort)
	second := lab.StartInstance(t, secondPort)
	const fallbackTTL = 2 * time.Second
	h := newHarnessOpt(t, lab, directory.Options{FallbackTTL: fallbackTTL}, func(c *directory.Config, s *gateway.Settings) {
		c.URLs = []string{first.LDAPSURL, second.LDAPSURL}
		c.Timeout = 2 * time.Second
		s.MaxResetsPerHour = 100000
	})
	tryLater := h.text("sms.try_later", nil)

	const users = 6
	type user struct{ name, dn, phone string }
	var us []user
	for i := range users {
		phone := fmt.Sprintf("+120155502%02d", i)
		name, dn, _ := h.user(phone, "en")
		us = append(us, user{name, dn, phone})
	}

	var done, retry, other atomic.Int64
	var phase atomic.Value // which part of the test a RESET ran in
	phase.Store("both up")
	perPhase := sync.Map{} // phase → *[2]atomic.Int64 (done, try again)
	count := func(i int) {
		p, _ := perPhase.LoadOrStore(phase.Load(), new([2]atomic.Int64))
		p.(*[2]atomic.Int64)[i].Add(1)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r, _ := h.sms(u.phone, "RESET")
				if r.status != 200 || len(r.texts) > 1 {
					other.Add(1)
					t.Errorf("RESET from %s: status %d %s", u.phone, r.status, r.body)
					continue
				}
				switch {
				case len(r.texts) == 1 && r.texts[0] == tryLater:
					retry.Add(1)
					count(1)
				case len(r.texts) == 0:
					text, pw := h.textedMessage(r, u.phone)
					if !strings.HasPrefix(text, "ReplyReset: new password for "+u.name) {
						t.Errorf("RESET of %s queued %q", u.name, text)
					}
					// A password queued: it must be in force.
					if err := lab.BindErr(u.dn, pw); !mustChange(err) {
						t.Errorf("RESET of %s answered with a password that does not bind: %v", u.name, err)
					}
					done.Add(1)
					count(0)
				default:
					other.Add(1)
					t.Errorf("RESET of %s: unexpected reply %q", u.name, r.texts)
				}
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	time.Sleep(time.Second)
	if n := established(t, firstPort); n == 0 {
		t.Fatalf("both servers up, but no connection to the first one (second: %d)", established(t, secondPort))
	}
	phase.Store("first killed")
	killed := time.Now()
	first.Stop()
	waitFor(t, 10*time.Second, "resets succeed on the second server", func() bool { return established(t, secondPort) > 0 })
	time.Sleep(2 * time.Second)
	phase.Store("first back")
	first.Start(t)
	back := time.Now()
	waitFor(t, 10*fallbackTTL, "connections return to the first server", func() bool {
		return established(t, firstPort) > 0 && established(t, secondPort) == 0
	})
	returned := time.Since(back)
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()

	perPhase.Range(func(k, v any) bool {
		c := v.(*[2]atomic.Int64)
		t.Logf("%-13s %4d RESETs done (password binds), %3d answered try again", k, c[0].Load(), c[1].Load())
		return true
	})
	t.Logf("first server killed %v into the load; after its restart, traffic was back on it within %v (FallbackTTL %v)",
		time.Second, returned.Round(time.Millisecond), fallbackTTL)
	t.Logf("total: %d done, %d try again, %d other; the test ran %v after the kill", done.Load(), retry.Load(), other.Load(),
		time.Since(killed).Round(time.Millisecond))
	if done.Load() == 0 || other.Load() != 0 {
		t.Errorf("%d RESETs done, %d with another answer", done.Load(), other.Load())
	}
}

// mustChange reports whether a bind failed only because the password must
// be changed (ppolicy pwdReset), as it must right after a reset.
func mustChange(err error) bool {
	be, ok := err.(*ldaplab.BindError)
	return ok && be.Outcome() == "must-change"
}

// established counts the established TCP connections whose local port is
// port, that is, the connections a server on port holds (this test binary
// has its own network namespace under make test).
func established(t *testing.T, port int) int {
	t.Helper()
	n := 0
	hexPort := fmt.Sprintf(":%04X", port)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; st 01 is ESTABLISHED
			if len(fields) > 3 && strings.HasSuffix(fields[1], hexPort) && fields[3] == "01" {
				n++
			}
		}
		f.Close()
	}
	return n
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
