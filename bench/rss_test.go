package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// BenchmarkIdleRSS builds the real binary, serves against Samba AD and
// reads the resident memory of the idle process.
func BenchmarkIdleRSS(b *testing.B) {
	lab := ldaplab.Samba(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "replyreset")
	build := exec.Command("go", "build", "-o", bin, "../cmd/replyreset")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pwFile := filepath.Join(dir, "bind.pw")
	if err := os.WriteFile(pwFile, []byte(lab.ServicePassword+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen: %q
public_url: "https://reset.example.test"
data_dir: %q
directory:
  dialect: ad
  urls: [%q]
  ca_file: %q
  bind_dn: %q
  bind_password_file: %q
  base_dn: %q
sms:
  provider: twilio
  twilio: {account_sid: "AC%032d", auth_token: "benchtoken0123456789abcdef0123456", from: "+12015550000"}
`, addr, filepath.Join(dir, "data"), lab.LDAPSURL, lab.CAFile, lab.ServiceDN, pwFile, lab.BaseDN, 0)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "-config", cfgPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("serve did not become healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Duration(size(5, 1)) * time.Second) // let start-up garbage be collected
	rss, hwm := procMem(b, cmd.Process.Pid)
	record(figure{sec: secRSS, what: "Idle memory of serve (healthy), VmRSS (peak VmHWM)", dir: "Samba AD",
		gateway: fmt.Sprintf("%.1f MB (%.1f MB)", rss, hwm)})
	b.ReportMetric(rss, "idle-RSS-MB")
}

// procMem reads VmRSS and VmHWM (MB) of pid.
func procMem(b *testing.B, pid int) (rss, hwm float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
