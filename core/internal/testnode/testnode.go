// Package testnode starts real endpoints on loopback for core's integration tests.
package testnode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Logs is a concurrency-safe log sink.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Count returns how many log lines contain s.
func (l *Logs) Count(s string) int { return strings.Count(l.String(), s) }

// Options configure a test node; zero values give a key-mode node serving Handlers on
// QUIC and TCP+TLS at 127.0.0.1 ephemeral ports.
type Options struct {
	Handlers     []endpoint.ProtocolHandler
	Key          *identity.NodeKey
	TLS          tlsconf.ServerOptions
	Limits       config.Limits
	DrainTimeout time.Duration
	Dynamic      *config.DynamicConfig
	NoQUIC       bool
	NoTCP        bool
	Metrics      endpoint.Metrics
}

// Node is a running host for a test.
type Node struct {
	Key   *identity.NodeKey
	Host  *host.Host
	E     *endpoint.Endpoint
	Store *config.Store
	Auth  *auth.Authenticator
	QUIC  string // bound address, "" if none
	TCP   string
	Logs  *Logs
}

// Start starts a node (core/host) and stops it at test cleanup.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	n := &Node{Logs: &Logs{}}
	dyn := config.DynamicConfig{}
	if o.Dynamic != nil {
		dyn = *o.Dynamic
	}
	h, err := host.New(host.Options{Key: o.Key, NoQUIC: o.NoQUIC, NoTCP: o.NoTCP, TLS: o.TLS, Limits: o.Limits,
		DrainTimeout: o.DrainTimeout, Dynamic: dyn, Metrics: o.Metrics,
		Logger: slog.New(slog.NewTextHandler(n.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(o.Handlers...); err != nil {
		t.Fatal(err)
	}
	n.Host, n.Key, n.E, n.Store, n.Auth = h, h.Key, h.Endpoint(), h.Store, h.Auth
	if a := h.QUICAddrs(); len(a) > 0 {
		n.QUIC = a[0].String()
	}
	if a := h.TCPAddrs(); len(a) > 0 {
		n.TCP = a[0].String()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return n
}

// Wait returns once the node stopped serving, with why (nil after a clean shutdown).
func (n *Node) Wait(ctx context.Context) error {
	select {
	case <-n.Host.Done():
		return n.Host.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pin returns credentials pinning this node, optionally presenting key.
func (n *Node) Pin(key *identity.NodeKey) tlsconf.ConnectionCredentials {
	return n.Host.Credentials(key)
}

// Addr returns the node's address for a transport ("quic" or "tcp").
func (n *Node) Addr(transport string) string {
	if transport == "quic" {
		return n.QUIC
	}
	return n.TCP
}

// Echo is a handler that echoes every stream it accepts and reports each connection's
// AuthContext on Seen.
type Echo struct {
	Protocol string
	Seen     chan auth.Context
	Conns    chan conn.Connection
}

// NewEcho returns an echo handler for alpn.
func NewEcho(alpn string) *Echo {
	return &Echo{Protocol: alpn, Seen: make(chan auth.Context, 64), Conns: make(chan conn.Connection, 64)}
}

// ALPN implements endpoint.ProtocolHandler.
func (h *Echo) ALPN() string { return h.Protocol }

// Handle echoes each stream until the connection or ctx ends.
func (h *Echo) Handle(ctx context.Context, c conn.Connection, ac auth.Context) error {
	select {
	case h.Seen <- ac:
	default:
	}
	select {
	case h.Conns <- c:
	default:
	}
	// Cooperative: when ctx ends, closing the connection unblocks the copies below.
	stop := context.AfterFunc(ctx, func() { _ = c.Close(conn.CodeNormal, "") })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, conn.ErrConnectionClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(s, s)
			_ = s.CloseWrite()
		}()
	}
}

// RoundTrip writes msg on a new (or the single) stream, half-closes, and reads the echo.
func RoundTrip(ctx context.Context, c conn.Connection, msg string) (string, error) {
	s, err := conn.Open(ctx, c)
	if err != nil {
		return "", err
	}
	if _, err := s.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := s.CloseWrite(); err != nil {
		return "", err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetReadDeadline(dl)
	}
	b, err := io.ReadAll(s)
	return string(b), err
}

// LoopbackAddr returns an address on loopback where nothing listens (TCP and UDP).
func LoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	_ = l.Close()
	return a
}
