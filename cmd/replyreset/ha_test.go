package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
)

// TestHA (issue 17): two real `replyreset serve` processes on one etcd
// store prefix (ha_lab_test.go), faults injected into the nodes (SIGKILL,
// SIGSTOP/SIGCONT) and into the etcd cluster (members killed). Each
// subtest asserts on what the fake Twilio received (texts per user and
// kind) and on the audit trail; the lab is restored between subtests.
func TestHA(t *testing.T) {
	t0 := time.Now()
	l := newHALab(t)
	defer func() { t.Logf("TestHA: %v in all", time.Since(t0).Round(time.Millisecond)) }()

	for _, st := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"KillLeader", l.testKillLeader},
		{"PauseLeader", l.testPauseLeader},
		{"PauseLeaderMidSend", l.testPauseLeaderMidSend},
		{"OneMemberDown", l.testOneMemberDown},
		{"QuorumLost", l.testQuorumLost},
		{"SameSidBothNodes", l.testSameSidBothNodes},
	} {
		t.Run(st.name, func(t *testing.T) {
			l.restore(t)
			st.run(t)
		})
	}
}

// SIGKILL the leader: the survivor leads within the election TTL and
// texts a lockout made afterwards exactly once.
func (l *haLab) testKillLeader(t *testing.T) {
	u := l.newUser(t, "hak")
	lead, _ := l.waitLeader(t, -1)
	l.kill(lead)
	killed := time.Now()
	_, took := l.waitLeader(t, 1-lead)
	t.Logf("node %s SIGKILLed; node %s leads %v later", l.nodes[lead].name, l.nodes[1-lead].name, took)
	l.ad.LockOut(t, u.dn)
	t.Logf("lockout texted %v after the bad binds, %v after the kill", l.waitTexts(t, u.phone, "lockout", 1),
		time.Since(killed).Round(time.Millisecond))
	l.waitSettled(t, u.phone)
	l.wantOneLockout(t, u)
}

// SIGSTOP the leader past its TTL: the other takes over; a lockout
// made while nobody leads and one made after the takeover are each
// texted once, also once the old leader is continued (its woken
// timers meet a fence, not the directory and Twilio).
func (l *haLab) testPauseLeader(t *testing.T) {
	u1, u2 := l.newUser(t, "hap"), l.newUser(t, "hap")
	seq := l.lastSeq(t)
	lead, _ := l.waitLeader(t, -1)
	l.pause(lead)
	l.ad.LockOut(t, u1.dn) // during the TTL: nobody acts on it yet
	_, took := l.waitLeader(t, 1-lead)
	t.Logf("node %s SIGSTOPped; node %s leads %v later", l.nodes[lead].name, l.nodes[1-lead].name, took)
	l.ad.LockOut(t, u2.dn)
	l.waitTexts(t, u1.phone, "lockout", 1)
	l.waitTexts(t, u2.phone, "lockout", 1)
	l.resume(lead)
	t.Logf("node %s SIGCONTed: says it follows %v later", l.nodes[lead].name, l.waitFollower(t, lead))
	l.waitSettled(t, u1.phone, u2.phone)
	l.wantOneLockout(t, u1)
	l.wantOneLockout(t, u2)
	l.wantNoDuplicateAudit(t, seq)
	t.Logf("old leader's log: %d lines mention a fence", strings.Count(strings.ToLower(l.log(lead)), "fence"))
}

// SIGSTOP the leader between Twilio accepting a lockout text and the
// node recording it sent; SIGCONT it after the failover: the lockout
// is still texted exactly once.
func (l *haLab) testPauseLeaderMidSend(t *testing.T) {
	u := l.newUser(t, "ham")
	lead, _ := l.waitLeader(t, -1)
	stopped := make(chan struct{})
	var once sync.Once
	l.twilio.OnMessage(func(r twiliotest.Resource) {
		if r.To == u.phone && l.kind(r.Body) == "lockout" {
			once.Do(func() {
				l.pause(lead) // before the answer reaches it
				close(stopped)
			})
		}
	})
	defer l.twilio.OnMessage(nil)
	l.ad.LockOut(t, u.dn)
	select {
	case <-stopped:
	case <-time.After(haWait):
		t.Fatalf("no lockout text for %s within %v", u.name, haWait)
	}
	_, took := l.waitLeader(t, 1-lead)
	t.Logf("node %s SIGSTOPped with the lockout text accepted but not recorded; node %s leads %v later",
		l.nodes[lead].name, l.nodes[1-lead].name, took)
	// The new leader's outbox takes up the message whose claim ran out
	// (another attempt, or an end without resending), then the old
	// leader is continued.
	t0 := time.Now()
	for {
		var m enroll.OutboundMessage
		for _, c := range l.messages(t, u.phone) {
			if c.Purpose == "lockout" {
				m = c
			}
		}
		if m.Attempts > 1 || !m.Pending() {
			t.Logf("the new leader took up lockout message %d %v after the takeover: %s, %d attempts",
				m.ID, time.Since(t0).Round(time.Millisecond), m.Status, m.Attempts)
			break
		}
		if time.Since(t0) > haWait {
			t.Errorf("the new leader left lockout message %d as the old one claimed it for %v: %s, %d attempts", m.ID, haWait, m.Status, m.Attempts)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.resume(lead)
	t.Logf("node %s SIGCONTed: says it follows %v later", l.nodes[lead].name, l.waitFollower(t, lead))
	l.waitSettled(t, u.phone)
	for _, m := range l.messages(t, u.phone) {
		t.Logf("outbox: message %d %s %s, %d attempts, provider id %q", m.ID, m.Purpose, m.Status, m.Attempts, m.ProviderID)
	}
	l.wantOneLockout(t, u)
}

// One etcd member killed, a follower of the raft group and then (after
// its restart) the raft leader: RESET and STATUS on both nodes answer as
// usual.
func (l *haLab) testOneMemberDown(t *testing.T) {
	u := l.newUser(t, "ham1")
	resets := 0
	for _, which := range []string{"follower", "raft leader"} {
		m := l.raftLeader(t)
		if which == "follower" {
			m = (m + 1) % 3
		}
		member := l.cluster.Member(m)
		member.Kill()
		t.Logf("etcd member %s (%s) killed", member.Name, which)
		for i := range l.nodes {
			t0 := time.Now()
			status, texts, err := l.sms(t.Context(), i, "", u.phone, "RESET")
			resetTook := time.Since(t0)
			if err != nil || status != http.StatusOK || len(texts) != 0 {
				t.Errorf("%s down: RESET on node %s: %d %q %v; want 200 and no reply (the password by the outbox)",
					which, l.nodes[i].name, status, texts, err)
			} else {
				resets++
			}
			t0 = time.Now()
			status, texts, err = l.sms(t.Context(), i, "", u.phone, "STATUS")
			if err != nil || status != http.StatusOK || len(texts) != 1 || !strings.Contains(texts[0], u.name) {
				t.Errorf("%s down: STATUS on node %s: %d %q %v; want the account's status", which, l.nodes[i].name, status, texts, err)
			}
			statusTook := time.Since(t0)
			if p := getPage(t, l.nodes[i].addr, "/", "en"); p.code != http.StatusOK {
				t.Errorf("%s down: start page on node %s: %d", which, l.nodes[i].name, p.code)
			}
			t.Logf("%s down, node %s: RESET answered in %v, STATUS in %v", which, l.nodes[i].name,
				resetTook.Round(time.Millisecond), statusTook.Round(time.Millisecond))
		}
		l.waitTexts(t, u.phone, "password", resets)
		member.Restart(t)
		l.cluster.WaitHealthy(t)
	}
	l.waitSettled(t, u.phone)
	if got := l.texts(u.phone)["password"]; got != resets {
		t.Errorf("%d RESETs answered, %d password texts at Twilio", resets, got)
	}
}

// Two etcd members killed: both nodes refuse work clearly; with the
// members back both recover without a restart and one leads.
func (l *haLab) testQuorumLost(t *testing.T) {
	u := l.newUser(t, "haq")
	pages, err := templates.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	l.cluster.Member(0).Kill()
	l.cluster.Member(1).Kill()
	t0 := time.Now()
	for i, n := range l.nodes {
		waitStatus(t, n.addr, "/", http.StatusServiceUnavailable)
		t.Logf("node %s answers 503 %v after the second member died", n.name, time.Since(t0).Round(time.Millisecond))
		if p := getPage(t, n.addr, "/", "en"); p.code != http.StatusServiceUnavailable ||
			!strings.Contains(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, pages.Text("en", "err.store.text", nil)) {
			t.Errorf("node %s start page without quorum: %d %v\n%s", n.name, p.code, p.header, p.body)
		}
		if p := getPage(t, n.addr, "/api/v1/enrollments", "en"); p.code != http.StatusServiceUnavailable ||
			!strings.Contains(p.header.Get("Content-Type"), "application/json") || !json.Valid([]byte(p.body)) ||
			!strings.Contains(p.body, `"store_unavailable"`) {
			t.Errorf("node %s API without quorum: %d %v\n%s", n.name, p.code, p.header, p.body)
		}
		status, texts, err := l.sms(t.Context(), i, "", u.phone, "RESET")
		if want := l.catalog.Text("en", "sms.store_down", nil); err != nil || status != http.StatusOK || len(texts) != 1 || texts[0] != want {
			t.Errorf("node %s RESET without quorum: %d %q %v; want %q", n.name, status, texts, err, want)
		}
	}
	t0 = time.Now()
	l.cluster.Member(0).Restart(t)
	l.cluster.Member(1).Restart(t)
	l.cluster.WaitHealthy(t)
	t.Logf("etcd quorum back %v after the restarts began", time.Since(t0).Round(time.Millisecond))
	for _, n := range l.nodes {
		waitStatus(t, n.addr, "/", http.StatusOK)
		t.Logf("node %s answers 200 %v after the restarts began (no node restart)", n.name, time.Since(t0).Round(time.Millisecond))
	}
	lead, _ := l.waitLeader(t, -1)
	t.Logf("node %s leads %v after the restarts began", l.nodes[lead].name, time.Since(t0).Round(time.Millisecond))
	for i, n := range l.nodes {
		if status, texts, err := l.sms(t.Context(), i, "", u.phone, "STATUS"); err != nil || status != http.StatusOK ||
			len(texts) != 1 || !strings.Contains(texts[0], u.name) {
			t.Errorf("node %s STATUS once recovered: %d %q %v", n.name, status, texts, err)
		}
	}
	if n := l.texts(u.phone); n["password"] != 0 || n["store_down"] != 0 {
		t.Errorf("texts to %s: %v; want no password (nothing was done without quorum)", u.name, n)
	}
}

// The same signed webhook (one MessageSid) posted to both nodes at the
// same moment is acted on once: one password text and one reset event
// per RESET, one STATUS reply per STATUS.
func (l *haLab) testSameSidBothNodes(t *testing.T) {
	u := l.newUser(t, "has")
	const rounds = 5
	both := func(body string) [2][]string {
		sid := l.newSID()
		var got [2][]string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range l.nodes {
			wg.Go(func() {
				<-start
				status, texts, err := l.sms(t.Context(), i, sid, u.phone, body)
				if err != nil || status != http.StatusOK {
					t.Errorf("%s %s on node %s: %d %v", body, sid, l.nodes[i].name, status, err)
				}
				got[i] = texts
			})
		}
		close(start)
		wg.Wait()
		return got
	}
	seq := l.lastSeq(t)
	for range rounds {
		if got := both("RESET"); len(got[0])+len(got[1]) != 0 {
			t.Errorf("RESET to both nodes: replies %q; want none (the password goes by the outbox)", got)
		}
		got := both("STATUS")
		if n := len(got[0]) + len(got[1]); n != 1 {
			t.Errorf("STATUS with one MessageSid to both nodes: %d replies %q; want 1", n, got)
		}
	}
	l.waitTexts(t, u.phone, "password", rounds)
	l.waitSettled(t, u.phone)
	resets := 0
	for _, ev := range l.audit(t, u.name, "reset", seq) {
		if ev.Outcome == "ok" {
			resets++
		}
	}
	if n := l.texts(u.phone)["password"]; n != rounds || resets != rounds {
		t.Errorf("%d RESETs, each to both nodes: %d password texts, %d reset/ok events; want %d and %d", rounds, n, resets, rounds, rounds)
	} else {
		t.Logf("%d RESETs and %d STATUS, each posted to both nodes at once: %d password texts, %d reset/ok events", rounds, rounds, n, resets)
	}
}
