package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Every benchmark records its figures here; TestMain prints them as one
// table when the run ends, and with REPLYRESET_BENCH_RECORD=FILE (make
// bench) writes the table, with the machine it ran on, between the
// markers of FILE (bench/README.md).

// Figure order in the table.
const (
	secReset = iota
	secHelp
	secStatus
	secLockout
	secRSS
	// The HA figures (issue 17) go to a second table: etcd against bbolt.
	secHAReset
	secHANodes
	secHACost
	secFailover
)

// haTable is the first section of the second table.
const haTable = secHAReset

type figure struct {
	sec                            int
	what, dir, gateway, raw, ratio string
}

var figures struct {
	sync.Mutex
	rows []figure
}

func record(f figure) {
	figures.Lock()
	defer figures.Unlock()
	figures.rows = append(figures.rows, f)
}

func ratio(gw, raw float64) string {
	if raw == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", gw/raw)
}

// writeTable writes the recorded figures as a Markdown table, headed by
// the machine and the date. It writes nothing when none were recorded.
func writeTable(w io.Writer, short bool) {
	figures.Lock()
	rows := slices.Clone(figures.rows)
	figures.Unlock()
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b figure) int { return a.sec - b.sec })
	mode := "make bench"
	if short {
		mode = "short run (-short, as make test runs it): fixtures too small for the figures to mean anything"
	}
	fmt.Fprintf(w, "ReplyReset benchmarks, %s, %s\n", mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Machine: %s\n\n", machine())
	single := rows[:0:0]
	var ha []figure
	for _, r := range rows {
		if r.sec >= haTable {
			ha = append(ha, r)
		} else {
			single = append(single, r)
		}
	}
	writeRows(w, "| Figure | Directory | ReplyReset | Raw directory work | ReplyReset ÷ raw |", single)
	if len(single) > 0 && len(ha) > 0 {
		fmt.Fprintln(w)
	}
	writeRows(w, "| High availability (issue 17) | Directory | etcd store | bbolt store | etcd ÷ bbolt |", ha)
}

func writeRows(w io.Writer, header string, rows []figure) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.what, or(r.dir, "-"), r.gateway, or(r.raw, "-"), or(r.ratio, "-"))
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// machine describes where the run happened: CPUs, CPU model, memory, Go.
func machine() string {
	model, mem := "unknown CPU", "unknown memory"
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		model = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb float64
		if _, err := fmt.Sscanf(v, "%f kB", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return fmt.Sprintf("nproc %d, %s, %s RAM, %s %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// procField is the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

const (
	beginMarker = "<!-- bench:begin (written by make bench) -->"
	endMarker   = "<!-- bench:end -->"
)

// recordTable puts table between the markers of the file at path.
func recordTable(path string, table []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, rest, ok1 := bytes.Cut(doc, []byte(beginMarker))
	_, after, ok2 := bytes.Cut(rest, []byte(endMarker))
	if !ok1 || !ok2 {
		return fmt.Errorf("%s lacks the markers %q and %q", path, beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(before)
	out.WriteString(beginMarker + "\n")
	out.Write(table)
	out.WriteString(endMarker)
	out.Write(after)
	return os.WriteFile(path, out.Bytes(), 0o644)
}
