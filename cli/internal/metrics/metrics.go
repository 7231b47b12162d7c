// Package metrics exports the node's metrics on /metrics with the Prometheus client library:
// calls by operation and code, call latency histograms, live connections and streams,
// authentication results, and the Go runtime and process collectors. It implements
// endpoint.Metrics and call.Observer.
//
// Operation labels are bounded (docs/security.md): the call layer names only operations that
// resolved to a registration (anything else arrives as "other"), and at most MaxOperations
// distinct names get series of their own; later ones are counted as "other" too. Recording a
// call takes no lock that a scrape holds: each (operation, code) pair's counter and histogram
// are cached in a sync.Map after their first use.
package metrics

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core/endpoint"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxOperations bounds the distinct operation labels; further operations count as "other".
const MaxOperations = 1000

// OtherOperation labels calls of operations without a series of their own.
const OtherOperation = "other"

// buckets are the latency histogram bounds in seconds.
var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Registry holds every series; safe for concurrent use.
type Registry struct {
	reg *prometheus.Registry

	calls      *prometheus.CounterVec   // op, code
	latency    *prometheus.HistogramVec // op
	connActive *prometheus.GaugeVec     // transport
	connTotal  *prometheus.CounterVec   // transport
	refused    *prometheus.CounterVec   // reason
	handshakes prometheus.Counter
	panics     prometheus.Counter
	revoked    prometheus.Counter
	auth       *prometheus.CounterVec // result
	authFailed prometheus.Counter
	streams    prometheus.Gauge

	series sync.Map // seriesKey → *callSeries
	ops    sync.Map // op → struct{}: operations with series of their own
	nops   atomic.Int64
	opsMu  sync.Mutex // serialises admitting a new operation label (never held by a scrape)
}

type seriesKey struct{ op, code string }

type callSeries struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// New returns a registry with every alknet metric, the Go runtime and the process collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alknet_calls_total", Help: "Calls served, by operation and result code (unregistered operations: op=\"other\").",
	}, []string{"op", "code"})
	r.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "alknet_call_duration_seconds", Help: "Call latency, by operation.", Buckets: buckets,
	}, []string{"op"})
	r.connActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "alknet_connections_active", Help: "Live connections, by transport.",
	}, []string{"transport"})
	r.connTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alknet_connections_total", Help: "Accepted connections, by transport.",
	}, []string{"transport"})
	r.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alknet_connections_refused_total", Help: "Connections refused by a limit, by reason.",
	}, []string{"reason"})
	r.handshakes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alknet_handshake_failures_total", Help: "TLS handshakes that failed.",
	})
	r.panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alknet_handler_panics_total", Help: "Protocol handler panics (isolated).",
	})
	r.revoked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alknet_connections_revoked_total", Help: "Connections closed because their identity was revoked.",
	})
	r.auth = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "alknet_auth_attempts_total", Help: "Authentication attempts, by result.",
	}, []string{"result"})
	r.authFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "alknet_auth_failures_total", Help: "Rejected or blocked authentication attempts.",
	})
	r.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "alknet_streams_active", Help: "Open alknet/call streams.",
	})
	r.reg.MustRegister(r.calls, r.latency, r.connActive, r.connTotal, r.refused, r.handshakes, r.panics,
		r.revoked, r.auth, r.authFailed, r.streams,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Series that exist from the start, so dashboards see zeros rather than gaps.
	for _, t := range []string{"quic", "tcp+tls"} {
		r.connActive.WithLabelValues(t)
	}
	for _, res := range []string{"accept", "reject", "blocked"} {
		r.auth.WithLabelValues(res)
	}
	return r
}

// CallDone implements call.Observer.
func (r *Registry) CallDone(op, code string, d time.Duration) {
	if code == "" {
		code = "OK"
	}
	s := r.seriesFor(op, code)
	s.calls.Inc()
	s.latency.Observe(d.Seconds())
}

func (r *Registry) seriesFor(op, code string) *callSeries {
	k := seriesKey{op, code}
	if s, ok := r.series.Load(k); ok {
		return s.(*callSeries)
	}
	label := r.admit(op)
	if label != op {
		k.op = label
		if s, ok := r.series.Load(k); ok {
			return s.(*callSeries)
		}
	}
	s := &callSeries{calls: r.calls.WithLabelValues(label, code), latency: r.latency.WithLabelValues(label)}
	actual, _ := r.series.LoadOrStore(k, s)
	return actual.(*callSeries)
}

// admit returns op if it has (or may now have) a label of its own, else OtherOperation.
func (r *Registry) admit(op string) string {
	if _, ok := r.ops.Load(op); ok || op == OtherOperation {
		return op
	}
	r.opsMu.Lock()
	defer r.opsMu.Unlock()
	if _, ok := r.ops.Load(op); ok {
		return op
	}
	if r.nops.Load() >= MaxOperations {
		return OtherOperation
	}
	r.ops.Store(op, struct{}{})
	r.nops.Add(1)
	return op
}

// StreamOpened implements call.Observer.
func (r *Registry) StreamOpened() { r.streams.Inc() }

// StreamClosed implements call.Observer.
func (r *Registry) StreamClosed() { r.streams.Dec() }

// ConnAccepted implements endpoint.Metrics.
func (r *Registry) ConnAccepted(transport, _ string) {
	r.connActive.WithLabelValues(transport).Inc()
	r.connTotal.WithLabelValues(transport).Inc()
}

// ConnClosed implements endpoint.Metrics.
func (r *Registry) ConnClosed(transport, _ string) { r.connActive.WithLabelValues(transport).Dec() }

// ConnRefused implements endpoint.Metrics.
func (r *Registry) ConnRefused(reason string) { r.refused.WithLabelValues(reason).Inc() }

// HandshakeFailed implements endpoint.Metrics.
func (r *Registry) HandshakeFailed(string) { r.handshakes.Inc() }

// AuthResult implements endpoint.Metrics (connection fingerprints; tokens come through AuthAttempt).
func (r *Registry) AuthResult(string) {}

// AuthAttempt counts one audited authentication attempt ("accept", "reject", "blocked").
func (r *Registry) AuthAttempt(result string) {
	r.auth.WithLabelValues(result).Inc()
	if result != "accept" {
		r.authFailed.Inc()
	}
}

// HandlerPanic implements endpoint.Metrics.
func (r *Registry) HandlerPanic(string) { r.panics.Inc() }

// Revoked implements endpoint.Metrics.
func (r *Registry) Revoked() { r.revoked.Inc() }

// Gatherer returns the underlying registry (tests, embedding).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves GET /metrics in the Prometheus exposition formats (promhttp).
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second}))
	return mux
}

// MaxPeerLabels bounds the peer labels of alknet_peer_connections; further peers count as
// OtherOperation ("other"). Peers come from the config, so the bound is a backstop.
const MaxPeerLabels = 1000

var peerConnsDesc = prometheus.NewDesc("alknet_peer_connections",
	"Live connections by the peer their client certificate identified (\"anonymous\": none or an unknown key).",
	[]string{"peer"}, nil)

// peerConns reads the endpoint's connection snapshot at each scrape.
type peerConns struct{ stats func() endpoint.Stats }

func (p peerConns) Describe(ch chan<- *prometheus.Desc) { ch <- peerConnsDesc }

func (p peerConns) Collect(ch chan<- prometheus.Metric) {
	byPeer := p.stats().ByPeer
	peers := make([]string, 0, len(byPeer))
	for k := range byPeer {
		peers = append(peers, k)
	}
	sort.Strings(peers)
	other := 0
	for i, k := range peers {
		if i >= MaxPeerLabels {
			other += byPeer[k]
			continue
		}
		ch <- prometheus.MustNewConstMetric(peerConnsDesc, prometheus.GaugeValue, float64(byPeer[k]), k)
	}
	if other > 0 {
		ch <- prometheus.MustNewConstMetric(peerConnsDesc, prometheus.GaugeValue, float64(other), OtherOperation)
	}
}

// WatchConnections adds alknet_peer_connections, computed from stats at each scrape. Call it
// once, when the endpoint exists.
func (r *Registry) WatchConnections(stats func() endpoint.Stats) error {
	return r.reg.Register(peerConns{stats})
}

// IrohStats are the iroh endpoint's figures at a scrape (spec iroh.md §8.5).
type IrohStats struct {
	Up             bool // bound and serving
	Direct, Relay  int  // live connections by path
	RelayConnected bool
	Refused        map[string]uint64 // before the handshake, by reason: handshakes, limit_total, limit_ip, backlog
}

var (
	irohUpDesc    = prometheus.NewDesc("alknet_iroh_up", "1 while the iroh endpoint is bound and serving.", nil, nil)
	irohConnsDesc = prometheus.NewDesc("alknet_iroh_connections", "Live iroh connections, by path.", []string{"path"}, nil)
	irohRelayDesc = prometheus.NewDesc("alknet_iroh_relay_connected", "1 while the iroh endpoint's address has a home relay.", nil, nil)
	irohRefDesc   = prometheus.NewDesc("alknet_iroh_refused_total", "iroh connections refused before the handshake, by reason.", []string{"reason"}, nil)
)

// IrohRefusalReasons are alknet_iroh_refused_total's labels: a fixed set.
var IrohRefusalReasons = []string{"handshakes", "limit_total", "limit_ip", "backlog"}

type irohCollector struct{ stats func() IrohStats }

func (c irohCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- irohUpDesc
	ch <- irohConnsDesc
	ch <- irohRelayDesc
	ch <- irohRefDesc
}

func (c irohCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(irohUpDesc, prometheus.GaugeValue, b(s.Up))
	ch <- prometheus.MustNewConstMetric(irohConnsDesc, prometheus.GaugeValue, float64(s.Direct), "direct")
	ch <- prometheus.MustNewConstMetric(irohConnsDesc, prometheus.GaugeValue, float64(s.Relay), "relay")
	ch <- prometheus.MustNewConstMetric(irohRelayDesc, prometheus.GaugeValue, b(s.RelayConnected))
	for _, r := range IrohRefusalReasons {
		ch <- prometheus.MustNewConstMetric(irohRefDesc, prometheus.CounterValue, float64(s.Refused[r]), r)
	}
}

// WatchIroh adds the alknet_iroh_* metrics, read from stats at each scrape. Call it once, when
// iroh is enabled (also when its bind failed: alknet_iroh_up is then 0).
func (r *Registry) WatchIroh(stats func() IrohStats) error {
	return r.reg.Register(irohCollector{stats})
}
