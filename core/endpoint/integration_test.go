package endpoint_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/internal/testnode"
	"github.com/alkdev/alknet/core/tlsconf"
)

const alpn = "alknet/test"

var transports = []string{"quic", "tcp"}

func dial(ctx context.Context, transport, addr string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
	d := &client.Dialer{HandshakeTimeout: 5 * time.Second}
	if transport == "quic" {
		return d.DialQUIC(ctx, addr, alpn, c)
	}
	return d.DialTCP(ctx, addr, alpn, c)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// Checklist 10, 11, 31: identities over both transports.
func TestIdentityAcrossTransports(t *testing.T) {
	clientKey, _ := identity.Generate()
	other, _ := identity.Generate()
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}, Dynamic: &config.DynamicConfig{
		Peers: []auth.PeerEntry{{PeerID: "alice", Fingerprints: []string{clientKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}},
	}})
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx := ctxT(t, 10*time.Second)
			// A known key: identity resolved and set on the connection.
			c, err := dial(ctx, tr, n.Addr(tr), n.Pin(clientKey))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(0, "")
			if c.RemoteFingerprint() != n.Key.Fingerprint() {
				t.Fatalf("client sees %s, want %s", c.RemoteFingerprint(), n.Key.Fingerprint())
			}
			if got, err := testnode.RoundTrip(ctx, c, "hi"); err != nil || got != "hi" {
				t.Fatalf("echo %q %v", got, err)
			}
			ac := recv(t, echo.Seen, "handle")
			sc := recv(t, echo.Conns, "conn")
			if ac.Fingerprint != clientKey.Fingerprint() || ac.Identity == nil || ac.Identity.ID != "alice" || ac.ALPN != alpn || ac.RemoteAddr == nil {
				t.Fatalf("AuthContext %+v", ac)
			}
			if id, ok := sc.Identity(); !ok || id.ID != "alice" {
				t.Fatal("Connection.Identity not set")
			}
			if sc.RemoteFingerprint() != clientKey.Fingerprint() {
				t.Fatal("server-side fingerprint differs")
			}
			// No client certificate: connects, no fingerprint, no identity.
			c2, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close(0, "")
			if _, err := testnode.RoundTrip(ctx, c2, "x"); err != nil {
				t.Fatal(err)
			}
			ac = recv(t, echo.Seen, "anonymous handle")
			<-echo.Conns
			if ac.Fingerprint != "" || ac.Identity != nil {
				t.Fatalf("anonymous AuthContext %+v", ac)
			}
			// An unknown key: fingerprint seen, no identity.
			c3, err := dial(ctx, tr, n.Addr(tr), n.Pin(other))
			if err != nil {
				t.Fatal(err)
			}
			defer c3.Close(0, "")
			if _, err := testnode.RoundTrip(ctx, c3, "x"); err != nil {
				t.Fatal(err)
			}
			ac = recv(t, echo.Seen, "unknown handle")
			<-echo.Conns
			if ac.Fingerprint != other.Fingerprint() || ac.Identity != nil {
				t.Fatalf("unknown-key AuthContext %+v", ac)
			}
			// Stats: the three live connections, by transport and by the peer their key names
			// (the echo handler keeps QUIC connections only; over TCP it ends after one echo).
			st := n.E.Stats()
			if tr == "quic" && (st.Connections != 3 || st.ByTransport["quic"] != 3 || st.ByPeer["alice"] != 1 || st.ByPeer[endpoint.AnonymousPeer] != 2) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Checklist 12, 13: wrong pin and no pin fail at the handshake; no handler runs.
func TestPinFailures(t *testing.T) {
	var ran atomic.Int32
	h := endpoint.HandlerFunc{Protocol: alpn, Func: func(context.Context, conn.Connection, auth.Context) error { ran.Add(1); return nil }}
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{h}})
	wrong, _ := identity.Generate()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx := ctxT(t, 10*time.Second)
			_, err := dial(ctx, tr, n.Addr(tr), tlsconf.ConnectionCredentials{RemotePin: wrong.Fingerprint()})
			if !client.IsKind(err, client.DialHandshake) || !errors.Is(err, tlsconf.ErrPinMismatch) {
				t.Fatalf("wrong pin: %v", err)
			}
			if !strings.Contains(err.Error(), "expected "+wrong.Fingerprint()+" got "+n.Key.Fingerprint()) {
				t.Fatalf("message: %v", err)
			}
			_, err = dial(ctx, tr, n.Addr(tr), tlsconf.ConnectionCredentials{})
			if !client.IsKind(err, client.DialHandshake) {
				t.Fatalf("no pin against a key-mode node: %v", err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if ran.Load() != 0 {
		t.Fatalf("%d handlers ran", ran.Load())
	}
}

// Checklist 28, 29: unregistered ALPN fails the handshake; no ALPN over TCP is closed with
// "no handler"; the endpoint keeps serving.
func TestALPNRouting(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}})
	ctx := ctxT(t, 10*time.Second)
	d := &client.Dialer{HandshakeTimeout: 3 * time.Second}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			var err error
			if tr == "quic" {
				_, err = d.DialQUIC(ctx, n.QUIC, "alknet/other", n.Pin(nil))
			} else {
				_, err = d.DialTCP(ctx, n.TCP, "alknet/other", n.Pin(nil))
			}
			if !client.IsKind(err, client.DialHandshake) || !strings.Contains(err.Error(), "no application protocol") {
				t.Fatalf("%s: unregistered ALPN: %v", tr, err)
			}
		})
	}
	// A raw TLS client offering no ALPN completes the handshake and is closed.
	raw, err := tls.Dial("tcp", n.TCP, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Fatal("no-ALPN connection was not closed")
	}
	_ = raw.Close()
	waitFor(t, func() bool { return n.Logs.Count(`msg="no handler"`) == 1 }, "no handler log")
	if !strings.Contains(n.Logs.String(), `msg="no handler" alpn="" remote_addr=127.0.0.1`) {
		t.Fatalf("log: %s", n.Logs.String())
	}
	select {
	case <-echo.Seen:
		t.Fatal("a handler ran for the no-ALPN connection")
	default:
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
			if err != nil {
				t.Fatalf("%s after refusals: %v", tr, err)
			}
			if got, err := testnode.RoundTrip(ctx, c, "still"); err != nil || got != "still" {
				t.Fatalf("%s: %q %v", tr, got, err)
			}
			_ = c.Close(0, "")
		})
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Checklist 30: an acme-tls/1 connection is closed with "acme done"; no handler runs.
func TestACMEGuard(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}})
	a, b := conn.Pipe(tlsconf.ACMEALPN)
	n.E.Dispatch(a)
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("acme connection not closed")
	}
	if n.Logs.Count("no handler") != 0 || n.Logs.Count("acme challenge answered") != 1 {
		t.Fatalf("logs: %s", n.Logs.String())
	}
	select {
	case <-echo.Seen:
		t.Fatal("handler ran")
	default:
	}
}

// Checklist 32, 33: a blocked handler and a panicking handler affect nothing else.
func TestHandlerIsolation(t *testing.T) {
	var calls atomic.Int32
	block := make(chan struct{})
	h := endpoint.HandlerFunc{Protocol: alpn, Func: func(ctx context.Context, c conn.Connection, ac auth.Context) error {
		switch calls.Add(1) {
		case 1:
			select { // blocks until the test ends
			case <-block:
			case <-ctx.Done():
			}
			return nil
		case 2:
			panic("boom")
		}
		return testnode.NewEcho(alpn).Handle(ctx, c, ac)
	}}
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{h}})
	defer close(block)
	for _, tr := range transports {
		calls.Store(0)
		ctx := ctxT(t, 10*time.Second)
		blocked, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return calls.Load() == 1 }, "blocked handler")
		panicking, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-panicking.Done():
		case <-time.After(5 * time.Second):
			if tr == "quic" {
				t.Fatal("panicking handler's connection not closed")
			}
			// TCP learns of the close only by reading.
			if _, err := testnode.RoundTrip(ctx, panicking, "x"); err == nil {
				t.Fatal("panicking handler's connection still echoes")
			}
		}
		if tr == "quic" {
			_, err := panicking.AcceptStream(ctx)
			var ce *conn.CloseError
			if !errors.As(err, &ce) || ce.Code != conn.CodeInternal || ce.Reason != "internal error" || !ce.Remote {
				t.Fatalf("close error %v", err)
			}
		}
		good, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := testnode.RoundTrip(ctx, good, "ok"); err != nil || got != "ok" {
			t.Fatalf("%s third connection: %q %v", tr, got, err)
		}
		for _, c := range []conn.Connection{blocked, panicking, good} {
			_ = c.Close(0, "")
		}
	}
	logs := n.Logs.String()
	if strings.Count(logs, `msg="handler panic"`) != 2 || !strings.Contains(logs, "value=boom") || !strings.Contains(logs, "goroutine") {
		t.Fatalf("panic logs: %s", logs)
	}
}

// Checklist 34, 35: a handler ignoring ctx is cut off after the drain timeout.
func TestShutdownDrainTimeout(t *testing.T) {
	started := make(chan conn.Connection, 1)
	h := endpoint.HandlerFunc{Protocol: alpn, Func: func(ctx context.Context, c conn.Connection, _ auth.Context) error {
		started <- c
		<-c.Done() // ignores ctx: returns only when its connection is closed
		return nil
	}}
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{h}, DrainTimeout: time.Second, NoTCP: true})
	ctx := ctxT(t, 10*time.Second)
	c, err := dial(ctx, "quic", n.QUIC, n.Pin(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(0, "")
	recv(t, started, "handler")
	begin := time.Now()
	err = n.E.Shutdown(ctx)
	took := time.Since(begin)
	if !errors.Is(err, endpoint.ErrDrainTimeout) {
		t.Fatalf("Shutdown = %v, want ErrDrainTimeout", err)
	}
	if took < time.Second || took > 3*time.Second {
		t.Fatalf("Shutdown took %v with a 1 s drain", took)
	}
	_, err = c.AcceptStream(ctx)
	var ce *conn.CloseError
	if !errors.As(err, &ce) || ce.Code != conn.CodeShutdown || ce.Reason != "shutdown" {
		t.Fatalf("peer saw %v", err)
	}
	if err := n.Wait(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := dial(ctx, "quic", n.QUIC, n.Pin(nil)); err == nil {
		t.Fatal("dial after shutdown succeeded")
	}
}

// Checklist 36: cooperative handlers drain before the timeout.
func TestShutdownCooperative(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}, DrainTimeout: 5 * time.Second})
	ctx := ctxT(t, 10*time.Second)
	var conns []conn.Connection
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			recv(t, echo.Seen, "handler")
		})
	}
	begin := time.Now()
	if err := n.E.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if took := time.Since(begin); took >= 5*time.Second {
		t.Fatalf("cooperative shutdown took %v", took)
	}
	for _, c := range conns {
		_ = c.Close(0, "")
	}
}

// Checklist 37: the connection over MaxConnectionsPerIP is refused (TCP before TLS, QUIC at
// the handshake) with a log line.
func TestPerIPLimit(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			// An echo per node: a shared one carried the previous subtest's late handler
			// events into this one, and recv below then returned before our handler ran.
			echo := testnode.NewEcho(alpn)
			m := &countingMetrics{}
			n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}, Limits: config.Limits{MaxConnectionsPerIP: 2}, Metrics: m})
			ctx := ctxT(t, 10*time.Second)
			var held []conn.Connection
			for range 2 {
				c, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
				recv(t, echo.Seen, "handler")
			}
			d := &client.Dialer{HandshakeTimeout: 2 * time.Second}
			var err error
			if tr == "quic" {
				_, err = d.DialQUIC(ctx, n.QUIC, alpn, n.Pin(nil))
			} else {
				_, err = d.DialTCP(ctx, n.TCP, alpn, n.Pin(nil))
			}
			if err == nil {
				t.Fatal("third connection accepted")
			}
			// A second refusal within the minute is counted but not logged again.
			if tr == "quic" {
				_, err = d.DialQUIC(ctx, n.QUIC, alpn, n.Pin(nil))
			} else {
				_, err = d.DialTCP(ctx, n.TCP, alpn, n.Pin(nil))
			}
			if err == nil {
				t.Fatal("fourth connection accepted")
			}
			if m.refused.Load() < 2 || m.accepted.Load() != 2 {
				t.Fatalf("metrics: %d refused, %d accepted", m.refused.Load(), m.accepted.Load())
			}
			if n.Logs.Count(`msg="connection refused" remote_addr=127.0.0.1 reason=limit_ip`) != 1 {
				t.Fatalf("logs: %s", n.Logs.String())
			}
			_ = held[0].Close(0, "")
			waitFor(t, func() bool {
				c, err := dial(ctx, tr, n.Addr(tr), n.Pin(nil))
				if err != nil {
					return false
				}
				defer c.Close(0, "")
				_, err = testnode.RoundTrip(ctx, c, "x")
				return err == nil
			}, "a slot after closing one connection")
			_ = held[1].Close(0, "")
		})
	}
}

// Checklist 39: a TCP client that never handshakes is closed after HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}, NoQUIC: true,
		Limits: config.Limits{HandshakeTimeout: 300 * time.Millisecond, MaxConnectionsPerIP: 1}})
	begin := time.Now() // before the server's accept, so the measured time cannot undercut its timer
	raw, err := net.Dial("tcp", n.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded")
	}
	if took := time.Since(begin); took < 300*time.Millisecond || took > 1300*time.Millisecond {
		t.Fatalf("closed after %v with a 300 ms handshake timeout", took)
	}
	ctx := ctxT(t, 5*time.Second)
	waitFor(t, func() bool {
		c, err := dial(ctx, "tcp", n.TCP, n.Pin(nil))
		if err == nil {
			_ = c.Close(0, "")
		}
		return err == nil
	}, "the slot to be freed")
}

// Checklist 47 (endpoint half): an IP blocked by failed tokens is refused before TLS.
func TestBlockedIPRefused(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo},
		Dynamic: &config.DynamicConfig{RateLimits: auth.RateLimits{FailuresPerMinute: 1, FailureBurst: 3}}})
	ac := auth.Context{ALPN: alpn, RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	for range 3 {
		if _, err := n.Auth.Token(context.Background(), ac, "alk_wrong-token"); !errors.Is(err, auth.ErrAuthFailed) {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t, 10*time.Second)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := &client.Dialer{HandshakeTimeout: 2 * time.Second}
			var err error
			if tr == "quic" {
				_, err = d.DialQUIC(ctx, n.QUIC, alpn, n.Pin(nil))
			} else {
				_, err = d.DialTCP(ctx, n.TCP, alpn, n.Pin(nil))
			}
			if err == nil {
				t.Fatalf("%s: blocked IP connected", tr)
			}
		})
	}
	logs := n.Logs.String()
	if !strings.Contains(logs, `reason=blocked`) || !strings.Contains(logs, `result=blocked`) {
		t.Fatalf("logs: %s", logs)
	}
}

// Checklist 51, 52, 53: reloads grant and revoke access on live connections.
func TestReloadGrantsAndRevokes(t *testing.T) {
	alice, _ := identity.Generate()
	bob, _ := identity.Generate()
	peer := func(id string, k *identity.NodeKey, scopes ...string) auth.PeerEntry {
		return auth.PeerEntry{PeerID: id, Fingerprints: []string{k.Fingerprint()}, Scopes: scopes, Enabled: true}
	}
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}, Dynamic: &config.DynamicConfig{
		Peers: []auth.PeerEntry{peer("bob", bob, "read")},
	}})
	ctx := ctxT(t, 20*time.Second)
	before := n.Store.Load()
	// Grant: alice is unknown, then added; the next lookup succeeds without restart.
	c, err := dial(ctx, "quic", n.QUIC, n.Pin(alice))
	if err != nil {
		t.Fatal(err)
	}
	if ac := recv(t, echo.Seen, "handler"); ac.Identity != nil {
		t.Fatal("alice known before the grant")
	}
	<-echo.Conns
	_ = c.Close(0, "")
	if err := n.Store.Reload(config.DynamicConfig{Peers: []auth.PeerEntry{peer("bob", bob, "read"), peer("alice", alice, "read")}}); err != nil {
		t.Fatal(err)
	}
	if len(before.Peers) != 1 {
		t.Fatal("an earlier snapshot changed")
	}
	conns := map[string]conn.Connection{}
	for name, k := range map[string]*identity.NodeKey{"alice": alice, "bob": bob} {
		c, err := dial(ctx, "quic", n.QUIC, n.Pin(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(0, "")
		if ac := recv(t, echo.Seen, "handler"); ac.Identity == nil || ac.Identity.ID != name {
			t.Fatalf("%s after grant: %+v", name, ac.Identity)
		}
		<-echo.Conns
		conns[name] = c
	}
	// A no-op reload closes nothing.
	if err := n.Store.Reload(*n.Store.Load()); err != nil {
		t.Fatal(err)
	}
	// Scope change for alice: her connection ends with CodeRevoked within 1 s; bob's lives.
	begin := time.Now()
	if err := n.Store.Reload(config.DynamicConfig{Peers: []auth.PeerEntry{peer("bob", bob, "read"), peer("alice", alice, "read", "write")}}); err != nil {
		t.Fatal(err)
	}
	expectRevoked(t, ctx, conns["alice"], begin)
	if got, err := testnode.RoundTrip(ctx, conns["bob"], "alive"); err != nil || got != "alive" {
		t.Fatalf("bob after alice's change: %q %v", got, err)
	}
	// Revoke: disabling bob closes his connection, and his next lookup fails.
	begin = time.Now()
	dis := peer("bob", bob, "read")
	dis.Enabled = false
	if err := n.Store.Reload(config.DynamicConfig{Peers: []auth.PeerEntry{dis}}); err != nil {
		t.Fatal(err)
	}
	expectRevoked(t, ctx, conns["bob"], begin)
	c, err = dial(ctx, "tcp", n.TCP, n.Pin(bob))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(0, "")
	if ac := recv(t, echo.Seen, "handler"); ac.Identity != nil {
		t.Fatal("disabled bob still resolves")
	}
	if n.Logs.Count(`msg="connection revoked" peer_id=alice`) != 1 || n.Logs.Count(`msg="connection revoked" peer_id=bob`) != 1 {
		t.Fatalf("logs: %s", n.Logs.String())
	}
	// Checklist 50: an invalid reload keeps the previous snapshot.
	err = n.Store.Reload(config.DynamicConfig{Peers: []auth.PeerEntry{peer("x", bob), peer("x", alice)}})
	if err == nil || !strings.Contains(err.Error(), "duplicate peer_id: x") {
		t.Fatalf("invalid reload: %v", err)
	}
	if len(n.Store.Load().Peers) != 1 || n.Store.Load().Peers[0].Enabled {
		t.Fatal("invalid reload changed the snapshot")
	}
}

func expectRevoked(t *testing.T, ctx context.Context, c conn.Connection, begin time.Time) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("connection not closed after revocation")
	}
	if took := time.Since(begin); took > 1500*time.Millisecond {
		t.Fatalf("revocation took %v", took)
	}
	_, err := c.AcceptStream(ctx)
	var ce *conn.CloseError
	if !errors.As(err, &ce) || ce.Code != conn.CodeRevoked || ce.Reason != "revoked" {
		t.Fatalf("close error %v", err)
	}
}

type countingMetrics struct {
	accepted, closed, refused, handshakeFailed, authAccept, panics, revoked atomic.Int32
}

func (m *countingMetrics) ConnAccepted(string, string) { m.accepted.Add(1) }
func (m *countingMetrics) ConnClosed(string, string)   { m.closed.Add(1) }
func (m *countingMetrics) ConnRefused(string)          { m.refused.Add(1) }
func (m *countingMetrics) HandshakeFailed(string)      { m.handshakeFailed.Add(1) }
func (m *countingMetrics) AuthResult(string)           { m.authAccept.Add(1) }
func (m *countingMetrics) HandlerPanic(string)         { m.panics.Add(1) }
func (m *countingMetrics) Revoked()                    { m.revoked.Add(1) }

// Address validation: with RetryAbove negative every QUIC connection attempt must answer a
// Retry first (RFC 9000 §8.1.2); clients that do connect as usual.
func TestQUICRetryRequired(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}, Limits: config.Limits{RetryAbove: -1}})
	ctx := ctxT(t, 5*time.Second)
	c, err := dial(ctx, "quic", n.QUIC, n.Pin(nil))
	if err != nil {
		t.Fatalf("dial through a Retry: %v", err)
	}
	defer c.Close(0, "")
	recv(t, echo.Seen, "handler")
}

// iroh spec §7 (endpoint): Dispatch refuses a connection without an IP address whose
// fingerprint is blocked, with CodeLimit; no handler runs.
func TestDispatchRefusesBlockedFingerprint(t *testing.T) {
	echo := testnode.NewEcho(alpn)
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{echo}})
	fp := "ed25519:" + strings.Repeat("ab", 32)
	ac := auth.Context{ALPN: alpn, Fingerprint: fp}
	for !n.Auth.BlockedPeer(ac) {
		_, _ = n.Auth.Token(context.Background(), ac, "alk_nope-nope-nope")
	}
	ra, rb := net.Pipe()
	defer rb.Close()
	c := conn.FromStream(ra, alpn, fp, nil)
	n.E.Dispatch(c)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked fingerprint's connection was not closed")
	}
	select {
	case <-echo.Seen:
		t.Fatal("the handler ran for a blocked fingerprint")
	default:
	}
	if n.Logs.Count("connection refused") == 0 {
		t.Fatalf("no refusal logged: %s", n.Logs.String())
	}
}
