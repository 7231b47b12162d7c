package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/alkdev/alknet/scripts/bench/contestant"
)

// runServer serves one contestant on loopback until stdin closes (the harness's pipe).
func runServer(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: bench server NAME")
	}
	c, err := contestant.Get(args[0])
	if err != nil {
		return err
	}
	defer startProfile("server", args[0])()
	s, err := c.Serve("127.0.0.1:0")
	if err != nil {
		return err
	}
	pin := s.Pin()
	if pin == "" {
		pin = "-"
	}
	pid := os.Getpid()
	if p, ok := s.(interface{ Pid() int }); ok { // a server in its own process (iroh-raw)
		pid = p.Pid()
	}
	fmt.Printf("ready %s %s %d\n", s.Addr(), pin, pid)
	// Until the harness closes stdin; a line "heap" writes a heap profile (BENCH_PROFILE_DIR).
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "heap" {
			writeHeapProfile("server", args[0])
		}
	}
	return s.Close()
}
