// Package metrics exports the node's counters in the Prometheus text format on /metrics:
// calls by operation and code, call latency histograms, active connections and streams, and
// authentication results. It implements endpoint.Metrics and call.Observer.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// buckets are the latency histogram bounds in seconds.
var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Registry holds every series; safe for concurrent use.
type Registry struct {
	mu          sync.Mutex
	calls       map[[2]string]uint64 // (op, code)
	latency     map[string]*histogram
	connActive  map[string]int64 // transport
	connTotal   map[string]uint64
	refused     map[string]uint64
	handshakes  uint64
	panics      uint64
	revoked     uint64
	auth        map[string]uint64 // result
	streamsOpen int64
}

type histogram struct {
	counts []uint64
	sum    float64
	n      uint64
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{calls: map[[2]string]uint64{}, latency: map[string]*histogram{}, connActive: map[string]int64{},
		connTotal: map[string]uint64{}, refused: map[string]uint64{}, auth: map[string]uint64{}}
}

// CallDone implements call.Observer.
func (r *Registry) CallDone(op, code string, d time.Duration) {
	if code == "" {
		code = "OK"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[[2]string{op, code}]++
	h := r.latency[op]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(buckets))}
		r.latency[op] = h
	}
	s := d.Seconds()
	for i, b := range buckets {
		if s <= b {
			h.counts[i]++
		}
	}
	h.sum += s
	h.n++
}

// StreamOpened implements call.Observer.
func (r *Registry) StreamOpened() { r.mu.Lock(); r.streamsOpen++; r.mu.Unlock() }

// StreamClosed implements call.Observer.
func (r *Registry) StreamClosed() { r.mu.Lock(); r.streamsOpen--; r.mu.Unlock() }

// ConnAccepted implements endpoint.Metrics.
func (r *Registry) ConnAccepted(transport, _ string) {
	r.mu.Lock()
	r.connActive[transport]++
	r.connTotal[transport]++
	r.mu.Unlock()
}

// ConnClosed implements endpoint.Metrics.
func (r *Registry) ConnClosed(transport, _ string) {
	r.mu.Lock()
	r.connActive[transport]--
	r.mu.Unlock()
}

// ConnRefused implements endpoint.Metrics.
func (r *Registry) ConnRefused(reason string) { r.mu.Lock(); r.refused[reason]++; r.mu.Unlock() }

// HandshakeFailed implements endpoint.Metrics.
func (r *Registry) HandshakeFailed(string) { r.mu.Lock(); r.handshakes++; r.mu.Unlock() }

// AuthResult implements endpoint.Metrics (connection fingerprints; tokens come through AuthAttempt).
func (r *Registry) AuthResult(string) {}

// AuthAttempt counts one audited authentication attempt ("accept", "reject", "blocked").
func (r *Registry) AuthAttempt(result string) { r.mu.Lock(); r.auth[result]++; r.mu.Unlock() }

// HandlerPanic implements endpoint.Metrics.
func (r *Registry) HandlerPanic(string) { r.mu.Lock(); r.panics++; r.mu.Unlock() }

// Revoked implements endpoint.Metrics.
func (r *Registry) Revoked() { r.mu.Lock(); r.revoked++; r.mu.Unlock() }

func label(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func sortedKeys[K comparable, V any](m map[K]V, less func(a, b K) bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

// WriteTo writes the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("# HELP alknet_calls_total Calls served, by operation and result code.\n# TYPE alknet_calls_total counter\n")
	for _, k := range sortedKeys(r.calls, func(a, b [2]string) bool { return a[0]+a[1] < b[0]+b[1] }) {
		fmt.Fprintf(&b, "alknet_calls_total{op=\"%s\",code=\"%s\"} %d\n", label(k[0]), label(k[1]), r.calls[k])
	}
	b.WriteString("# HELP alknet_call_duration_seconds Call latency, by operation.\n# TYPE alknet_call_duration_seconds histogram\n")
	for _, op := range sortedKeys(r.latency, func(a, b string) bool { return a < b }) {
		h := r.latency[op]
		for i, le := range buckets {
			fmt.Fprintf(&b, "alknet_call_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %d\n", label(op), le, h.counts[i])
		}
		fmt.Fprintf(&b, "alknet_call_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %d\n", label(op), h.n)
		fmt.Fprintf(&b, "alknet_call_duration_seconds_sum{op=\"%s\"} %g\nalknet_call_duration_seconds_count{op=\"%s\"} %d\n", label(op), h.sum, label(op), h.n)
	}
	b.WriteString("# HELP alknet_connections_active Live connections, by transport.\n# TYPE alknet_connections_active gauge\n")
	for _, t := range []string{"quic", "tcp+tls"} {
		fmt.Fprintf(&b, "alknet_connections_active{transport=\"%s\"} %d\n", t, r.connActive[t])
	}
	b.WriteString("# HELP alknet_connections_total Accepted connections, by transport.\n# TYPE alknet_connections_total counter\n")
	for _, t := range sortedKeys(r.connTotal, func(a, b string) bool { return a < b }) {
		fmt.Fprintf(&b, "alknet_connections_total{transport=\"%s\"} %d\n", label(t), r.connTotal[t])
	}
	b.WriteString("# HELP alknet_streams_active Open alknet/call streams.\n# TYPE alknet_streams_active gauge\n")
	fmt.Fprintf(&b, "alknet_streams_active %d\n", r.streamsOpen)
	b.WriteString("# HELP alknet_auth_attempts_total Authentication attempts, by result.\n# TYPE alknet_auth_attempts_total counter\n")
	for _, res := range []string{"accept", "reject", "blocked"} {
		fmt.Fprintf(&b, "alknet_auth_attempts_total{result=\"%s\"} %d\n", res, r.auth[res])
	}
	b.WriteString("# HELP alknet_auth_failures_total Rejected or blocked authentication attempts.\n# TYPE alknet_auth_failures_total counter\n")
	fmt.Fprintf(&b, "alknet_auth_failures_total %d\n", r.auth["reject"]+r.auth["blocked"])
	b.WriteString("# HELP alknet_connections_refused_total Connections refused by a limit, by reason.\n# TYPE alknet_connections_refused_total counter\n")
	for _, k := range sortedKeys(r.refused, func(a, b string) bool { return a < b }) {
		fmt.Fprintf(&b, "alknet_connections_refused_total{reason=\"%s\"} %d\n", label(k), r.refused[k])
	}
	fmt.Fprintf(&b, "# TYPE alknet_handshake_failures_total counter\nalknet_handshake_failures_total %d\n", r.handshakes)
	fmt.Fprintf(&b, "# TYPE alknet_handler_panics_total counter\nalknet_handler_panics_total %d\n", r.panics)
	fmt.Fprintf(&b, "# TYPE alknet_connections_revoked_total counter\nalknet_connections_revoked_total %d\n", r.revoked)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Handler serves /metrics.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = r.WriteTo(w)
	})
	return mux
}
