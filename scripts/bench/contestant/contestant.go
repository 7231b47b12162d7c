// Package contestant holds the servers and clients the benchmark compares: the alknet call
// protocol over QUIC and TCP+TLS, gRPC and Connect, and the raw-transport ceilings (a bare QUIC
// stream and a bare TLS connection with length-prefixed frames). All use TLS 1.3 on loopback.
package contestant

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
)

// Server is a running contestant server.
type Server interface {
	Addr() string
	Pin() string // what clients pin ("" when they skip verification)
	Close() error
}

// Client is one connection to a contestant server.
type Client interface {
	// Unary sends payload and returns the echo.
	Unary(ctx context.Context, payload []byte) ([]byte, error)
	// Stream asks for n items of size bytes and calls fn for each.
	Stream(ctx context.Context, n, size int, fn func([]byte)) error
	Close() error
}

// Options tune a client.
type Options struct {
	StreamReuse int // alknet over QUIC/iroh: pool size (0 = the default pool, -1 = a stream per call)
	StreamCap   int // with StreamReuse: requests in flight per pooled stream (0 = the default)
}

// Contestant is one system under test.
type Contestant struct {
	Name   string
	Limits string // printed in the report
	Serve  func(addr string) (Server, error)
	Dial   func(ctx context.Context, addr, pin string, o Options) (Client, error)
}

// EchoEnv names the iroh-raw server binary (iroh/ffi's examples/echo; make bench builds it).
const EchoEnv = "ALKNET_IROH_ECHO"

// ErrNoEcho: the iroh-raw server binary is not built or not named.
var ErrNoEcho = errors.New("iroh-raw: " + EchoEnv + " does not name the built echo (make bench builds iroh/ffi's examples/echo)")

var registry = map[string]Contestant{}

func register(c Contestant) { registry[c.Name] = c }

// Get returns a contestant by name.
func Get(name string) (Contestant, error) {
	c, ok := registry[name]
	if !ok {
		return Contestant{}, fmt.Errorf("unknown contestant %q (have %v)", name, Names())
	}
	return c, nil
}

// Names lists the contestants in report order.
func Names() []string {
	order := map[string]int{"alknet-quic": 0, "alknet-tcp": 1, "grpc": 2, "connect": 3, "quic-raw": 4, "quic-raw-mux": 5,
		"tls-raw": 6, "alknet-fwd-quic": 7, "alknet-fwd-tcp": 8, "grpc-proxy": 9, "alknet-http": 10, "alknet-mcp": 11,
		"mcp-direct": 12, "alknet-iroh": 13, "iroh-raw": 14}
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return order[out[i]] < order[out[j]] })
	return out
}

// clientTLS skips chain verification: the benchmark's servers use throwaway self-signed
// certificates, and the cost measured is the handshake, not the trust decision.
func clientTLS(alpn ...string) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: alpn}
}
