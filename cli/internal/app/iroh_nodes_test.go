//go:build cgo && !noiroh

package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	callnode "github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

// rfc8032Test1 is RFC 8032 §7.1 TEST 1: its public key is the node's EndpointId.
const (
	rfc8032Test1Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfc8032Test1Pub  = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)

// irohNode is a call node serving on QUIC, TCP and an iroh endpoint (relay disabled, loopback).
type irohNode struct {
	*callnode.Node
	t       *iroh.Transport
	inbound chan *call.Conn // every inbound alknet/call connection
	held    chan heldCall   // test/hold handlers as they start
	emitted atomic.Int64    // test/burst's items emitted so far
}

type heldCall struct {
	id    string
	ended chan time.Time // when the handler's ctx ended
}

func startIrohNode(t *testing.T, key *identity.NodeKey, dyn config.DynamicConfig, limits call.Limits) *irohNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := iroh.Bind(ctx, iroh.Options{Key: key, ALPNs: []string{call.ALPN}, BindAddrs: []string{"127.0.0.1:0"}, Relay: iroh.RelayDisabled})
	if err != nil {
		t.Fatal(err)
	}
	n := &irohNode{t: tr, inbound: make(chan *call.Conn, 16), held: make(chan heldCall, 16)}
	hold := call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "test/hold", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(ctx context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
			h := heldCall{id: oc.RequestID, ended: make(chan time.Time, 1)}
			n.held <- h
			<-ctx.Done()
			h.ended <- time.Now()
			return nil, ctx.Err()
		},
	}
	pad := strings.Repeat("p", 8<<10) // 400 × 8 KiB overflows the stream window and the client's buffer
	burst := call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "test/burst", Type: call.OpSubscription, Visibility: call.VisibilityExternal},
		Stream: func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
			for i := range burstItems {
				if err := emit(json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))); err != nil {
					return err
				}
				n.emitted.Add(1)
			}
			return nil
		},
	}
	admin := call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "test/admin", Type: call.OpQuery, Visibility: call.VisibilityExternal,
			AccessControl: call.AccessControl{RequiredScopes: []string{"admin"}}},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{"ok":true}`), nil
		},
	}
	a := tr.Addr()
	cn, err := callnode.Start(callnode.Options{
		Host: host.Options{Key: key, Dynamic: dyn, Logger: slog.New(slog.DiscardHandler), DrainTimeout: time.Second,
			Sources: []endpoint.Source{tr.Source()}, Iroh: &a},
		Demo: true, Version: "test", Limits: limits, Registrations: []call.HandlerRegistration{hold, burst, admin},
		OnConn: func(_ context.Context, c *call.Conn) {
			select {
			case n.inbound <- c:
			default:
			}
		},
	})
	if err != nil {
		_ = tr.Close()
		t.Fatal(err)
	}
	n.Node = cn
	t.Cleanup(func() {
		_ = cn.Shutdown(context.Background())
		_ = tr.Close()
	})
	return n
}

const burstItems = 400

// dialIroh dials n over iroh from a fresh dial-only endpoint keyed by key, serving d, by ticket.
func dialIroh(t *testing.T, n *irohNode, key *identity.NodeKey, d *call.Dispatcher) *call.Conn {
	t.Helper()
	tr := bindClient(t, key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := callnode.DialTicket(ctx, n.Ticket(), callnode.DialOptions{Key: key, Transport: conn.TransportIroh,
		Dialer: client.Dialer{Iroh: tr}, Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Two Go nodes over iroh (spec iroh.md §10.4): call-protocol.md §18 items 13, 16, 17, 20, 21,
// 25, 54, 55 and 60, by ticket and by address; each side sees the other's ed25519 fingerprint.
func TestTwoNodesOverIroh(t *testing.T) {
	seed, _ := hex.DecodeString(rfc8032Test1Seed)
	keyA, err := identity.NewNodeKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	a := startIrohNode(t, keyA, config.DynamicConfig{}, call.Limits{StreamIdleTimeout: 300 * time.Millisecond})
	if a.t.Fingerprint() != "ed25519:"+rfc8032Test1Pub || keyA.Fingerprint() != a.t.Fingerprint() {
		t.Fatalf("EndpointId %s, key %s, want ed25519:%s", a.t.Fingerprint(), keyA.Fingerprint(), rfc8032Test1Pub)
	}
	// B serves b/ping to whoever it is connected to (item 20).
	rb := call.NewRegistryBuilder()
	if err := rb.Register(call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "b/ping", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{"pong":"b"}`), nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	reg, err := rb.Build()
	if err != nil {
		t.Fatal(err)
	}
	dB, err := call.NewDispatcher(reg, call.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	b := dialIroh(t, a, keyB, dB)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var atA *call.Conn
	select {
	case atA = <-a.inbound:
	case <-ctx.Done():
		t.Fatal("A saw no inbound connection")
	}
	if got := b.Connection().RemoteFingerprint(); got != keyA.Fingerprint() || got != a.Fingerprint() {
		t.Fatalf("B sees %s, want A's key %s (its QUIC fingerprint %s)", got, keyA.Fingerprint(), a.Fingerprint())
	}
	if got := atA.Connection().RemoteFingerprint(); got != keyB.Fingerprint() {
		t.Fatalf("A sees %s, want B's key %s", got, keyB.Fingerprint())
	}
	if b.Connection().Transport() != conn.TransportIroh || atA.Connection().Transport() != conn.TransportIroh {
		t.Fatal("not an iroh connection")
	}

	t.Run("13 16 query on a raw stream", func(t *testing.T) {
		s, err := b.Connection().OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		writeFrame(t, s, `{"type":"call.requested","id":"q1","payload":{"operationId":"demo/echo","input":{"text":"hi"}}}`)
		// Answered before our FIN (16), one call.responded and no call.completed (13).
		if got := readFrame(t, s); got != `{"type":"call.responded","id":"q1","payload":{"output":{"text":"hi"}}}` {
			t.Fatalf("answer %s", got)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if rest, err := io.ReadAll(s); err != nil || len(rest) != 0 {
			t.Fatalf("after the answer: %q %v, want the callee's FIN", rest, err)
		}
		// A stream with nothing in flight is closed by the callee once idle (16).
		idle, err := b.Connection().OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		writeFrame(t, idle, `{"type":"call.requested","id":"q2","payload":{"operationId":"demo/echo","input":{"text":"x"}}}`)
		_ = readFrame(t, idle)
		_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		if rest, err := io.ReadAll(idle); err != nil || len(rest) != 0 {
			t.Fatalf("idle stream: %q %v, want the callee's FIN", rest, err)
		}
	})

	t.Run("20 the callee calls the caller on the same connection", func(t *testing.T) {
		out, err := atA.Call(ctx, "b/ping", nil)
		if err != nil || string(out) != `{"pong":"b"}` {
			t.Fatalf("A → B: %s %v", out, err)
		}
	})

	t.Run("21 three items then completed", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "demo/ticker", json.RawMessage(`{"count":3,"interval_ms":1}`))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := sub.Recv(); err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
		}
		if item, err := sub.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after three items: %s %v, want the completion", item, err)
		}
	})

	t.Run("25 a pausing consumer loses nothing", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, "test/burst", nil)
		if err != nil {
			t.Fatal(err)
		}
		var first struct{ I int }
		item, err := sub.Recv()
		if err != nil || json.Unmarshal(item, &first) != nil {
			t.Fatalf("first item: %s %v", item, err)
		}
		time.Sleep(500 * time.Millisecond) // paused: the handler's emit blocks on flow control
		if e := a.emitted.Load(); e >= burstItems {
			t.Fatalf("the handler emitted all %d items while the consumer paused", e)
		}
		last := first
		for i := 1; i < burstItems; i++ {
			item, err := sub.Recv()
			if err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
			if err := json.Unmarshal(item, &last); err != nil || last.I != i {
				t.Fatalf("item %d: %s", i, item)
			}
		}
		if _, err := sub.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after %d items: %v", burstItems, err)
		}
		_ = last
	})

	t.Run("54 55 abort on a fresh stream and on the request's own", func(t *testing.T) {
		// Fresh stream: what the Go caller does when the call's context ends.
		cctx, ccancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := b.Call(cctx, "test/hold", nil); errc <- err }()
		h := <-a.held
		aborted := time.Now()
		ccancel()
		expectEnded(t, h, aborted)
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("aborted call: %v", err)
		}
		// The request's own stream.
		s, err := b.Connection().OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		writeFrame(t, s, `{"type":"call.requested","id":"own","payload":{"operationId":"test/hold","input":null}}`)
		h = <-a.held
		if h.id != "own" {
			t.Fatalf("held %q", h.id)
		}
		aborted = time.Now()
		writeFrame(t, s, `{"type":"call.aborted","id":"own","payload":{}}`)
		expectEnded(t, h, aborted)
		_ = s.CloseWrite()
		// No event carries the aborted id.
		if rest, err := io.ReadAll(s); err != nil || len(rest) != 0 {
			t.Fatalf("after the abort: %q %v", rest, err)
		}
	})

	t.Run("17 stream per call, FIN after the request", func(t *testing.T) {
		// B's Go caller against a raw responder that checks each stream.
		raw := bindRaw(t)
		c := dialRaw(t, raw, keyB)
		streams := make(chan error, 4)
		go func() {
			for range 2 {
				st, err := raw.conn(ctx).AcceptStream(ctx)
				if err != nil {
					streams <- err
					return
				}
				go func() {
					defer st.Close()
					req := readFrame(t, st)
					var e struct{ ID string }
					_ = json.Unmarshal([]byte(req), &e)
					if n, err := st.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
						streams <- fmt.Errorf("no FIN right after the request: %d %v", n, err)
						return
					}
					writeFrameErr(st, `{"type":"call.responded","id":"`+e.ID+`","payload":{"output":1}}`)
					streams <- st.CloseWrite()
				}()
			}
		}()
		for range 2 {
			if out, err := c.Call(ctx, "x/y", nil); err != nil || string(out) != "1" {
				t.Fatalf("call: %s %v", out, err)
			}
		}
		for range 2 {
			if err := <-streams; err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("by address", func(t *testing.T) {
		tr := bindClient(t, keyB)
		ia := a.t.Addr()
		c, err := tr.DialEndpoint(ctx, a.t.Fingerprint(), identity.IrohAddr{Addrs: ia.Addrs}, call.ALPN)
		if err != nil {
			t.Fatal(err)
		}
		cc := call.NewConn(c, nil, call.ConnOptions{})
		cc.Start(ctx)
		defer cc.Close()
		if out, err := cc.Call(ctx, "node/info", json.RawMessage(`{}`)); err != nil || !strings.Contains(string(out), rfc8032Test1Pub) {
			t.Fatalf("node/info by address: %s %v", out, err)
		}
	})

	t.Run("60 connection close fails pending calls and cancels handlers", func(t *testing.T) {
		for len(a.inbound) > 0 { // earlier subtests' connections
			<-a.inbound
		}
		other := dialIroh(t, a, keyB, nil)
		var atOther *call.Conn
		select {
		case atOther = <-a.inbound:
		case <-ctx.Done():
			t.Fatal("no inbound connection")
		}
		errc := make(chan error, 1)
		go func() { _, err := other.Call(ctx, "test/hold", nil); errc <- err }()
		h := <-a.held
		closed := time.Now()
		_ = atOther.Close()
		expectEnded(t, h, closed)
		err := <-errc
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != call.CodeInternal || ce.Message() != "connection closed" {
			t.Fatalf("pending call after the close: %v", err)
		}
	})
}

// expectEnded waits for a held handler's ctx to end; the spec's 100 ms is checked with slack
// for -race on two cores.
func expectEnded(t *testing.T, h heldCall, since time.Time) {
	t.Helper()
	select {
	case at := <-h.ended:
		if d := at.Sub(since); d > time.Second {
			t.Fatalf("handler %s ended %v after the abort", h.id, d)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("handler %s still running", h.id)
	}
}

// A reload that changes the peer's entry cuts its live iroh connection with CodeRevoked; wrong
// tokens on a connection without an IP are limited by the peer's fingerprint.
func TestIrohRevocationAndTokenLimits(t *testing.T) {
	keyA, _ := identity.Generate()
	keyB, _ := identity.Generate()
	keyC, _ := identity.Generate()
	token, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	dyn := config.DynamicConfig{
		Peers:      []auth.PeerEntry{{PeerID: "bob", Fingerprints: []string{keyB.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}},
		APIKeys:    []auth.APIKeyEntry{{Prefix: token[:8], Hash: hash, Scopes: []string{"admin"}}},
		RateLimits: auth.RateLimits{FailuresPerMinute: 1, FailureBurst: 3},
	}
	a := startIrohNode(t, keyA, dyn, call.Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("revocation", func(t *testing.T) {
		b := dialIroh(t, a, keyB, nil)
		if _, err := b.Call(ctx, "demo/echo", json.RawMessage(`{"text":"x"}`)); err != nil {
			t.Fatal(err)
		}
		next := dyn
		next.Peers = []auth.PeerEntry{{PeerID: "bob", Fingerprints: []string{keyB.Fingerprint()}, Scopes: []string{"read", "write"}, Enabled: true}}
		begin := time.Now()
		if err := a.Store.Reload(next); err != nil {
			t.Fatal(err)
		}
		select {
		case <-b.Connection().Done():
		case <-time.After(3 * time.Second):
			t.Fatal("the revoked iroh connection lives on")
		}
		if d := time.Since(begin); d > 2*time.Second {
			t.Fatalf("revocation took %v", d)
		}
		_, err := b.Connection().AcceptStream(ctx)
		var ce *conn.CloseError
		if !errors.As(err, &ce) || ce.Code != conn.CodeRevoked {
			t.Fatalf("close error %v, want CodeRevoked", err)
		}
		if err := a.Store.Reload(dyn); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("failed tokens per fingerprint", func(t *testing.T) {
		c := dialIroh(t, a, keyC, nil)
		for i := range 3 {
			_, err := c.Call(ctx, "test/admin", nil, call.WithAuthToken("alk_wrongwrongwrongwrong"))
			var ce *call.Error
			if !errors.As(err, &ce) || ce.Code() != call.CodeForbidden {
				t.Fatalf("wrong token %d: %v", i, err)
			}
		}
		if !a.Auth.BlockedPeer(auth.Context{Fingerprint: keyC.Fingerprint(), ALPN: call.ALPN}) {
			t.Fatal("C's fingerprint is not blocked after its failures")
		}
		// A new connection with C's key is refused; another key on the same address is not.
		tr := bindClient(t, keyC)
		cn, err := tr.DialEndpoint(ctx, a.t.Fingerprint(), a.t.Addr(), call.ALPN)
		if err == nil {
			select {
			case <-cn.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("a blocked fingerprint's new connection was kept open")
			}
		}
		d := dialIroh(t, a, keyB, nil)
		if _, err := d.Call(ctx, "test/admin", nil, call.WithAuthToken(token)); err != nil {
			t.Fatalf("another key after C's failures: %v", err)
		}
	})
}

func bindClient(t *testing.T, key *identity.NodeKey) *iroh.Transport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := iroh.Bind(ctx, iroh.Options{Key: key, BindAddrs: []string{"127.0.0.1:0"}, Relay: iroh.RelayDisabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// rawPeer is an iroh endpoint that accepts one alknet/call connection and hands it to the test.
type rawPeer struct {
	t     *iroh.Transport
	conns chan conn.Connection
	got   conn.Connection
}

func bindRaw(t *testing.T) *rawPeer {
	t.Helper()
	key, _ := identity.Generate()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := iroh.Bind(ctx, iroh.Options{Key: key, ALPNs: []string{call.ALPN}, BindAddrs: []string{"127.0.0.1:0"}, Relay: iroh.RelayDisabled})
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: tr, conns: make(chan conn.Connection, 1)}
	actx, acancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := tr.Source().Accept(actx)
		if err == nil {
			p.conns <- c
		}
	}()
	t.Cleanup(func() {
		acancel()
		<-done
		if p.got != nil {
			_ = p.got.Close(0, "")
		}
		_ = tr.Close()
	})
	return p
}

func (p *rawPeer) conn(ctx context.Context) conn.Connection {
	if p.got == nil {
		select {
		case p.got = <-p.conns:
		case <-ctx.Done():
			return nil
		}
	}
	return p.got
}

func dialRaw(t *testing.T, p *rawPeer, key *identity.NodeKey) *call.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := bindClient(t, key)
	c, err := tr.DialEndpoint(ctx, p.t.Fingerprint(), p.t.Addr(), call.ALPN)
	if err != nil {
		t.Fatal(err)
	}
	cc := call.NewConn(c, nil, call.ConnOptions{StreamPerCall: true}) // item 17's strategy
	cc.Start(context.Background())
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func writeFrameErr(w io.Writer, body string) error {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

func writeFrame(t *testing.T, w io.Writer, body string) {
	t.Helper()
	if err := writeFrameErr(w, body); err != nil {
		t.Fatal(err)
	}
}

func readFrame(t *testing.T, r io.Reader) string {
	t.Helper()
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		t.Errorf("frame prefix: %v", err)
		return ""
	}
	body := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Errorf("frame body: %v", err)
		return ""
	}
	return string(bytes.TrimSpace(body))
}
