package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// target is one figure of the targets table (docs/performance.md), evaluated in this run.
type target struct {
	Figure string  `json:"figure"`
	Want   string  `json:"want"`
	Got    float64 `json:"got"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	// Reported rows have no target: the report prints the figure and no mark.
	Reported bool `json:"reported,omitempty"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func evaluate(r *report) []target {
	cps := func(c, k string) float64 { return r.get(c, k, "calls_per_sec") }
	p50 := func(c, k string) float64 { return r.get(c, k, "p50") }
	ge := func(fig string, got, want float64) target {
		return target{Figure: fig, Want: fmt.Sprintf("≥ %.2f", want), Got: got, Unit: "×", Met: got >= want}
	}
	le := func(fig string, got, want float64, unit string) target {
		return target{Figure: fig, Want: fmt.Sprintf("≤ %.2f", want), Got: got, Unit: unit, Met: got > 0 && got <= want}
	}
	const c64, c1 = "unary 64 B c64", "unary 64 B c1"
	stream := "stream 10,000 × 1 KiB"
	alloc := "unary 64 B, in-process"
	idle := "1000 idle connections"
	perCall1, perCall64 := fmt.Sprintf(perCallCase, 1), fmt.Sprintf(perCallCase, 64)
	reported := func(fig string, got float64, unit string) target {
		return target{Figure: fig, Want: "reported", Got: got, Unit: unit, Met: true, Reported: true}
	}
	const c256 = "unary 64 B c256"
	cpu := func(c string) float64 { return r.get(c, "cpu at c64", "cpu_s_per_100k") }
	msgs := func(c string) float64 { return r.get(c, stream, "msgs_per_sec") }
	allocs := func(c string) float64 { return r.get(c, alloc, "allocs_per_call") }
	rss := func(c string) float64 { return r.get(c, idle, "rss_per_conn") }
	// bench.md's second set. alknet-quic is judged with the client's default (pooled streams);
	// its stream-per-call figures are reported beside, against quic-raw.
	rows := []target{
		ge("unary calls/s c64 64 B: alknet-quic ÷ grpc", ratio(cps("alknet-quic", c64), cps("grpc", c64)), 1.5),
		ge("unary calls/s c64 64 B: alknet-quic ÷ quic-raw-mux", ratio(cps("alknet-quic", c64), cps("quic-raw-mux", c64)), 0.8),
		ge("unary calls/s c64 64 B: alknet-tcp ÷ grpc", ratio(cps("alknet-tcp", c64), cps("grpc", c64)), 2.0),
		ge("unary calls/s c64 64 B: alknet-tcp ÷ tls-raw", ratio(cps("alknet-tcp", c64), cps("tls-raw", c64)), 0.85),
		ge("unary calls/s c256 ÷ c64: alknet-quic (no collapse)", ratio(cps("alknet-quic", c256), cps("alknet-quic", c64)), 0.9),
		ge("unary calls/s c256 ÷ c64: alknet-tcp (no collapse)", ratio(cps("alknet-tcp", c256), cps("alknet-tcp", c64)), 0.9),
		le("unary p50 c1 64 B: alknet-quic ÷ grpc", ratio(p50("alknet-quic", c1), p50("grpc", c1)), 0.8, "×"),
		le("unary p50 c1 64 B: alknet-tcp ÷ grpc", ratio(p50("alknet-tcp", c1), p50("grpc", c1)), 0.7, "×"),
		ge("streaming msgs/s: alknet-tcp ÷ grpc", ratio(msgs("alknet-tcp"), msgs("grpc")), 1.2),
		ge("streaming msgs/s: alknet-tcp ÷ tls-raw", ratio(msgs("alknet-tcp"), msgs("tls-raw")), 0.85),
		ge("streaming msgs/s: alknet-quic ÷ quic-raw", ratio(msgs("alknet-quic"), msgs("quic-raw")), 0.9),
		le("allocs per unary call: alknet-quic ÷ grpc", ratio(allocs("alknet-quic"), allocs("grpc")), 0.5, "×"),
		le("allocs per unary call: alknet-tcp ÷ grpc", ratio(allocs("alknet-tcp"), allocs("grpc")), 0.5, "×"),
		le("CPU s per 100k calls c64: alknet-quic ÷ grpc", ratio(cpu("alknet-quic"), cpu("grpc")), 0.8, "×"),
		le("CPU s per 100k calls c64: alknet-tcp ÷ grpc", ratio(cpu("alknet-tcp"), cpu("grpc")), 0.5, "×"),
		le("abort cascade depth 3, local (alknet-quic)", p50("alknet-quic", "abort cascade depth 3")/1000, 0.1, "ms"),
		le("server RSS per idle connection: alknet-quic ÷ quic-raw", ratio(rss("alknet-quic"), rss("quic-raw")), 1.05, "×"),
		le("server RSS per idle connection: alknet-tcp ÷ tls-raw", ratio(rss("alknet-tcp"), rss("tls-raw")), 1.05, "×"),
		reported("unary calls/s c64: alknet-quic (stream per call) ÷ quic-raw", ratio(cps("alknet-quic", perCall64), cps("quic-raw", c64)), "×"),
		reported("unary p50 c1: alknet-quic (stream per call) ÷ quic-raw", ratio(p50("alknet-quic", perCall1), p50("quic-raw", c1)), "×"),
		// Forwarding (forwarding spec §12).
		ge("fwd unary calls/s c64 64 B: alknet-fwd-quic ÷ alknet-quic", ratio(cps("alknet-fwd-quic", c64), cps("alknet-quic", c64)), 0.45),
		ge("fwd unary calls/s c64 64 B: alknet-fwd-tcp ÷ alknet-tcp", ratio(cps("alknet-fwd-tcp", c64), cps("alknet-tcp", c64)), 0.45),
		le("fwd added p50 c1 64 B: (alknet-fwd-quic − alknet-quic) ÷ alknet-quic", ratio(p50("alknet-fwd-quic", c1)-p50("alknet-quic", c1), p50("alknet-quic", c1)), 1.2, "×"),
		le("fwd added p50 c1 64 B: (alknet-fwd-tcp − alknet-tcp) ÷ alknet-tcp", ratio(p50("alknet-fwd-tcp", c1)-p50("alknet-tcp", c1), p50("alknet-tcp", c1)), 1.2, "×"),
		ge("fwd unary calls/s c64 64 B: alknet-fwd-quic ÷ grpc-proxy", ratio(cps("alknet-fwd-quic", c64), cps("grpc-proxy", c64)), 1.0),
		ge("fwd unary calls/s c64 64 B: alknet-fwd-tcp ÷ grpc-proxy", ratio(cps("alknet-fwd-tcp", c64), cps("grpc-proxy", c64)), 1.0),
		le("abort-hop p50: alknet-fwd-quic ÷ alknet-quic", ratio(p50("alknet-fwd-quic", "abort-hop"), p50("alknet-quic", "abort-hop")), 2.5, "×"),
		// Adapters (docs/performance.md "Adapters").
		ge("http unary calls/s c64 64 B: alknet-http ÷ connect", ratio(cps("alknet-http", c64), cps("connect", c64)), 1.0),
		le("mcp tool call p50 c1: alknet-mcp ÷ mcp-direct", ratio(p50("alknet-mcp", c1), p50("mcp-direct", c1)), 1.3, "×"),
		ge("mcp tool calls/s c16: alknet-mcp ÷ mcp-direct", ratio(cps("alknet-mcp", "unary 64 B c16"), cps("mcp-direct", "unary 64 B c16")), 0.77),
	}
	return append(rows, irohTargets(r)...)
}

// The earlier Node.js bridge's recorded figures (iroh.md §11), reported beside ours.
const (
	bridgeRoundTripUS = 130
	bridgeMiBPerSec   = 10
	bridgeRSSMiB      = 62
)

// irohTargets are iroh.md §11's rows (when the iroh contestants ran).
func irohTargets(r *report) []target {
	if r.get("alknet-iroh", "unary 64 B c1", "p50") == 0 {
		return nil
	}
	cps := func(c, k string) float64 { return r.get(c, k, "calls_per_sec") }
	p50 := func(c, k string) float64 { return r.get(c, k, "p50") }
	mib := func(c string) float64 { return r.get(c, bulkCase, "mib_per_sec") }
	rss := r.get("alknet-iroh", "idle server", "extra_rss_per_endpoint")
	const c64, c1 = "unary 64 B c64", "unary 64 B c1"
	reported := func(fig string, got float64, unit string) target {
		return target{Figure: fig, Want: "reported", Got: got, Unit: unit, Met: true, Reported: true}
	}
	return []target{
		{Figure: "iroh unary calls/s c64 64 B: alknet-iroh ÷ alknet-quic", Want: "≥ 0.70", Got: ratio(cps("alknet-iroh", c64), cps("alknet-quic", c64)), Unit: "×",
			Met: ratio(cps("alknet-iroh", c64), cps("alknet-quic", c64)) >= 0.7},
		{Figure: "iroh unary p50 c1 64 B: alknet-iroh ÷ alknet-quic", Want: "≤ 1.50", Got: ratio(p50("alknet-iroh", c1), p50("alknet-quic", c1)), Unit: "×",
			Met: ratio(p50("alknet-iroh", c1), p50("alknet-quic", c1)) > 0 && ratio(p50("alknet-iroh", c1), p50("alknet-quic", c1)) <= 1.5},
		{Figure: "iroh bulk MiB/s (256 × 64 KiB): alknet-iroh ÷ alknet-quic", Want: "≥ 0.70", Got: ratio(mib("alknet-iroh"), mib("alknet-quic")), Unit: "×",
			Met: ratio(mib("alknet-iroh"), mib("alknet-quic")) >= 0.7},
		{Figure: "extra RSS per iroh endpoint (idle alknet-iroh − alknet-quic server)", Want: "≤ 16.00", Got: rss, Unit: "MiB", Met: rss <= 16},
		reported("iroh unary calls/s c64 64 B: alknet-iroh ÷ iroh-raw", ratio(cps("alknet-iroh", c64), cps("iroh-raw", c64)), "×"),
		reported("iroh unary p50 c1 64 B: alknet-iroh ÷ iroh-raw", ratio(p50("alknet-iroh", c1), p50("iroh-raw", c1)), "×"),
		reported("iroh bulk MiB/s: alknet-iroh ÷ iroh-raw", ratio(mib("alknet-iroh"), mib("iroh-raw")), "×"),
		reported("iroh unary p50 c1 64 B: alknet-iroh ÷ the bridge's 130 µs", ratio(p50("alknet-iroh", c1), bridgeRoundTripUS), "×"),
		reported("iroh bulk MiB/s: alknet-iroh ÷ the bridge's 10 MiB/s", ratio(mib("alknet-iroh"), bridgeMiBPerSec), "×"),
		reported("extra RSS per iroh endpoint ÷ the bridge's 62 MiB", ratio(rss, bridgeRSSMiB), "×"),
	}
}

func markdown(r *report, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# alknet benchmark — %s run\n\n%s · %s · took %s\n\n", r.Mode, r.Date, r.Machine, took.Round(time.Second))
	b.WriteString("## Targets (ratios measured in this run)\n\n| figure | target | measured | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		mark := "✗"
		switch {
		case t.Reported:
			mark = "—"
		case t.Met:
			mark = "✓"
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f %s | %s |\n", t.Figure, t.Want, t.Got, t.Unit, mark)
	}
	b.WriteString("\n## Results (median")
	if r.Mode == "full" {
		b.WriteString(", min–max")
	}
	b.WriteString(")\n\n| contestant | case | metric | value |\n|---|---|---|---|\n")
	for _, m := range r.Results {
		v := fmt.Sprintf("%.1f %s", m.Median, m.Unit)
		if len(m.Values) > 1 {
			v += fmt.Sprintf(" (%.1f–%.1f)", m.Min, m.Max)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", m.Contestant, m.Case, m.Metric, v)
	}
	b.WriteString("\n## Limits\n\n")
	for _, n := range sortedKeys(r.Limits) {
		fmt.Fprintf(&b, "- %s: %s\n", n, r.Limits[n])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
