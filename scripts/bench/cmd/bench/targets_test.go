package main

import (
	"fmt"
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
	checkRows(t, r.Targets, want)
	md := markdown(r, 0)
	if !strings.Contains(md, "alknet-http ÷ connect") || !strings.Contains(md, "✗") {
		t.Fatalf("report:\n%s", md)
	}
}

// iroh.md §11: the four iroh rows are judged and the comparisons reported, when the iroh
// contestants ran; without them there are no iroh rows.
func TestIrohTargets(t *testing.T) {
	r := &report{index: map[string]*measurement{}}
	if rows := irohTargets(r); rows != nil {
		t.Fatalf("iroh rows without iroh figures: %v", rows)
	}
	r.add("alknet-quic", "unary 64 B c64", "calls_per_sec", "calls/s", 10000)
	r.add("alknet-iroh", "unary 64 B c64", "calls_per_sec", "calls/s", 6000)
	r.add("alknet-quic", "unary 64 B c1", "p50", "µs", 100)
	r.add("alknet-iroh", "unary 64 B c1", "p50", "µs", 120)
	r.add("alknet-quic", bulkCase, "mib_per_sec", "MiB/s", 200)
	r.add("alknet-iroh", bulkCase, "mib_per_sec", "MiB/s", 180)
	r.add("alknet-iroh", "idle server", "extra_rss_per_endpoint", "MiB", 9)
	got := map[string]target{}
	for _, tg := range irohTargets(r) {
		got[tg.Figure] = tg
	}
	for fig, want := range map[string]struct {
		v   float64
		met bool
	}{
		"iroh unary calls/s c64 64 B: alknet-iroh ÷ alknet-quic":              {0.6, false},
		"iroh unary p50 c1 64 B: alknet-iroh ÷ alknet-quic":                   {1.2, true},
		"iroh bulk MiB/s (256 × 64 KiB): alknet-iroh ÷ alknet-quic":           {0.9, true},
		"extra RSS per iroh endpoint (idle alknet-iroh − alknet-quic server)": {9, true},
	} {
		tg, ok := got[fig]
		if !ok || tg.Reported || tg.Met != want.met || tg.Got < want.v-0.001 || tg.Got > want.v+0.001 {
			t.Errorf("%s: %+v, want %.2f met=%v", fig, tg, want.v, want.met)
		}
	}
	r.Targets = irohTargets(r)
	if md := markdown(r, 0); !strings.Contains(md, "| ✗ |") || !strings.Contains(md, "| reported |") {
		t.Fatalf("report:\n%s", md)
	}
}

// bench.md's second set: every row is in the report, judged on the right figures — the
// pooled default against gRPC and quic-raw-mux, c256 against the same contestant's c64, the
// raw transports as ceilings, and the stream-per-call figures reported, not judged.
func TestSecondSetTargets(t *testing.T) {
	r := &report{index: map[string]*measurement{}}
	const c64, c256, c1 = "unary 64 B c64", "unary 64 B c256", "unary 64 B c1"
	const stream, alloc, idle = "stream 10,000 × 1 KiB", "unary 64 B, in-process", "1000 idle connections"
	for _, m := range []struct {
		c, kase, key string
		v            float64
	}{
		{"alknet-quic", c64, "calls_per_sec", 36000}, {"grpc", c64, "calls_per_sec", 24000},
		{"quic-raw-mux", c64, "calls_per_sec", 40000}, {"alknet-tcp", c64, "calls_per_sec", 45000},
		{"tls-raw", c64, "calls_per_sec", 50000}, {"alknet-quic", c256, "calls_per_sec", 54000},
		{"alknet-tcp", c256, "calls_per_sec", 36000},
		{"alknet-quic", c1, "p50", 270}, {"alknet-tcp", c1, "p50", 150}, {"grpc", c1, "p50", 300},
		{"alknet-tcp", stream, "msgs_per_sec", 150000}, {"grpc", stream, "msgs_per_sec", 150000},
		{"tls-raw", stream, "msgs_per_sec", 250000}, {"alknet-quic", stream, "msgs_per_sec", 90000},
		{"quic-raw", stream, "msgs_per_sec", 100000},
		{"alknet-quic", alloc, "allocs_per_call", 40}, {"alknet-tcp", alloc, "allocs_per_call", 30},
		{"grpc", alloc, "allocs_per_call", 150},
		{"alknet-quic", "cpu at c64", "cpu_s_per_100k", 4}, {"alknet-tcp", "cpu at c64", "cpu_s_per_100k", 3},
		{"grpc", "cpu at c64", "cpu_s_per_100k", 5},
		{"alknet-quic", "abort cascade depth 3", "p50", 12},
		{"alknet-quic", idle, "rss_per_conn", 75}, {"quic-raw", idle, "rss_per_conn", 60},
		{"alknet-tcp", idle, "rss_per_conn", 30}, {"tls-raw", idle, "rss_per_conn", 30},
		{"alknet-quic", fmt.Sprintf(perCallCase, 64), "calls_per_sec", 27000}, {"quic-raw", c64, "calls_per_sec", 30000},
		{"alknet-quic", fmt.Sprintf(perCallCase, 1), "p50", 330}, {"quic-raw", c1, "p50", 300},
	} {
		r.add(m.c, m.kase, m.key, "", m.v)
	}
	want := map[string]struct {
		got float64
		met bool
	}{
		"unary calls/s c64 64 B: alknet-quic ÷ grpc":                  {1.5, true},
		"unary calls/s c64 64 B: alknet-quic ÷ quic-raw-mux":          {0.9, true},
		"unary calls/s c64 64 B: alknet-tcp ÷ grpc":                   {1.875, false},
		"unary calls/s c64 64 B: alknet-tcp ÷ tls-raw":                {0.9, true},
		"unary calls/s c256 ÷ c64: alknet-quic (no collapse)":         {1.5, true},
		"unary calls/s c256 ÷ c64: alknet-tcp (no collapse)":          {0.8, false},
		"unary p50 c1 64 B: alknet-quic ÷ grpc":                       {0.9, false},
		"unary p50 c1 64 B: alknet-tcp ÷ grpc":                        {0.5, true},
		"streaming msgs/s: alknet-tcp ÷ grpc":                         {1.0, false},
		"streaming msgs/s: alknet-tcp ÷ tls-raw":                      {0.6, false},
		"streaming msgs/s: alknet-quic ÷ quic-raw":                    {0.9, true},
		"allocs per unary call: alknet-quic ÷ grpc":                   {0.267, true},
		"allocs per unary call: alknet-tcp ÷ grpc":                    {0.2, true},
		"CPU s per 100k calls c64: alknet-quic ÷ grpc":                {0.8, true},
		"CPU s per 100k calls c64: alknet-tcp ÷ grpc":                 {0.6, false},
		"abort cascade depth 3, local (alknet-quic)":                  {0.012, true},
		"server RSS per idle connection: alknet-quic ÷ quic-raw":      {1.25, false},
		"server RSS per idle connection: alknet-tcp ÷ tls-raw":        {1.0, true},
		"unary calls/s c64: alknet-quic (stream per call) ÷ quic-raw": {0.9, true},
		"unary p50 c1: alknet-quic (stream per call) ÷ quic-raw":      {1.1, true},
	}
	rows := evaluate(r)
	checkRows(t, rows, want)
	for _, tg := range rows {
		if strings.Contains(tg.Figure, "stream per call") && !tg.Reported {
			t.Errorf("%s: judged; the stream-per-call figures are reported beside", tg.Figure)
		}
	}
}

// checkRows finds each wanted figure among rows and checks its ratio and verdict.
func checkRows(t *testing.T, rows []target, want map[string]struct {
	got float64
	met bool
}) {
	t.Helper()
	found := 0
	for _, tg := range rows {
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
		t.Fatalf("%d of the %d rows in the report", found, len(want))
	}
}
