// Command bench compares alknet with gRPC-go, connect-go and the raw-transport ceilings, in
// one run on one machine, and writes bench-results/report.md and report.json (docs/performance.md).
//
//	bench run [--full] [--out DIR]     the harness: spawns server and client processes
//	bench server NAME                  (internal) serve one contestant; prints "ready ADDR PIN PID"
//	bench client NAME ADDR PIN JOB...  (internal) run one workload; prints JSON
//
// With BENCH_PROFILE_DIR set, every server and client process writes a CPU profile there
// (cpu-server-NAME-PID.pprof, cpu-client-NAME-JOB-PID.pprof) for `go tool pprof`, and a server
// writes heap-server-NAME-PID.pprof (after a GC) and goroutines-server-NAME-PID.pprof (text) for
// each line "heap" on its stdin.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
)

// startProfile starts a CPU profile when BENCH_PROFILE_DIR is set; the returned func stops it.
func startProfile(parts ...string) func() {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	name := fmt.Sprintf("cpu-%s-%d.pprof", strings.ReplaceAll(strings.Join(parts, "-"), "/", "_"), os.Getpid())
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// writeHeapProfile writes the live heap, after a GC, when BENCH_PROFILE_DIR is set.
func writeHeapProfile(parts ...string) {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return
	}
	name := fmt.Sprintf("heap-%s-%d.pprof", strings.ReplaceAll(strings.Join(parts, "-"), "/", "_"), os.Getpid())
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
	}
	// The goroutines beside it: their stacks are memory the heap profile does not show.
	g, err := os.Create(filepath.Join(dir, "goroutines-"+strings.TrimPrefix(name, "heap-")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return
	}
	defer g.Close()
	_ = pprof.Lookup("goroutine").WriteTo(g, 1)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench run [--full] [--out DIR] | bench server NAME | bench client NAME ADDR PIN JOB [ARGS]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runHarness(os.Args[2:])
	case "server":
		err = runServer(os.Args[2:])
	case "client":
		err = runClient(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
