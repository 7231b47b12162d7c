package config

import (
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Checklist 54.
func TestStaticDefaultsAndValidation(t *testing.T) {
	c := Static{QUICAddrs: []string{"127.0.0.1:0"}}.WithDefaults()
	want := Limits{MaxConnections: 10000, MaxConnectionsPerIP: 100, HandshakeTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second, MaxIncomingStreams: 100,
		SingleStreamIdleTimeout: 60 * time.Second, WriteTimeout: 30 * time.Second, RetryAbove: 64}
	if c.Limits != want || c.DrainTimeout != 2*time.Second {
		t.Fatalf("defaults: %+v drain %v", c.Limits, c.DrainTimeout)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatal(err)
	}
	bad := Static{
		QUICAddrs: []string{"nonsense"}, TCPAddrs: []string{"127.0.0.1:99999"},
		TLS:    tlsconf.ServerOptions{Mode: tlsconf.ModeX509, CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"},
		Limits: Limits{KeepAlivePeriod: 30 * time.Second, IdleTimeout: 30 * time.Second, HandshakeTimeout: -1},
	}
	err := bad.Validate(nil)
	for _, w := range []string{"quic_addrs[0]", "tcp_addrs[0]", "tls.cert_file", "tls.key_file", "keep_alive_period", "handshake_timeout"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("validation lacks %s: %v", w, err)
		}
	}
	if err := (Static{}).Validate(nil); err == nil || !strings.Contains(err.Error(), "no QUIC or TCP address") {
		t.Fatalf("empty: %v", err)
	}
	acme := Static{QUICAddrs: []string{":443"}, TLS: tlsconf.ServerOptions{Mode: tlsconf.ModeACME, ACMEAcceptTOS: true, ACMEDomains: []string{"a"}, ACMECacheDir: "d"}}
	if err := acme.Validate(nil); err == nil || !strings.Contains(err.Error(), "needs a TCP listener") {
		t.Fatalf("acme without TCP: %v", err)
	}
}

// Checklist 50, 51 (store level).
func TestStoreReload(t *testing.T) {
	fp := "ed25519:" + strings.Repeat("ab", 32)
	s, err := NewStore(DynamicConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	cancel := s.Subscribe(func(old, new *DynamicConfig) { seen = append(seen, len(new.Peers)) })
	p := s.Provider()
	if _, ok := p.FromFingerprint(t.Context(), fp); ok {
		t.Fatal("resolved before grant")
	}
	old := s.Load()
	in := DynamicConfig{Peers: []auth.PeerEntry{{PeerID: "a", Fingerprints: []string{fp}, Scopes: []string{"x"}, Enabled: true}}}
	if err := s.Reload(in); err != nil {
		t.Fatal(err)
	}
	in.Peers[0].Scopes[0] = "mutated"
	if id, ok := p.FromFingerprint(t.Context(), fp); !ok || id.Scopes[0] != "x" {
		t.Fatalf("after grant: %+v %v (Reload must deep-copy)", id, ok)
	}
	if len(old.Peers) != 0 {
		t.Fatal("old snapshot mutated")
	}
	err = s.Reload(DynamicConfig{Peers: []auth.PeerEntry{{PeerID: "a"}, {PeerID: "a"}, {PeerID: "alk_x"}}})
	if err == nil || !strings.Contains(err.Error(), "duplicate peer_id: a") || !strings.Contains(err.Error(), "peers[2].peer_id") {
		t.Fatalf("invalid reload: %v", err)
	}
	if _, ok := p.FromFingerprint(t.Context(), fp); !ok {
		t.Fatal("invalid reload replaced the snapshot")
	}
	cancel()
	_ = s.Reload(DynamicConfig{})
	if len(seen) != 1 || seen[0] != 1 {
		t.Fatalf("subscriber calls %v", seen)
	}
}
