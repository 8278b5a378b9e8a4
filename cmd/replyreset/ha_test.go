package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
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
		{"KillMidReset", l.testKillMidReset},
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

// SIGKILL a node in the middle of a RESET, after the held password
// message is written and before it is released: the leader's
// held-message recovery sends it or tells the user, and the audit says
// which. The node reaches the directory through a relay (ldapProxy) that
// holds bytes back 1 s, so that the node stops at a known point: once the
// moment etcd holds the message, its requests held back and then dropped
// (no password set: the user must be told), once the moment Samba has set
// the password, its answer held back (the password set: it must be sent).
func (l *haLab) testKillMidReset(t *testing.T) {
	type killed struct {
		name  string
		reach bool // the modify reaches the directory
		u     haUser
		held  enroll.OutboundMessage
		seq   uint64
		at    time.Time
	}
	var ks []*killed
	for i, k := range []*killed{{name: "modify dropped"}, {name: "modify done", reach: true}} {
		if i > 0 {
			l.restore(t)
		}
		lead, _ := l.waitLeader(t, -1)
		x := 1 - lead // the follower: the leader survives to recover
		k.u = l.newUser(t, "har")
		// The recovery takes a password set up to gateway.HeldClockSkew
		// (2 s) before the message for the RESET's: the account's own
		// (AddUser) must be older.
		time.Sleep(gateway.HeldClockSkew + time.Second)
		k.seq = l.lastSeq(t)
		var ok bool
		if !k.reach {
			l.proxies[x].SetDelay(time.Second, 0)
			k.held, ok = l.stopAtHeld(t, x, k.u, l.proxies[x].Drop)
		} else {
			l.proxies[x].SetDelay(0, time.Second)
			k.held, ok = l.stopAtPasswordSet(t, x, k.u)
		}
		if !ok {
			l.kill(x)
			t.Fatalf("%s: password message %d was no longer held when node %s stopped", k.name, k.held.ID, l.nodes[x].name)
		}
		l.kill(x)
		l.proxies[x].SetDelay(0, 0)
		k.at = time.Now()
		t.Logf("%s: node %s SIGKILLed with password message %d held", k.name, l.nodes[x].name, k.held.ID)
		ks = append(ks, k)
	}
	lead, _ := l.waitLeader(t, -1)
	for _, k := range ks {
		var final enroll.OutboundMessage
		for {
			for _, m := range l.messages(t, k.u.phone) {
				if m.ID == k.held.ID {
					final = m
				}
			}
			if final.Status != enroll.StatusHeld {
				break
			}
			// The recovery takes a held message once no RESET can still be
			// working on it (gateway.HeldGrace, about 80 s here), at its
			// next pass (every 30 s).
			if time.Since(k.at) > 2*haWait {
				t.Fatalf("%s: password message %d still held %v after the kill\nleader's log:\n%s",
					k.name, k.held.ID, 2*haWait, tail(l.log(lead), 3000))
			}
			time.Sleep(200 * time.Millisecond)
		}
		// A reset's password must change at next logon (one modify with
		// unicodePwd): AD's pwdLastSet is 0 once it is set.
		v, err := pwdLastSet(l.ad.AdminConn(t), k.u.dn)
		if err != nil {
			t.Fatal(err)
		}
		set := v == "0"
		t.Logf("%s: held message %d is %s %v after the kill (the password was set: %v)",
			k.name, k.held.ID, final.Status, time.Since(k.at).Round(time.Millisecond), set)
		if set != k.reach {
			t.Errorf("%s: the password was set: %v", k.name, set)
		}
		l.waitSettled(t, k.u.phone)
		texts := l.texts(k.u.phone)
		var recovered []string
		for _, ev := range l.audit(t, k.u.name, "", k.seq) {
			t.Logf("%s: audit: %s %s %s %q", k.name, ev.Actor, ev.Action, ev.Outcome, ev.Detail)
			if strings.HasPrefix(ev.Action, "reset_held_") { // enroll.ActionHeldSent, ActionHeldIncomplete, ActionHeldSuperseded
				recovered = append(recovered, ev.Action)
			}
		}
		want, wantTexts := "reset_held_incomplete", map[string]int{"enrolled": 1, "incomplete": 1}
		if set {
			want, wantTexts = "reset_held_sent", map[string]int{"enrolled": 1, "password": 1}
		}
		if len(recovered) != 1 || recovered[0] != want || !maps.Equal(texts, wantTexts) {
			t.Errorf("%s: the recovery audited %q and Twilio got %v; want [%s] and %v", k.name, recovered, texts, want, wantTexts)
		}
	}
}

// pwdLastSet reads the AD account's pwdLastSet on c.
func pwdLastSet(c *ldap.Conn, dn string) (string, error) {
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", []string{"pwdLastSet"}, nil))
	if err != nil {
		return "", err
	}
	if len(res.Entries) != 1 {
		return "", fmt.Errorf("%s: %d entries", dn, len(res.Entries))
	}
	return res.Entries[0].GetAttributeValue("pwdLastSet"), nil
}

// stopAtHeld texts RESET from u to node i and SIGSTOPs the node the moment
// etcd holds u's password message as held, then calls stopped; it returns
// the message as the outbox has it then, and false when it was already
// released.
func (l *haLab) stopAtHeld(t *testing.T, i int, u haUser, stopped func()) (enroll.OutboundMessage, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cur, err := l.cli.Get(ctx, haStorePrefix+"outbox/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	wch := l.cli.Watch(ctx, haStorePrefix+"outbox/", clientv3.WithPrefix(), clientv3.WithRev(cur.Header.Revision+1))
	got := make(chan enroll.OutboundMessage, 1)
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				var m enroll.OutboundMessage
				if ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &m) == nil &&
					m.To == u.phone && m.Status == enroll.StatusHeld {
					l.pause(i)
					stopped()
					got <- m
					return
				}
			}
		}
	}()
	reply := make(chan error, 1)
	go func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		_, _, err := l.sms(rctx, i, "", u.phone, "RESET")
		reply <- err
	}()
	select {
	case m := <-got:
		for _, now := range l.messages(t, u.phone) {
			if now.ID == m.ID {
				return now, now.Status == enroll.StatusHeld
			}
		}
		t.Fatalf("held message %d is not in the outbox", m.ID)
	case <-time.After(haWait):
		t.Fatalf("no held password message for %s within %v (RESET: %v)\nlog:\n%s", u.name, haWait, <-reply, tail(l.log(i), 3000))
	}
	return enroll.OutboundMessage{}, false
}

// stopAtPasswordSet texts RESET from u to node i and SIGSTOPs the node the
// moment Samba says u's password was set (pwdLastSet 0: must change), while
// the relay still holds Samba's answer back; it returns u's password
// message as the outbox has it then, and whether it is still held.
func (l *haLab) stopAtPasswordSet(t *testing.T, i int, u haUser) (enroll.OutboundMessage, bool) {
	t.Helper()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _, _ = l.sms(ctx, i, "", u.phone, "RESET") // cut by the kill
	}()
	c := l.ad.AdminConn(t)
	for t0 := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		v, err := pwdLastSet(c, u.dn)
		if v == "0" {
			break
		}
		if time.Since(t0) > haWait {
			t.Fatalf("the RESET of %s on node %s set no password within %v (last read: %v)\nlog:\n%s", u.name, l.nodes[i].name, haWait, err, tail(l.log(i), 3000))
		}
	}
	l.pause(i)
	for _, m := range l.messages(t, u.phone) {
		if m.Purpose == "password" {
			return m, m.Status == enroll.StatusHeld
		}
	}
	t.Fatalf("no password message for %s in the outbox once its password was set", u.name)
	return enroll.OutboundMessage{}, false
}
