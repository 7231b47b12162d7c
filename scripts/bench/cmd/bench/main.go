// Command bench compares alknet with gRPC-go, connect-go and the raw-transport ceilings, in
// one run on one machine, and writes bench-results/report.md and report.json (bench.md).
//
//	bench run [--full] [--out DIR]     the harness: spawns server and client processes
//	bench server NAME                  (internal) serve one contestant; prints "ready ADDR PIN PID"
//	bench client NAME ADDR PIN JOB...  (internal) run one workload; prints JSON
package main

import (
	"fmt"
	"os"
)

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
