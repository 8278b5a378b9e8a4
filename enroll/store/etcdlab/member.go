package etcdlab

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Member is one etcd server of a Cluster, for fault tests.
type Member struct {
	Name      string // m0, m1, ...
	ClientURL string // http(s)://127.0.0.1:port
	PeerURL   string // http://127.0.0.1:port

	c       *Cluster
	args    []string // the command, the same on every restart
	logPath string   // stdout and stderr of every run, appended

	mu     sync.Mutex
	proc   *process
	paused bool // by Pause, until Resume
	killed bool // by Kill, until Restart
}

// Member returns member i (0-based).
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Members returns every member.
func (c *Cluster) Members() []*Member { return append([]*Member(nil), c.members...) }

func (m *Member) spawn() error {
	p, err := startProcess(m.logPath, m.args...)
	if err != nil {
		return fmt.Errorf("etcdlab: start etcd member %s: %w", m.Name, err)
	}
	m.mu.Lock()
	m.proc, m.paused, m.killed = p, false, false
	m.mu.Unlock()
	return nil
}

func (m *Member) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// exitErr returns why the member is not running, nil while it runs.
func (m *Member) exitErr() error {
	p := m.current()
	if p == nil || !p.exited() {
		return nil
	}
	tail := fileTail(m.logPath, 3000)
	err := fmt.Errorf("etcdlab: etcd member %s exited (%v); its log (%s) ends with:\n%s", m.Name, p.waitErr, m.logPath, tail)
	if strings.Contains(tail, "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// health asks the member's /health endpoint, which answers true when the
// member has a leader and serves a linearizable read.
func (m *Member) health() error {
	resp, err := m.c.httpClient().Get(m.ClientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("%s/health: %s: %q", m.ClientURL, resp.Status, body)
	}
	if h.Health != "true" {
		return fmt.Errorf("%s/health: %s (%s)", m.ClientURL, h.Health, h.Reason)
	}
	return nil
}

func (c *Cluster) httpClient() *http.Client {
	c.httpOnce.Do(func() {
		c.httpc = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: c.TLSConfig(), DisableKeepAlives: true,
		}}
	})
	return c.httpc
}

// Kill ends the member with SIGKILL (a crash: no graceful stop).
func (m *Member) Kill() {
	if p := m.current(); p != nil {
		p.kill()
	}
	m.mu.Lock()
	m.killed = true
	m.mu.Unlock()
}

// down reports whether the member was killed or paused on purpose.
func (m *Member) down() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.killed || m.paused
}

// Pause stops the member with SIGSTOP: it holds its connections but answers
// nothing, as a hung or partitioned server would.
func (m *Member) Pause() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.signal(syscall.SIGSTOP)
		m.paused = true
	}
}

// Resume continues a paused member (SIGCONT).
func (m *Member) Resume() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.signal(syscall.SIGCONT)
		m.paused = false
	}
}

// Restart kills the member if it runs, starts it again with the same command
// and data dir, and waits until it answers healthy (which needs a quorum).
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	m.Resume()
	m.Kill()
	if err := m.spawn(); err != nil {
		t.Fatal(err)
	}
	if err := m.waitHealthy(); err != nil {
		t.Fatal(err)
	}
}

// waitHealthy waits until the member answers healthy.
func (m *Member) waitHealthy() error {
	m.mu.Lock()
	paused := m.paused
	m.mu.Unlock()
	if paused {
		return fmt.Errorf("etcdlab: etcd member %s is paused: Resume it first", m.Name)
	}
	if m.current() == nil {
		return fmt.Errorf("etcdlab: etcd member %s was never started", m.Name)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		if err := m.exitErr(); err != nil {
			return err
		}
		err := m.health()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdlab: etcd member %s not healthy after %v (last probe: %v); its log (%s) ends with:\n%s",
				m.Name, startTimeout, err, m.logPath, fileTail(m.logPath, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitHealthy waits until every member that is not killed or paused answers
// healthy (so, after a fault, until the others have elected a leader),
// failing t when they are not a majority or not healthy in time.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	var up []*Member
	for _, m := range c.members {
		if !m.down() {
			up = append(up, m)
		}
	}
	if len(up) <= len(c.members)/2 {
		t.Fatalf("etcdlab: WaitHealthy: only %d of %d members run (the others are killed or paused): no quorum to wait for",
			len(up), len(c.members))
	}
	for _, m := range up {
		if err := m.waitHealthy(); err != nil {
			t.Fatal(err)
		}
	}
}

// stop kills the member, resuming it first if paused.
func (m *Member) stop() {
	m.Resume()
	m.Kill()
}
