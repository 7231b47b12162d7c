package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/scripts/bench/contestant"
)

// streamRuns subscriptions are timed per stream job, after one warm-up; the median counts.
const streamRuns = 5

// result is what a client process reports.
type result struct {
	Calls       int64   `json:"calls,omitempty"`
	Seconds     float64 `json:"seconds,omitempty"`
	PerSec      float64 `json:"per_sec,omitempty"`
	MiBPerSec   float64 `json:"mib_per_sec,omitempty"`
	P50us       float64 `json:"p50_us,omitempty"`
	P90us       float64 `json:"p90_us,omitempty"`
	P99us       float64 `json:"p99_us,omitempty"`
	CPUSeconds  float64 `json:"cpu_seconds,omitempty"` // of the client process
	Connections int     `json:"connections,omitempty"`
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(float64(len(d)-1)*p)].Microseconds())
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// runClient runs one workload against a running server and prints its result as JSON.
func runClient(args []string) error {
	if len(args) < 4 {
		return errors.New("usage: bench client NAME ADDR PIN JOB [ARGS]")
	}
	c, err := contestant.Get(args[0])
	if err != nil {
		return err
	}
	addr, pin, job, rest := args[1], args[2], args[3], args[4:]
	defer startProfile("client", args[0], job)()
	if pin == "-" {
		pin = ""
	}
	ctx := context.Background()
	dial := func(o contestant.Options) (contestant.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return c.Dial(dctx, addr, pin, o)
	}
	var res result
	switch job {
	case "unary": // SIZE CONCURRENCY MILLIS [REUSE] [MAXCALLS] [CAP]
		size, conc, ms := atoi(rest[0]), atoi(rest[1]), atoi(rest[2])
		o := contestant.Options{}
		if len(rest) > 3 {
			o.StreamReuse = atoi(rest[3])
		}
		maxCalls := int64(0)
		if len(rest) > 4 {
			maxCalls = int64(atoi(rest[4]))
		}
		if len(rest) > 5 {
			o.StreamCap = atoi(rest[5])
		}
		cl, err := dial(o)
		if err != nil {
			return err
		}
		defer cl.Close()
		res, err = unary(ctx, cl, contestant.Payload(size), conc, time.Duration(ms)*time.Millisecond, maxCalls)
		if err != nil {
			return err
		}
	case "stream": // N SIZE: one warm-up subscription, then the median of streamRuns
		n, size := atoi(rest[0]), atoi(rest[1])
		cl, err := dial(contestant.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		var secs []float64
		for run := range streamRuns + 1 {
			got := 0
			start := time.Now()
			if err := cl.Stream(ctx, n, size, func([]byte) { got++ }); err != nil {
				return err
			}
			el := time.Since(start).Seconds()
			if got != n {
				return fmt.Errorf("stream delivered %d of %d items", got, n)
			}
			if run > 0 { // the first warms the connection up (flow-control windows, buffers)
				secs = append(secs, el)
			}
		}
		sort.Float64s(secs)
		el := secs[len(secs)/2]
		res = result{Calls: int64(n), Seconds: el, PerSec: float64(n) / el, MiBPerSec: float64(n*size) / el / (1 << 20)}
	case "setup": // COUNT: dial + handshake + first call, sequentially
		var lat []time.Duration
		for range atoi(rest[0]) {
			start := time.Now()
			cl, err := dial(contestant.Options{})
			if err != nil {
				return err
			}
			if _, err := cl.Unary(ctx, contestant.Payload(64)); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
			_ = cl.Close()
		}
		res = result{Calls: int64(len(lat)), P50us: percentile(lat, 0.5), P90us: percentile(lat, 0.9)}
	case "compose": // DEPTH COUNT (alknet only)
		cl, err := dial(contestant.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		conn := cl.(interface{ Conn() *call.Conn }).Conn()
		in := json.RawMessage(fmt.Sprintf(`{"depth":%d}`, atoi(rest[0])))
		var lat []time.Duration
		for range atoi(rest[1]) {
			start := time.Now()
			if _, err := conn.Call(ctx, "demo/compose", in); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
		}
		res = result{Calls: int64(len(lat)), P50us: percentile(lat, 0.5)}
	case "abort": // COUNT (alknet only): abort a 3-level blocked chain; the server measures
		cl, err := dial(contestant.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		conn := cl.(interface{ Conn() *call.Conn }).Conn()
		abortComposes(ctx, conn, `{"depth":3,"block":true}`, atoi(rest[0]))
		ns, err := readNanos(ctx, conn, "bench/abort-spans")
		if err != nil {
			return err
		}
		var lat []time.Duration
		for _, n := range ns {
			lat = append(lat, time.Duration(n))
		}
		res = result{Calls: int64(len(lat)), P50us: percentile(lat, 0.5), P99us: percentile(lat, 0.99)}
	case "abort-hop": // COUNT (alknet only): client abort → level 1's handler ctx done, across processes
		cl, err := dial(contestant.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		conn := cl.(interface{ Conn() *call.Conn }).Conn()
		if _, err := readNanos(ctx, conn, "bench/abort-stamps"); err != nil { // clear
			return err
		}
		sent := abortComposes(ctx, conn, `{"depth":1,"block":true}`, atoi(rest[0]))
		got, err := readNanos(ctx, conn, "bench/abort-stamps")
		if err != nil {
			return err
		}
		var lat []time.Duration
		for i := range min(len(got), len(sent)) {
			lat = append(lat, time.Duration(got[i]-sent[i]))
		}
		res = result{Calls: int64(len(lat)), P50us: percentile(lat, 0.5), P99us: percentile(lat, 0.99)}
	case "idle": // COUNT: hold COUNT idle connections until stdin closes
		var held []contestant.Client
		for range atoi(rest[0]) {
			cl, err := dial(contestant.Options{})
			if err != nil {
				return err
			}
			if _, err := cl.Unary(ctx, contestant.Payload(8)); err != nil {
				return err
			}
			held = append(held, cl)
		}
		fmt.Println("holding")
		buf := make([]byte, 1)
		_, _ = os.Stdin.Read(buf)
		for _, cl := range held {
			_ = cl.Close()
		}
		return nil
	default:
		return fmt.Errorf("unknown job %q", job)
	}
	if res.CPUSeconds == 0 {
		res.CPUSeconds = cpuSeconds()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// unary runs conc workers over one client until the duration (after a warm-up) or maxCalls.
func unary(ctx context.Context, cl contestant.Client, payload []byte, conc int, d time.Duration, maxCalls int64) (result, error) {
	warm := time.Now().Add(min(d/5, 300*time.Millisecond))
	for time.Now().Before(warm) {
		if _, err := cl.Unary(ctx, payload); err != nil {
			return result{}, err
		}
	}
	var (
		mu    sync.Mutex
		lat   []time.Duration
		calls int64
		first error
		wg    sync.WaitGroup
	)
	cpu0 := cpuSeconds()
	start := time.Now()
	end := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				mu.Lock()
				stop := (maxCalls > 0 && calls >= maxCalls) || (maxCalls == 0 && time.Now().After(end)) || first != nil
				if !stop {
					calls++
				}
				mu.Unlock()
				if stop {
					break
				}
				t := time.Now()
				if _, err := cl.Unary(ctx, payload); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					break
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return result{}, first
	}
	el := time.Since(start).Seconds()
	return result{Calls: int64(len(lat)), Seconds: el, PerSec: float64(len(lat)) / el,
		P50us: percentile(lat, 0.5), P90us: percentile(lat, 0.9), P99us: percentile(lat, 0.99), CPUSeconds: cpuSeconds() - cpu0}, nil
}

// abortComposes starts a blocking demo/compose n times, aborting each 20 ms after it starts,
// one at a time; it returns the client's clock (UnixNano) at each abort.
func abortComposes(ctx context.Context, conn *call.Conn, input string, n int) []int64 {
	var sent []int64
	for range n {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			_, _ = conn.Call(cctx, "demo/compose", json.RawMessage(input))
			close(done)
		}()
		time.Sleep(20 * time.Millisecond)
		sent = append(sent, time.Now().UnixNano())
		cancel()
		<-done
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the server records the last abort
	return sent
}

// readNanos calls op (bench/abort-spans, bench/abort-stamps) and decodes its nanoseconds.
func readNanos(ctx context.Context, conn *call.Conn, op string) ([]int64, error) {
	out, err := conn.Call(ctx, op, json.RawMessage(`{}`))
	if err != nil {
		return nil, err
	}
	var ns []int64
	return ns, json.Unmarshal(out, &ns)
}
