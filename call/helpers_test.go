package call_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	callnode "github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/host"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// node is a real node serving alknet/call on loopback (call/node), or a test protocol handler
// (nodeOpts.handler, on core/host).
type node struct {
	key  *identity.NodeKey
	d    *call.Dispatcher // nil with nodeOpts.handler
	quic string
	tcp  string
}

type nodeOpts struct {
	regs    []call.HandlerRegistration
	cfg     call.Limits
	dynamic config.DynamicConfig
	dopts   call.Options             // Limits, Identities: from cfg and the ids argument
	limits  config.Limits            // endpoint limits
	log     *slog.Logger             // nil: discarded
	handler endpoint.ProtocolHandler // instead of call.ProtocolHandler (a hostile peer)
	peers   *call.PeerSet            // a hub's peer set
	onConn  func(context.Context, *call.Conn)
	demo    bool              // serve call/demo's operations (with node/* and discovery)
	key     *identity.NodeKey // the node's key; nil: a fresh one
}

func buildDispatcher(t testing.TB, o nodeOpts, ids core.IdentityProvider) *call.Dispatcher {
	t.Helper()
	var d *call.Dispatcher
	b := call.NewRegistryBuilder()
	regs := append([]call.HandlerRegistration{}, o.regs...)
	regs = append(regs, call.DiscoveryRegistrations(func() *call.Dispatcher { return d })...)
	for _, r := range regs {
		if err := b.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	opts := o.dopts
	opts.Limits, opts.Identities = o.cfg, ids
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d, err = call.NewDispatcher(reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func startNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ho := host.Options{Key: o.key, Dynamic: o.dynamic, Limits: o.limits, Logger: log, DrainTimeout: 2 * time.Second}
	var h *host.Host
	n := &node{}
	if o.handler != nil {
		var err error
		if h, err = host.New(ho); err != nil {
			t.Fatal(err)
		}
		if err := h.Start(o.handler); err != nil {
			t.Fatal(err)
		}
	} else {
		cn, err := callnode.Start(callnode.Options{Host: ho, Registrations: o.regs, NoBuiltin: !o.demo, Demo: o.demo, Limits: o.cfg,
			Observer: o.dopts.Observer, Ownership: o.dopts.Ownership, Sessions: o.dopts.Sessions, Peers: o.peers, OnConn: o.onConn})
		if err != nil {
			t.Fatal(err)
		}
		h, n.d = cn.Host, cn.Dispatcher()
	}
	n.key, n.quic, n.tcp = h.Key, h.QUICAddrs()[0].String(), h.TCPAddrs()[0].String()
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return n
}

// connect dials n over transport, presenting key (nil: anonymous); closed at cleanup.
func (n *node) connect(t testing.TB, transport string, key *identity.NodeKey) conn.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dl := &client.Dialer{}
	creds := tlsconf.ConnectionCredentials{RemotePin: n.key.Fingerprint(), LocalKey: key}
	var c conn.Connection
	var err error
	if transport == "quic" {
		c, err = dl.DialQUIC(ctx, n.quic, call.ALPN, creds)
	} else {
		c, err = dl.DialTCP(ctx, n.tcp, call.ALPN, creds)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(0, "") })
	return c
}

// dial connects to n over transport with call/node and returns the running client Conn
// (serving d, which may be nil); closed at cleanup.
func (n *node) dial(t testing.TB, transport string, key *identity.NodeKey, d *call.Dispatcher, o call.ConnOptions) *call.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr, addr := conn.TransportQUIC, n.quic
	if transport != "quic" {
		tr, addr = conn.TransportTCPTLS, n.tcp
	}
	cc, err := callnode.DialAddr(ctx, addr, n.key.Fingerprint(), callnode.DialOptions{Key: key, Transport: tr, Conn: o, Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

var transports = []string{"quic", "tcp"}

func demoRegs() []call.HandlerRegistration {
	regs := demo.Registrations(demo.Options{})
	return append(regs, builtin.Registrations(builtin.NodeInfo{Version: "test", Started: time.Now()})...)
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func js(s string) json.RawMessage { return json.RawMessage(s) }

// pipe returns an in-memory single-stream connection pair for alknet/call.
func pipe() (conn.Connection, conn.Connection) { return conn.Pipe(call.ALPN) }

// waitFor polls cond until it holds, failing the test naming what after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
