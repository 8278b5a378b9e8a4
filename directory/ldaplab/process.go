package ldaplab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a server running in its own process group.
type process struct {
	name    string
	cmd     *exec.Cmd
	outPath string        // the server's stdout and stderr
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// startProcess starts a server whose output goes to outPath. The server gets
// its own process group (so kill reaches anything it forks) and SIGKILL when
// this process dies.
func startProcess(name, outPath string, args ...string) (*process, error) {
	path, err := lookTool(args[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(path, args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := Spawn(cmd); err != nil {
		return nil, fmt.Errorf("ldaplab: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, outPath: outPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// The parent-death signal fires when the OS thread that forked the child
// exits, not the process (golang/go#27505). Go threads normally live for
// ever, but a goroutine that exits while locked to its thread takes the
// thread with it. So every server is forked from one goroutine locked to a
// thread that never exits.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

// Spawn starts cmd (cmd.Start) from that thread, so that a Pdeathsig in
// cmd.SysProcAttr fires when the test process dies and not before. For the
// other labs' servers too (enroll/store/etcdlab).
func Spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive the servers
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.err
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the server's whole process group and waits for it. The servers
// hold only throwaway data, so there is no point in a graceful stop (SIGTERM
// costs Samba and slapd 1-2 s each).
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// tail returns the end of the server's output, for error messages.
func (p *process) tail() string {
	return fileTail(p.outPath, 3000)
}

func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	if len(bytes.TrimSpace(b)) == 0 {
		return "(no output)"
	}
	return string(b)
}

// waitReady polls probe every 100 ms until it succeeds, the process exits or
// the timeout passes.
func (p *process) waitReady(timeout time.Duration, probe func() error) error {
	died := func() error {
		<-p.done
		return fmt.Errorf("ldaplab: %s exited during start-up (%v); its output ends with:\n%s", p.name, p.waitErr, p.tail())
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := probe()
		if err == nil {
			// A probe can reach a leftover server on the same port while ours
			// died on "address in use": make sure ours is still there.
			if p.exited() || !processAlive(p.cmd.Process.Pid) {
				return died()
			}
			return nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("ldaplab: %s not ready after %v (last probe: %v); its output ends with:\n%s",
				p.name, timeout, err, p.tail())
		}
		select {
		case <-p.done:
			return died()
		case <-tick.C:
		}
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// checkPortsFree fails when another process already listens on one of the
// server's ports in this network namespace.
func checkPortsFree(server string, ports ...int) error {
	for _, port := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("ldaplab: %s needs %s, which is not free (%v). Another directory server runs in this "+
				"network namespace: run the tests through `make test`, which gives every test binary its own network "+
				"namespace (go test -exec scripts/netns-exec.sh), or stop the other server", server, addr, err)
		}
		_ = l.Close()
	}
	return nil
}

// run runs a set-up command and returns its output tail on failure.
func run(timeout time.Duration, args ...string) (string, error) {
	path, err := lookTool(args[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		return string(out), fmt.Errorf("ldaplab: %s: %v; output:\n%s", strings.Join(args[:min(len(args), 3)], " "), err, tail)
	}
	return string(out), nil
}
