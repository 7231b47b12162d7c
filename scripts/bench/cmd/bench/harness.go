package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/scripts/bench/contestant"
)

// settings of one harness run.
type settings struct {
	full     bool
	runs     int
	unaryMS  int
	cpuCalls int
	idle     int
	setups   int
}

type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	pin   string
	pid   int
}

func startServer(self, name string) (*server, error) {
	cmd := exec.Command(self, "server", name)
	cmd.Stderr = os.Stderr
	addr, pin, pid, stdin, err := contestant.StartReady(cmd)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", name, err)
	}
	return &server{cmd: cmd, stdin: stdin, addr: addr, pin: pin, pid: pid}, nil
}

func (s *server) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// procCPU is the user+system CPU seconds of a process (Linux /proc).
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// procRSSKiB is the resident set of a process.
func procRSSKiB(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return 0
}

func clientJob(self string, s *server, name string, args ...string) (result, error) {
	cmd := exec.Command(self, append([]string{"client", name, s.addr, s.pin}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%s %v: %w", name, args, err)
	}
	var r result
	return r, json.Unmarshal(out, &r)
}

// measurement holds every run of one case; the report uses the median.
type measurement struct {
	Contestant string    `json:"contestant"`
	Case       string    `json:"case"`
	Metric     string    `json:"metric"`
	Unit       string    `json:"unit"`
	Values     []float64 `json:"values"`
	Median     float64   `json:"median"`
	Min        float64   `json:"min"`
	Max        float64   `json:"max"`
}

type report struct {
	Date    string            `json:"date"`
	Machine string            `json:"machine"`
	Mode    string            `json:"mode"`
	Limits  map[string]string `json:"limits"`
	Results []*measurement    `json:"results"`
	Targets []target          `json:"targets"`
	index   map[string]*measurement
}

func (r *report) add(contestant, kase, metric, unit string, v float64) {
	key := contestant + "|" + kase + "|" + metric
	m := r.index[key]
	if m == nil {
		m = &measurement{Contestant: contestant, Case: kase, Metric: metric, Unit: unit}
		r.index[key] = m
		r.Results = append(r.Results, m)
	}
	m.Values = append(m.Values, v)
	s := append([]float64(nil), m.Values...)
	sort.Float64s(s)
	m.Median, m.Min, m.Max = s[len(s)/2], s[0], s[len(s)-1]
}

func (r *report) get(contestant, kase, metric string) float64 {
	if m := r.index[contestant+"|"+kase+"|"+metric]; m != nil {
		return m.Median
	}
	return 0
}

func runHarness(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	full := fs.Bool("full", false, "longer cases, ≥5 runs each (medians with min–max)")
	out := fs.String("out", "bench-results", "output directory")
	only := fs.String("only", "", "comma-separated contestants to run (default: all); rows needing others read 0 and ✗")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st := settings{runs: 1, unaryMS: 400, cpuCalls: 20000, idle: 1000, setups: 200}
	mode := "quick"
	if *full {
		st = settings{full: true, runs: 5, unaryMS: 2000, cpuCalls: 100000, idle: 1000, setups: 200}
		mode = "full"
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Mode: mode, Limits: map[string]string{}, index: map[string]*measurement{},
		Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())}
	begin := time.Now()
	names := contestant.Names()
	if *only != "" {
		names = nil
		for _, n := range strings.Split(*only, ",") {
			if _, err := contestant.Get(n); err != nil {
				return err
			}
			names = append(names, n)
		}
	}
	for _, name := range names {
		c, _ := contestant.Get(name)
		rep.Limits[name] = c.Limits
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		if contestant.IsIroh(name) {
			if err := runIroh(self, name, st, rep); err != nil {
				return err
			}
			continue
		}
		if contestant.IsAdapter(name) {
			// The adapter contestants run unary 64 B and CPU per call only (docs/performance.md, "Adapters").
			if err := runAdapter(self, name, st, rep); err != nil {
				return err
			}
			continue
		}
		if err := runContestant(self, name, st, rep); err != nil {
			return err
		}
		// 6: allocations per unary call, client + server in this process.
		allocs, bytes, err := allocsPerCall(c)
		if err != nil {
			return err
		}
		rep.add(name, "unary 64 B, in-process", "allocs_per_call", "allocs", allocs)
		rep.add(name, "unary 64 B, in-process", "bytes_per_call", "B", bytes)
	}
	rep.Targets = evaluate(rep)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "report.json"), js, 0o644); err != nil {
		return err
	}
	md := markdown(rep, time.Since(begin))
	if err := os.WriteFile(filepath.Join(*out, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

func isAlknet(name string) bool { return strings.HasPrefix(name, "alknet-") }

// isForwarding: the forwarding contestants run workloads 1, 2 and 6 only (forwarding §12).
func isForwarding(name string) bool {
	return strings.HasPrefix(name, "alknet-fwd-") || name == "grpc-proxy"
}

// hasAbortHop: the contestants of the abort-hop job (the direct alknet-quic is its baseline).
func hasAbortHop(name string) bool {
	return name == "alknet-quic" || strings.HasPrefix(name, "alknet-fwd-")
}

func runContestant(self, name string, st settings, rep *report) error {
	s, err := startServer(self, name)
	if err != nil {
		return err
	}
	defer func() { s.stop() }() // s is replaced for the idle case
	for run := 0; run < st.runs; run++ {
		// 1: unary echo.
		if err := unaryRows(self, s, name, []int{1, 16, 64, 256}, st, rep); err != nil {
			return err
		}
		if name == "alknet-quic" { // the default pools; the stream-per-call figures beside (REUSE -1)
			for _, conc := range []int{1, 64} {
				r, err := clientJob(self, s, name, "unary", "64", itoa(conc), itoa(st.unaryMS), "-1")
				if err != nil {
					return err
				}
				kase := fmt.Sprintf(perCallCase, conc)
				rep.add(name, kase, "calls_per_sec", "calls/s", r.PerSec)
				rep.add(name, kase, "p50", "µs", r.P50us)
			}
		}
		// 2: server streaming.
		r, err := clientJob(self, s, name, "stream", "10000", "1000")
		if err != nil {
			return err
		}
		rep.add(name, "stream 10,000 × 1 KiB", "msgs_per_sec", "msgs/s", r.PerSec)
		rep.add(name, "stream 10,000 × 1 KiB", "mib_per_sec", "MiB/s", r.MiBPerSec)
		if name == "alknet-quic" && contestant.IrohBuilt { // the iroh rows' baseline (iroh.md §11)
			r, err = clientJob(self, s, name, "stream", "256", "65536")
			if err != nil {
				return err
			}
			rep.add(name, bulkCase, "mib_per_sec", "MiB/s", r.MiBPerSec)
		}
		if !isForwarding(name) {
			// 3: connection setup.
			r, err = clientJob(self, s, name, "setup", itoa(st.setups))
			if err != nil {
				return err
			}
			rep.add(name, "setup: dial + first call", "p50", "µs", r.P50us)
		}
		// 6: CPU per 100k calls at concurrency 64 (server + client processes).
		cpu0 := procCPU(s.pid)
		r, err = clientJob(self, s, name, "unary", "64", "64", "3600000", "0", itoa(st.cpuCalls))
		if err != nil {
			return err
		}
		serverCPU := procCPU(s.pid) - cpu0
		rep.add(name, "cpu at c64", "cpu_s_per_100k", "CPU s", (serverCPU+r.CPUSeconds)/float64(r.Calls)*100000)
		if isAlknet(name) && !isForwarding(name) {
			// 4: composition depth 3 vs depth 1.
			d1, err := clientJob(self, s, name, "compose", "1", "300")
			if err != nil {
				return err
			}
			d3, err := clientJob(self, s, name, "compose", "3", "300")
			if err != nil {
				return err
			}
			rep.add(name, "compose depth 1", "p50", "µs", d1.P50us)
			rep.add(name, "compose depth 3", "p50", "µs", d3.P50us)
			// 5: abort cascade, depth 3, local.
			ab, err := clientJob(self, s, name, "abort", "20")
			if err != nil {
				return err
			}
			rep.add(name, "abort cascade depth 3", "p50", "µs", ab.P50us)
		}
	}
	if hasAbortHop(name) {
		// abort-hop, on a fresh server process: client abort → worker handler ctx done.
		s.stop()
		if s, err = startServer(self, name); err != nil {
			return err
		}
		for run := 0; run < st.runs; run++ {
			r, err := clientJob(self, s, name, "abort-hop", "20")
			if err != nil {
				return err
			}
			rep.add(name, "abort-hop", "p50", "µs", r.P50us)
		}
	}
	if isForwarding(name) {
		return nil
	}
	// 6: server RSS per idle connection, on a fresh server warmed by a short unary run: the
	// heap left by the cases above would otherwise decide how much the connections reuse.
	s.stop()
	if s, err = startServer(self, name); err != nil {
		return err
	}
	if _, err := clientJob(self, s, name, "unary", "64", "16", "300"); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	before := procRSSKiB(s.pid)
	cmd := exec.Command(self, "client", name, s.addr, s.pin, "idle", itoa(st.idle))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("%s: idle connections: %q", name, line)
	}
	time.Sleep(300 * time.Millisecond)
	after := procRSSKiB(s.pid)
	_ = stdin.Close()
	_ = cmd.Wait()
	rep.add(name, fmt.Sprintf("%d idle connections", st.idle), "rss_per_conn", "KiB", (after-before)/float64(st.idle))
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

const bulkCase = "bulk 256 × 64 KiB"

// perCallCase is alknet-quic's unary 64 B case under the stream-per-call strategy.
const perCallCase = "unary 64 B c%d, stream per call"

// unaryRows runs workload 1 (unary echo of 64 B and 1 KiB) at each concurrency.
func unaryRows(self string, s *server, name string, concs []int, st settings, rep *report) error {
	for _, size := range []int{64, 1024} {
		for _, conc := range concs {
			r, err := clientJob(self, s, name, "unary", itoa(size), itoa(conc), itoa(st.unaryMS))
			if err != nil {
				return err
			}
			kase := fmt.Sprintf("unary %d B c%d", size, conc)
			rep.add(name, kase, "calls_per_sec", "calls/s", r.PerSec)
			rep.add(name, kase, "p50", "µs", r.P50us)
			rep.add(name, kase, "p90", "µs", r.P90us)
			rep.add(name, kase, "p99", "µs", r.P99us)
		}
	}
	return nil
}

// runIroh runs the iroh rows (spec iroh.md §11): unary 64 B and 1 KiB at c1, c16 and c64, bulk
// 256 × 64 KiB, dial + first call (a fresh client endpoint each), CPU per 10,000 calls at c64,
// and for alknet-iroh the extra RSS of an idle iroh endpoint (an idle alknet-iroh server, which
// also serves QUIC, minus an idle alknet-quic one).
func runIroh(self, name string, st settings, rep *report) error {
	s, err := startServer(self, name)
	if err != nil {
		return err
	}
	defer func() { s.stop() }()
	for run := 0; run < st.runs; run++ {
		if err := unaryRows(self, s, name, []int{1, 16, 64}, st, rep); err != nil {
			return err
		}
		r, err := clientJob(self, s, name, "stream", "256", "65536")
		if err != nil {
			return err
		}
		rep.add(name, bulkCase, "mib_per_sec", "MiB/s", r.MiBPerSec)
		r, err = clientJob(self, s, name, "setup", itoa(st.setups/4))
		if err != nil {
			return err
		}
		rep.add(name, "setup: dial + first call", "p50", "µs", r.P50us)
		cpu0 := procCPU(s.pid)
		r, err = clientJob(self, s, name, "unary", "64", "64", "3600000", "0", "10000")
		if err != nil {
			return err
		}
		rep.add(name, "cpu at c64", "cpu_s_per_10k", "CPU s", (procCPU(s.pid)-cpu0+r.CPUSeconds)/float64(r.Calls)*10000)
	}
	if name != "alknet-iroh" {
		return nil
	}
	s.stop()
	idle := func(server string) (float64, error) {
		x, err := startServer(self, server)
		if err != nil {
			return 0, err
		}
		defer x.stop()
		if _, err := clientJob(self, x, server, "unary", "64", "1", "200"); err != nil {
			return 0, err
		}
		time.Sleep(500 * time.Millisecond)
		return procRSSKiB(x.pid), nil
	}
	for run := 0; run < st.runs; run++ {
		withIroh, err := idle("alknet-iroh")
		if err != nil {
			return err
		}
		without, err := idle("alknet-quic")
		if err != nil {
			return err
		}
		rep.add(name, "idle server", "extra_rss_per_endpoint", "MiB", (withIroh-without)/1024)
	}
	s, err = startServer(self, name) // for the deferred stop
	return err
}

// runAdapter runs workload 1 at 64 B (c1, c16, c64) and workload 6's CPU per 100k calls.
func runAdapter(self, name string, st settings, rep *report) error {
	s, err := startServer(self, name)
	if err != nil {
		return err
	}
	defer s.stop()
	for run := 0; run < st.runs; run++ {
		for _, conc := range []int{1, 16, 64} {
			r, err := clientJob(self, s, name, "unary", "64", itoa(conc), itoa(st.unaryMS))
			if err != nil {
				return err
			}
			kase := fmt.Sprintf("unary 64 B c%d", conc)
			rep.add(name, kase, "calls_per_sec", "calls/s", r.PerSec)
			rep.add(name, kase, "p50", "µs", r.P50us)
			rep.add(name, kase, "p90", "µs", r.P90us)
			rep.add(name, kase, "p99", "µs", r.P99us)
		}
		cpu0 := procCPU(s.pid)
		calls := st.cpuCalls
		if name != "alknet-http" {
			calls /= 4 // MCP's calls are several times slower: the quick run stays short
		}
		r, err := clientJob(self, s, name, "unary", "64", "64", "3600000", "0", itoa(calls))
		if err != nil {
			return err
		}
		serverCPU := procCPU(s.pid) - cpu0
		rep.add(name, "cpu at c64", "cpu_s_per_100k", "CPU s", (serverCPU+r.CPUSeconds)/float64(r.Calls)*100000)
	}
	return nil
}

// allocsPerCall runs a testing benchmark of sequential 64 B unary calls with server and client
// in this process, so allocations of both sides count.
func allocsPerCall(c contestant.Contestant) (allocs, bytes float64, err error) {
	s, err := c.Serve("127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cl, err := c.Dial(ctx, s.Addr(), s.Pin(), contestant.Options{})
	cancel()
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	payload := contestant.Payload(64)
	var callErr error
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cl.Unary(context.Background(), payload); err != nil {
				callErr = err
				b.FailNow()
			}
		}
	})
	if callErr != nil {
		return 0, 0, callErr
	}
	if r.N == 0 {
		return 0, 0, errors.New("allocation benchmark did not run")
	}
	return float64(r.AllocsPerOp()), float64(r.AllocedBytesPerOp()), nil
}
