package etcd_test

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/enroll/store/etcdlab"
)

// slowReplies is a TCP proxy to one etcd member that can hold back what
// the member answers (never what the client sends), keeping the bytes in
// order: a write then reaches the cluster and is applied at once, while
// its answer comes too late for the client's attempt: a lost reply. The
// hold starts when the client sends the armed marker (bytes of the write
// only: the request bodies are not compressed), so that the reads before
// the write are answered.
type slowReplies struct {
	ln    net.Listener
	to    string
	delay atomic.Int64 // ns added to every answer chunk read from now on
	wg    sync.WaitGroup

	mu     sync.Mutex
	marker []byte        // armed: the hold starts when the client sends it
	hold   time.Duration // the delay it starts
}

// arm makes the proxy hold answers back by d once the client sends marker.
func (p *slowReplies) arm(marker string, d time.Duration) {
	p.mu.Lock()
	p.marker, p.hold = []byte(marker), d
	p.mu.Unlock()
}

// request copies what the client sends to up, watching for the marker.
func (p *slowReplies) request(up, c net.Conn) {
	var tail []byte // the end of the last chunk: a marker may straddle two
	b := make([]byte, 32<<10)
	for {
		n, err := c.Read(b)
		if n > 0 {
			p.mu.Lock()
			if m := p.marker; m != nil {
				seen := append(tail, b[:n]...)
				if bytes.Contains(seen, m) {
					p.delay.Store(int64(p.hold))
					p.marker = nil
				}
				tail = append([]byte(nil), seen[max(0, len(seen)-len(m)):]...)
			}
			p.mu.Unlock()
			if _, werr := up.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func newSlowReplies(t *testing.T, memberURL string) *slowReplies {
	t.Helper()
	u, err := url.Parse(memberURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowReplies{ln: ln, to: u.Host}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *slowReplies) URL() string { return "http://" + p.ln.Addr().String() }

func (p *slowReplies) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.to, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.request(up, c); up.Close() }()
		go func() { defer p.wg.Done(); p.answer(c, up); c.Close() }()
	}
}

// answer copies up's bytes to c, each chunk no earlier than the delay in
// force when it was read after it was read, and in order.
func (p *slowReplies) answer(c, up net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		var last time.Time
		for {
			b := make([]byte, 32<<10)
			n, err := up.Read(b)
			if n > 0 {
				at := time.Now().Add(time.Duration(p.delay.Load()))
				if at.Before(last) {
					at = last
				}
				last = at
				q <- chunk{b[:n], at}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at))
		if _, err := c.Write(ch.b); err != nil {
			up.Close()
			for range q {
			}
			return
		}
	}
}

// TestWriteWhoseReplyWasLost: a write reaches the cluster and is applied,
// but its answer comes after the attempt's timeout, so the store sends it
// again; the retry finds the keys changed, and must recognise its own
// earlier attempt rather than report what it sees. A new SID marked this
// way is new (and a duplicate after), an appended audit event is there
// once, a message updated with Attempts++ has one attempt more; and a SID
// another node marked first is still a duplicate.
func TestWriteWhoseReplyWasLost(t *testing.T) {
	c := etcdlab.Shared(t)
	direct := c.Client(t)
	prefix := c.Prefix(t)
	ctx := t.Context()
	proxy := newSlowReplies(t, c.Member(0).ClientURL)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.URL()}, DialTimeout: 5 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	s, err := etcd.New(ctx, cli, etcd.Options{Prefix: prefix, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	look, err := etcd.New(ctx, direct, etcd.Options{Prefix: prefix}) // what the cluster holds, not through the proxy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { look.Close() })
	id, err := s.EnqueueMessage(ctx, sms("+12015550122"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkMessage(ctx, "SMwarm", t0, time.Hour); err != nil { // the TTL lease, granted
		t.Fatal(err)
	}

	// lost runs write with answers held back 1.5 s (an attempt has 1 s)
	// from the moment the client sends marker, a part of the write, until
	// applied (read without the proxy) says the write reached the
	// cluster, and a little longer, so that the first retry's answer is
	// late too; then answers flow again and the write's retries get
	// through.
	lost := func(what, marker string, write func() error, applied func() bool) {
		t.Helper()
		proxy.arm(marker, 1500*time.Millisecond)
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- write() }()
		for !applied() {
			select {
			case err := <-done:
				proxy.delay.Store(0)
				t.Fatalf("%s returned (%v) before the cluster had applied it: the reply was not lost", what, err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		select {
		case err := <-done:
			t.Fatalf("%s returned (%v) although its reply is held back", what, err)
		default:
		}
		time.Sleep(1200 * time.Millisecond)
		proxy.delay.Store(0)
		if err := <-done; err != nil {
			t.Errorf("%s whose first reply was lost: %v", what, err)
		}
		t.Logf("%s whose first reply was lost took %v", what, time.Since(start).Round(time.Millisecond))
	}
	exists := func(key string) func() bool {
		return func() bool {
			resp, err := direct.Get(ctx, key)
			return err == nil && len(resp.Kvs) == 1
		}
	}

	var first bool
	lost("MarkMessage", "messages/SMlost", func() (err error) { first, err = s.MarkMessage(ctx, "SMlost", t0, time.Hour); return err },
		exists(prefix+"messages/SMlost"))
	if !first {
		t.Error("MarkMessage of a new SID whose reply was lost said duplicate (its own retry saw its own key)")
	}
	if again, err := s.MarkMessage(ctx, "SMlost", t0, time.Hour); err != nil || again {
		t.Errorf("MarkMessage of the same SID again = %v, %v; want false (a duplicate), nil", again, err)
	}

	// Another node marked a SID first: a retry in doubt must not take that
	// write for its own.
	if mine, err := look.MarkMessage(ctx, "SMother", t0.Add(time.Second), time.Hour); err != nil || !mine {
		t.Fatalf("MarkMessage on the other node = %v, %v", mine, err)
	}
	lost("MarkMessage of a SID another node marked", "messages/SMother", func() (err error) {
		first, err = s.MarkMessage(ctx, "SMother", t0, time.Hour)
		return err
	}, exists(prefix+"messages/SMother"))
	if first {
		t.Error("MarkMessage of a SID another node had marked said new: the retry took the other's write for its own")
	}

	var seq uint64
	lost("AppendAudit", `"action":"lost_reply"`, func() (err error) {
		seq, err = s.AppendAudit(ctx, enroll.Event{Time: t0, Actor: "system", Action: "lost_reply", Outcome: "ok"})
		return err
	}, func() bool {
		evs, err := look.Audit(ctx, enroll.AuditFilter{Action: "lost_reply"})
		return err == nil && len(evs) > 0
	})
	if evs, err := s.Audit(ctx, enroll.AuditFilter{Action: "lost_reply"}); err != nil || len(evs) != 1 || evs[0].Seq != seq {
		t.Errorf("audit = %+v, %v; want one event, seq %d", evs, err, seq)
	}

	lost("UpdateMessage", `"attempts":1`, func() error {
		return s.UpdateMessage(ctx, id, func(m *enroll.OutboundMessage) error { m.Attempts++; return nil })
	}, func() bool {
		msgs, err := look.Messages(ctx, enroll.OutboxFilter{})
		return err == nil && len(msgs) == 1 && msgs[0].Attempts > 0
	})
	if msgs, err := s.Messages(ctx, enroll.OutboxFilter{}); err != nil || len(msgs) != 1 || msgs[0].Attempts != 1 {
		t.Errorf("messages = %+v, %v; want message %d updated once (1 attempt)", msgs, err, id)
	}
}
