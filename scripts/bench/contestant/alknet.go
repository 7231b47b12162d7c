package contestant

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/host"
)

var benchLimits = config.Limits{MaxConnectionsPerIP: -1, MaxConnections: 4096, MaxIncomingStreams: 1024}

func init() {
	for _, tr := range []string{"quic", "tcp"} {
		register(Contestant{
			Name:   "alknet-" + tr,
			Limits: "MaxConnectionsPerIP=-1 MaxConnections=4096 MaxIncomingStreams=1024; call defaults (MaxInFlight 1024)",
			Serve:  func(addr string) (Server, error) { return serveAlknet(addr, tr) },
			Dial: func(ctx context.Context, addr, pin string, o Options) (Client, error) {
				return dialAlknet(ctx, addr, pin, tr, o)
			},
		})
	}
}

type alknetServer struct {
	n    *node.Node
	addr string
}

func (s *alknetServer) Addr() string { return s.addr }
func (s *alknetServer) Pin() string  { return s.n.Fingerprint() }
func (s *alknetServer) Close() error { return s.n.Shutdown(context.Background()) }

// abortHook records, per composed tree, the time its levels' contexts ended.
var abortHook struct {
	mu    sync.Mutex
	spans []time.Duration
}

// TakeAbortSpans returns and clears the measured abort cascade spans (level 1 → level 3).
func TakeAbortSpans() []time.Duration {
	abortHook.mu.Lock()
	defer abortHook.mu.Unlock()
	out := abortHook.spans
	abortHook.spans = nil
	return out
}

func serveAlknet(addr, tr string) (Server, error) {
	// All three levels of a blocked demo/compose chain share the root's cancellation, so
	// their hooks fire in any order: the span is from the first level's ctx done (the server
	// processed call.aborted) to the last's.
	var mu sync.Mutex
	var seen []time.Time
	regs := demo.Registrations(demo.Options{OnComposeDone: func(level int, id string, cause error) {
		stampLevel1(level, id, cause) // the abort-hop job's direct baseline
		if cause == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, time.Now())
		if len(seen) == 3 {
			first, last := seen[0], seen[0]
			for _, t := range seen {
				if t.Before(first) {
					first = t
				}
				if t.After(last) {
					last = t
				}
			}
			abortHook.mu.Lock()
			abortHook.spans = append(abortHook.spans, last.Sub(first))
			abortHook.mu.Unlock()
			seen = seen[:0]
		}
	}})
	n, err := node.Start(node.Options{
		Host: host.Options{Listen: []string{addr}, NoQUIC: tr != "quic", NoTCP: tr == "quic", Limits: benchLimits,
			Logger: slog.New(slog.DiscardHandler)},
		Registrations: append(regs, abortStatsOp(), abortStampsOp()),
	})
	if err != nil {
		return nil, err
	}
	bound := n.TCPAddrs()
	if tr == "quic" {
		bound = n.QUICAddrs()
	}
	return &alknetServer{n: n, addr: bound[0].String()}, nil
}

// abortStatsOp lets the client process read the abort cascade spans measured in the server.
func abortStatsOp() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "bench/abort-spans", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			var ns []int64
			for _, d := range TakeAbortSpans() {
				ns = append(ns, d.Nanoseconds())
			}
			return json.Marshal(ns)
		},
	}
}

type alknetClient struct{ c *call.Conn }

func dialAlknet(ctx context.Context, addr, pin, tr string, o Options) (Client, error) {
	transport := conn.TransportTCPTLS
	if tr == "quic" {
		transport = conn.TransportQUIC
	}
	// On TCP+TLS the subscription shares the connection's one stream, where a full buffer aborts
	// (docs/protocol.md §15.4): give the streaming workload room for a burst.
	c, err := node.DialAddr(ctx, addr, pin, node.DialOptions{Transport: transport,
		Conn: call.ConnOptions{StreamReuse: max(o.StreamReuse, 0), StreamCap: o.StreamCap, StreamPerCall: o.StreamReuse < 0, SubscriptionBuffer: 16384}})
	if err != nil {
		return nil, err
	}
	return &alknetClient{c: c}, nil
}

// Conn exposes the call connection (composition and abort workloads).
func (c *alknetClient) Conn() *call.Conn { return c.c }

func (c *alknetClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	in := make([]byte, 0, len(payload)+12)
	in = append(append(append(in, `{"text":"`...), payload...), `"}`...)
	out, err := c.c.Call(ctx, "demo/echo", in)
	if err != nil {
		return nil, err
	}
	if len(out) != len(in) {
		return nil, fmt.Errorf("echo returned %d bytes, sent %d", len(out), len(in))
	}
	return out, nil
}

func (c *alknetClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	in := fmt.Sprintf(`{"count":%d,"interval_ms":0,"pad":%d}`, n, size)
	sub, err := c.c.Subscribe(ctx, "demo/ticker", json.RawMessage(in))
	if err != nil {
		return err
	}
	for {
		item, err := sub.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fn(item)
	}
}

func (c *alknetClient) Close() error { return c.c.Close() }

// Payload returns n bytes safe inside a JSON string.
func Payload(n int) []byte { return []byte(strings.Repeat("x", n)) }
