package main

import (
	"strings"
	"testing"
)

// docs/performance.md "Adapters" (checklist 32): the report carries the three adapter rows, judged on the
// adapter contestants' figures.
func TestAdapterTargets(t *testing.T) {
	r := &report{index: map[string]*measurement{}}
	r.add("alknet-http", "unary 64 B c64", "calls_per_sec", "calls/s", 11000)
	r.add("connect", "unary 64 B c64", "calls_per_sec", "calls/s", 10000)
	r.add("alknet-mcp", "unary 64 B c1", "p50", "µs", 700)
	r.add("mcp-direct", "unary 64 B c1", "p50", "µs", 500)
	r.add("alknet-mcp", "unary 64 B c16", "calls_per_sec", "calls/s", 800)
	r.add("mcp-direct", "unary 64 B c16", "calls_per_sec", "calls/s", 1000)
	want := map[string]struct {
		got float64
		met bool
	}{
		"http unary calls/s c64 64 B: alknet-http ÷ connect": {1.1, true},
		"mcp tool call p50 c1: alknet-mcp ÷ mcp-direct":      {1.4, false},
		"mcp tool calls/s c16: alknet-mcp ÷ mcp-direct":      {0.8, true},
	}
	r.Targets = evaluate(r)
	found := 0
	for _, tg := range r.Targets {
		w, ok := want[tg.Figure]
		if !ok {
			continue
		}
		found++
		if tg.Met != w.met || tg.Got < w.got-0.001 || tg.Got > w.got+0.001 {
			t.Errorf("%s: got %.3f met=%v, want %.3f met=%v", tg.Figure, tg.Got, tg.Met, w.got, w.met)
		}
	}
	if found != len(want) {
		t.Fatalf("%d of the %d adapter rows in the report", found, len(want))
	}
	md := markdown(r, 0)
	if !strings.Contains(md, "alknet-http ÷ connect") || !strings.Contains(md, "✗") {
		t.Fatalf("report:\n%s", md)
	}
}
