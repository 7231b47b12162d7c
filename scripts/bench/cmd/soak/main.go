// Command soak runs a dev node (bin/alknet serve --dev, loopback) under a mixed load for a
// while — calls, subscriptions, aborts, deadlines, reconnects over QUIC and TCP+TLS — and prints
// the node's RSS, goroutines and open file descriptors every interval. At the end, with the load
// stopped, they must be back near the values measured after the warm-up; otherwise it exits 1.
//
//	soak [--duration 10m] [--interval 30s] [--workers 16] [--bin bin/alknet]
//
// `make soak DURATION=10m` builds the node and runs it. Not part of `make test`.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alkdev/alknet/scripts/bench/internal/procstat"

	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long the load runs")
	interval := flag.Duration("interval", 30*time.Second, "how often to print the node's resources")
	workers := flag.Int("workers", 16, "concurrent clients")
	bin := flag.String("bin", "bin/alknet", "the alknet binary")
	flag.Parse()
	if err := run(*bin, *duration, *interval, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// devNode is the dev node under test.
type devNode struct {
	cmd                        *exec.Cmd
	fp, quic, tcp, metricsAddr string
}

func startNode(bin string) (*devNode, error) {
	dir, err := os.MkdirTemp("", "alknet-soak")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--state-dir", dir, "--log-level", "warn", "serve", "--dev",
		"--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &devNode{cmd: cmd}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "fingerprint":
			n.fp = v
		case "quic":
			n.quic = v
		case "tcp":
			n.tcp = v
		case "metrics":
			n.metricsAddr = v
		}
		if n.metricsAddr != "" {
			break
		}
	}
	if n.metricsAddr == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("the node printed no metrics line")
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return n, nil
}

type sample struct {
	rssMiB     float64
	goroutines int
	fds        int
}

func (n *devNode) sample() (sample, error) {
	var s sample
	pid := n.cmd.Process.Pid
	m, err := procstat.Read(pid)
	if err != nil {
		return s, err
	}
	s.rssMiB = m.RSS
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	resp, err := http.Get(n.metricsAddr)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			s.goroutines = int(f)
		}
	}
	return s, sc.Err()
}

// stats counts the load's outcomes.
type stats struct {
	calls, subs, aborts, deadlines, reconnects, failures atomic.Int64
}

func run(bin string, duration, interval time.Duration, workers int) error {
	n, err := startNode(bin)
	if err != nil {
		return err
	}
	defer func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		_ = n.cmd.Wait()
	}()
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var st stats
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load(ctx, n, w, &st)
		}()
	}
	start := time.Now()
	var baseline *sample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	fmt.Printf("%8s %9s %10s %5s %9s %7s %7s %9s %10s %8s\n", "elapsed", "rss_MiB", "goroutines", "fds", "calls", "subs", "aborts", "deadlines", "reconnects", "failures")
	print := func(s sample) {
		fmt.Printf("%8s %9.1f %10d %5d %9d %7d %7d %9d %10d %8d\n", time.Since(start).Round(time.Second), s.rssMiB, s.goroutines, s.fds,
			st.calls.Load(), st.subs.Load(), st.aborts.Load(), st.deadlines.Load(), st.reconnects.Load(), st.failures.Load())
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			s, err := n.sample()
			if err != nil {
				return err
			}
			print(s)
			if baseline == nil {
				baseline = &s // after the warm-up interval
			}
		}
	}
	wg.Wait()
	// The load has stopped: connections close and idle workers exit (1 s); give them a moment.
	time.Sleep(5 * time.Second)
	end, err := n.sample()
	if err != nil {
		return err
	}
	print(end)
	if baseline == nil {
		baseline = &end
	}
	fmt.Printf("after the load: RSS %.1f MiB (%.1f under load after warm-up), %d goroutines (%d), %d fds (%d)\n",
		end.rssMiB, baseline.rssMiB, end.goroutines, baseline.goroutines, end.fds, baseline.fds)
	var problems []string
	if end.goroutines > baseline.goroutines+50 {
		problems = append(problems, fmt.Sprintf("goroutines grew from %d to %d", baseline.goroutines, end.goroutines))
	}
	if end.fds > baseline.fds+20 {
		problems = append(problems, fmt.Sprintf("file descriptors grew from %d to %d", baseline.fds, end.fds))
	}
	if end.rssMiB > 2*baseline.rssMiB+64 {
		problems = append(problems, fmt.Sprintf("RSS grew from %.1f to %.1f MiB", baseline.rssMiB, end.rssMiB))
	}
	if f := st.failures.Load(); f > 0 {
		problems = append(problems, fmt.Sprintf("%d operations failed unexpectedly", f))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Println("soak: ok")
	return nil
}

// load runs one client until ctx ends: a connection for 50–200 operations, then a new one.
func load(ctx context.Context, n *devNode, w int, st *stats) {
	rng := rand.New(rand.NewPCG(uint64(w), 42))
	for ctx.Err() == nil {
		tr, addr := "quic", n.quic
		if rng.IntN(2) == 0 {
			tr, addr = "tcp", n.tcp
		}
		transport := conn.TransportQUIC
		if tr == "tcp" {
			transport = conn.TransportTCPTLS
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cc, err := node.DialAddr(dctx, addr, n.fp, node.DialOptions{Transport: transport})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				st.failures.Add(1)
			}
			continue
		}
		st.reconnects.Add(1)
		for range 50 + rng.IntN(150) {
			if ctx.Err() != nil {
				break
			}
			operation(ctx, cc, rng, st)
		}
		_ = cc.Close()
	}
}

// operation runs one randomly chosen operation and checks its outcome.
func operation(ctx context.Context, c *call.Conn, rng *rand.Rand, st *stats) {
	fail := func(what string, err error) {
		if ctx.Err() == nil {
			st.failures.Add(1)
			fmt.Fprintf(os.Stderr, "soak: %s: %v\n", what, err)
		}
	}
	switch k := rng.IntN(10); {
	case k < 5: // a call with its answer checked
		a := rng.IntN(1000)
		out, err := c.Call(ctx, "demo/add", json.RawMessage(fmt.Sprintf(`{"a":%d,"b":1}`, a)))
		var v struct{ Sum int }
		if err != nil || json.Unmarshal(out, &v) != nil || v.Sum != a+1 {
			fail("demo/add", err)
			return
		}
		st.calls.Add(1)
	case k < 7: // a subscription read to its end
		sub, err := c.Subscribe(ctx, "demo/ticker", json.RawMessage(`{"count":20,"interval_ms":1}`))
		if err != nil {
			fail("demo/ticker", err)
			return
		}
		for i := 0; ; i++ {
			if _, err := sub.Recv(); err != nil {
				if !errors.Is(err, io.EOF) || i != 20 {
					fail("demo/ticker items", err)
				}
				break
			}
		}
		st.subs.Add(1)
	case k < 9: // an abort of a blocked composition or an endless subscription
		actx, cancel := context.WithCancel(ctx)
		time.AfterFunc(time.Duration(rng.IntN(20))*time.Millisecond, cancel)
		var err error
		if k == 7 {
			_, err = c.Call(actx, "demo/compose", json.RawMessage(`{"depth":3,"block":true}`))
		} else {
			var sub *call.Subscription
			if sub, err = c.Subscribe(actx, "demo/ticker", json.RawMessage(`{"count":0,"interval_ms":1}`)); err == nil {
				for err == nil {
					_, err = sub.Recv()
				}
			}
		}
		cancel()
		if !errors.Is(err, context.Canceled) && !errors.Is(err, call.ErrAborted) {
			fail("abort", err)
			return
		}
		st.aborts.Add(1)
	default: // a deadline that passes first
		_, err := c.Call(ctx, "demo/sleep", json.RawMessage(`{"ms":200}`), call.WithTimeout(time.Duration(5+rng.IntN(20))*time.Millisecond))
		if !errors.Is(err, call.ErrTimeout) {
			fail("deadline", err)
			return
		}
		st.deadlines.Add(1)
	}
}
