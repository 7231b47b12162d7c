package endpoint

import (
	"net"
	"testing"

	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/internal/netkey"
)

// Checklist 38: per-IP keys (IPv6 /64 shared) and the total limit across IPs.
func TestSlots(t *testing.T) {
	s := newSlots(config.Limits{MaxConnections: 5, MaxConnectionsPerIP: 2}.WithDefaults())
	key := func(ip string) netkey.Key { return netkey.FromAddr(&net.UDPAddr{IP: net.ParseIP(ip), Port: 1}) }
	var rel []func()
	for _, ip := range []string{"2001:db8::1", "2001:db8::ffff:2"} {
		r, reason := s.acquire(key(ip))
		if reason != "" {
			t.Fatalf("%s: %s", ip, reason)
		}
		rel = append(rel, r)
	}
	if _, reason := s.acquire(key("2001:db8::3")); reason != ReasonLimitIP {
		t.Fatalf("third in one /64: %q", reason)
	}
	for _, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		r, reason := s.acquire(key(ip))
		if reason != "" {
			t.Fatalf("%s: %s", ip, reason)
		}
		rel = append(rel, r)
	}
	if _, reason := s.acquire(key("203.0.113.4")); reason != ReasonLimitTotal {
		t.Fatalf("sixth in total: %q", reason)
	}
	if _, reason := s.acquire(netkey.Key{}); reason != ReasonLimitTotal {
		t.Fatal("addressless connections count towards MaxConnections")
	}
	rel[0]()
	rel[0]() // idempotent
	if _, reason := s.acquire(key("2001:db8::9")); reason != "" {
		t.Fatalf("after release: %q", reason)
	}
	unlimited := newSlots(config.Limits{MaxConnections: -1, MaxConnectionsPerIP: -1}.WithDefaults())
	for range 1000 {
		if _, r := unlimited.acquire(key("203.0.113.1")); r != "" {
			t.Fatal("negative limits must be unlimited")
		}
	}
}

// Checklist 17 (server half): no 0-RTT, no unidirectional streams, limits applied.
func TestQUICServerConfig(t *testing.T) {
	reg, err := NewRegistry(HandlerFunc{Protocol: "alknet/test"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Registry: reg, Limits: config.Limits{MaxIncomingStreams: 7, KeepAlivePeriod: -1}})
	if err != nil {
		t.Fatal(err)
	}
	qc := e.quicConfig()
	if qc.Allow0RTT || qc.MaxIncomingUniStreams != -1 || qc.MaxIncomingStreams != 7 || qc.KeepAlivePeriod != 0 ||
		qc.HandshakeIdleTimeout != config.DefaultHandshakeTimeout || qc.MaxIdleTimeout != config.DefaultIdleTimeout {
		t.Fatalf("quic config %+v", qc)
	}
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Shutdown before Run: Run starts nothing and returns nil.
func TestShutdownBeforeRun(t *testing.T) {
	reg, _ := NewRegistry(HandlerFunc{Protocol: "alknet/test"})
	e, err := New(Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ListenTCP("127.0.0.1:0", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(t.Context()); err != nil {
		t.Fatalf("Run after Shutdown = %v", err)
	}
	if _, err := e.ListenTCP("127.0.0.1:0", nil); err == nil {
		t.Fatal("ListenTCP after Shutdown succeeded")
	}
}
