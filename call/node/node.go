// Package node is an embeddable alknet/call node: operations served over QUIC and TCP+TLS by
// one key, and the client side that dials a node by ticket or by address and pin. It is what the
// alknet CLI, the benchmark and the tests build their nodes with.
//
// The transport side (key, TLS, listeners, connection limits, peers and API keys, ticket,
// shutdown) is core's host package (github.com/alkdev/alknet/core/host); this package adds the
// call dispatcher, its registrations and the protocol handler.
package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Options configure a Node. The zero value serves the built-in (node/info, node/health) and
// discovery operations with a fresh key on one free loopback port, QUIC and TCP+TLS.
type Options struct {
	Host          host.Options // key, listeners, TLS, connection limits, peers, API keys, logger
	Registrations []call.HandlerRegistration
	Demo          bool   // also serve the demo operations (call/demo)
	NoBuiltin     bool   // do not serve node/info and node/health
	NoDiscovery   bool   // do not serve services/list and services/schema
	Version       string // what node/info reports

	Limits    call.Limits      // the dispatcher's limits; SetLimits replaces them
	Conn      call.ConnOptions // each connection's options; SetLimits replaces them
	Observer  call.Observer
	Ownership call.OwnershipProvider
	Sessions  call.SessionOverlaySource

	// Peers makes the node a hub: the layers attached to it are in every root's composite and
	// its exposed imports are served from the wire (call.Options.Peers); it also serves
	// services/list-peers (admin). nil: none.
	Peers *call.PeerSet
	// OnConn is called for every alknet/call connection, inbound and dispatched links, before
	// it runs (call.ProtocolHandler.OnConn).
	OnConn func(ctx context.Context, c *call.Conn)
	// Addons add protocols and listeners in the node's lifecycle (the HTTP gateway, MCP).
	Addons []Addon
}

// Addon extends a node. Handlers are served on the endpoint after alknet/call (their ALPNs
// appear in node/info); Start runs once the listeners are bound (extra listeners such as
// a loopback HTTP port); Shutdown runs beside the endpoint's shutdown.
type Addon interface {
	Handlers(n *Node) ([]endpoint.ProtocolHandler, error)
	Start(n *Node) error
	Shutdown(ctx context.Context) error
}

// Node is a running alknet/call node.
type Node struct {
	*host.Host
	registry *call.Registry
	addons   []Addon
	disp     atomic.Pointer[call.Dispatcher]
	conn     atomic.Pointer[call.ConnOptions]
}

// Start builds the registry and dispatcher, binds the listeners and serves until Shutdown.
func Start(o Options) (*Node, error) {
	h, err := host.New(o.Host)
	if err != nil {
		return nil, err
	}
	n := &Node{Host: h}
	// stopAddons undoes the addons' Handlers (an addon's Shutdown is safe before its Start)
	// when the node does not start.
	stopAddons := func(err error) (*Node, error) {
		for _, a := range n.addons {
			_ = a.Shutdown(context.Background())
		}
		return nil, err
	}
	handlers := []endpoint.ProtocolHandler{call.ProtocolHandler{Dispatcher: n.Dispatcher, Options: func() call.ConnOptions { return *n.conn.Load() }, OnConn: o.OnConn}}
	for _, a := range o.Addons {
		n.addons = append(n.addons, a)
		hs, err := a.Handlers(n)
		if err != nil {
			return stopAddons(err)
		}
		handlers = append(handlers, hs...)
	}
	alpns := make([]string, len(handlers))
	for i, hd := range handlers {
		alpns[i] = hd.ALPN()
	}
	regs := append([]call.HandlerRegistration(nil), o.Registrations...)
	if !o.NoBuiltin {
		regs = append(regs, builtin.Registrations(builtin.NodeInfo{Fingerprint: h.Key.Fingerprint(), Version: o.Version,
			Started: time.Now(), ALPNs: alpns, Operations: func() int { return n.registry.Len() }})...)
	}
	if !o.NoDiscovery {
		regs = append(regs, call.DiscoveryRegistrations(n.Dispatcher)...)
		if o.Peers != nil {
			regs = append(regs, call.ListPeersRegistration(n.Dispatcher))
		}
	}
	if o.Demo {
		regs = append(regs, demo.Registrations(demo.Options{})...)
	}
	b := call.NewRegistryBuilder()
	for _, r := range regs {
		_ = b.Register(r) // Build reports every error
	}
	if n.registry, err = b.Build(); err != nil {
		return stopAddons(err)
	}
	d, err := call.NewDispatcher(n.registry, call.Options{Limits: o.Limits, Identities: h.Auth, Logger: o.Host.Logger,
		Observer: o.Observer, Ownership: o.Ownership, Sessions: o.Sessions, NodeFingerprint: h.Key.Fingerprint(), Peers: o.Peers})
	if err != nil {
		return stopAddons(err)
	}
	n.disp.Store(d)
	co := o.Conn
	if co.Logger == nil {
		co.Logger = o.Host.Logger
	}
	n.conn.Store(&co)
	if err := h.Start(handlers...); err != nil {
		return stopAddons(err)
	}
	for _, a := range o.Addons {
		if err := a.Start(n); err != nil {
			_ = n.Shutdown(context.Background()) // every addon and the endpoint
			return nil, err
		}
	}
	return n, nil
}

// Shutdown stops the addons and the endpoint together (listeners close, connections drain
// within the drain timeout).
func (n *Node) Shutdown(ctx context.Context) error {
	errs := make([]error, len(n.addons)+1)
	var wg sync.WaitGroup
	for i, a := range n.addons {
		wg.Go(func() { errs[i] = a.Shutdown(ctx) })
	}
	errs[len(n.addons)] = n.Host.Shutdown(ctx)
	wg.Wait()
	return errors.Join(errs...)
}

// Dispatcher returns the dispatcher new connections are served with.
func (n *Node) Dispatcher() *call.Dispatcher { return n.disp.Load() }

// Registry returns the node's operations.
func (n *Node) Registry() *call.Registry { return n.registry }

// SetLimits gives new connections other call limits and connection options (a reload); the
// node-wide budgets stay shared, connections already open keep theirs.
func (n *Node) SetLimits(l call.Limits, o call.ConnOptions) error {
	d, err := n.disp.Load().WithLimits(l)
	if err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = n.conn.Load().Logger
	}
	n.disp.Store(d)
	n.conn.Store(&o)
	return nil
}

// TicketString returns the encoded ticket (alk1…).
func (n *Node) TicketString() string {
	s, err := n.Ticket().Encode()
	if err != nil {
		return ""
	}
	return s
}

// DialOptions configure Dial and DialAddr; the zero value dials anonymously, QUIC first then
// TCP+TLS, with default connection options and nothing served to the peer.
type DialOptions struct {
	Key        *identity.NodeKey // presented as the client certificate; nil: anonymous
	Transport  conn.Transport    // conn.TransportQUIC or conn.TransportTCPTLS only; "": QUIC, then TCP+TLS
	Conn       call.ConnOptions
	Dispatcher *call.Dispatcher // what this side serves to the peer (the protocol is symmetric); nil: nothing
	Dialer     client.Dialer
	// Race, for interactive clients, races QUIC and TCP+TLS (client.DialRace: QUIC first, TCP
	// after Race.Delay or at once on a QUIC failure). nil: QUIC, and TCP+TLS only after a
	// QUIC connect failure (client.DialTicket), which long-lived links should keep.
	Race *client.RaceOptions
}

// ErrNoAddress is returned when a ticket has no address for the transports asked for.
var ErrNoAddress = errors.New("node: no address to dial")

// Dial dials the node a ticket names and returns a running Conn; Close it when done.
func Dial(ctx context.Context, ticket string, o DialOptions) (*call.Conn, error) {
	t, err := identity.ParseTicket(ticket)
	if err != nil {
		return nil, err
	}
	return DialTicket(ctx, t, o)
}

// DialTicket is Dial with a parsed ticket. Dial errors are core/client's (*client.DialError).
func DialTicket(ctx context.Context, t identity.Ticket, o DialOptions) (*call.Conn, error) {
	switch o.Transport {
	case conn.TransportQUIC:
		t.TCP = nil
	case conn.TransportTCPTLS:
		t.QUIC = nil
	case conn.TransportIroh: // only the ticket's iroh records, through o.Dialer.Iroh
		if t.Iroh == nil {
			return nil, ErrNoAddress
		}
		c, err := o.Dialer.DialIroh(ctx, t.Fingerprint, *t.Iroh, call.ALPN, tlsconf.ConnectionCredentials{LocalKey: o.Key})
		if err != nil {
			return nil, err
		}
		return run(c, o), nil
	case "":
	default:
		return nil, fmt.Errorf("node: transport %q: want %q, %q or %q", o.Transport, conn.TransportQUIC, conn.TransportTCPTLS, conn.TransportIroh)
	}
	if len(t.QUIC)+len(t.TCP) == 0 {
		return nil, ErrNoAddress
	}
	var c conn.Connection
	var err error
	if o.Race != nil {
		c, err = client.DialRace(ctx, &o.Dialer, t, call.ALPN, tlsconf.ConnectionCredentials{LocalKey: o.Key}, *o.Race)
	} else {
		c, err = client.DialTicket(ctx, &o.Dialer, t, call.ALPN, tlsconf.ConnectionCredentials{LocalKey: o.Key})
	}
	if err != nil {
		return nil, err
	}
	return run(c, o), nil
}

// DialAddr dials host:port pinning the node's fingerprint and returns a running Conn.
func DialAddr(ctx context.Context, addr, pin string, o DialOptions) (*call.Conn, error) {
	t := identity.Ticket{Fingerprint: pin, QUIC: []string{addr}, TCP: []string{addr}}
	s, err := t.Encode()
	if err != nil {
		return nil, err
	}
	return Dial(ctx, s, o)
}

func run(c conn.Connection, o DialOptions) *call.Conn {
	cc := call.NewConn(c, o.Dispatcher, o.Conn)
	cc.Start(context.Background())
	return cc
}
