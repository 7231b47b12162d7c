// Package host runs the transport side of a node in one value: its key, the auth store and
// Authenticator, TLS, the endpoint with its protocol handlers, QUIC and TCP+TLS listeners, the
// ticket that reaches them, and graceful shutdown. It is protocol-neutral: the call module's
// node package (github.com/alkdev/alknet/call/node) serves alknet/call with it, and core's own
// tests serve test protocols. Neighbours: identity (keys, tickets), tlsconf, endpoint, auth,
// config.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Options configure a Host; the zero value is a key-mode host with a fresh (ephemeral) key,
// listening for QUIC and TCP+TLS on one free loopback port, with default limits and no peers.
type Options struct {
	Key *identity.NodeKey // nil: a fresh key; the fingerprint then changes every run
	// Listen lists "host:port" addresses, each served over QUIC (UDP) and TCP+TLS. Port 0 picks
	// one free port number for both transports of that address. nil: ["127.0.0.1:0"].
	Listen        []string
	NoQUIC, NoTCP bool
	// Advertise lists the addresses put in the ticket; nil: every bound address (a wildcard
	// host becomes 127.0.0.1, with a warning).
	Advertise     []string
	TLS           tlsconf.ServerOptions // zero: key mode
	Limits        config.Limits
	DrainTimeout  time.Duration        // 0: 2 s; negative: none
	Dynamic       config.DynamicConfig // peers, API keys, failed-auth limits; reloaded with Store
	Logger        *slog.Logger         // nil: slog.Default()
	Metrics       endpoint.Metrics     // nil: none
	OnAuthAttempt func(result string)  // every audited authentication attempt (metrics)
	// Sources are extra connection sources (the iroh module's Transport.Source), added to the
	// endpoint once the listeners are bound; Iroh is the address the ticket then carries.
	Sources []endpoint.Source
	Iroh    *identity.IrohAddr
}

// Host is a node's transport side. New prepares it (key, store, Authenticator); Start binds the
// listeners and serves handlers until Shutdown.
type Host struct {
	Key   *identity.NodeKey
	Store *config.Store
	Auth  *auth.Authenticator

	o        Options
	log      *slog.Logger
	tls      *tlsconf.Server
	ep       *endpoint.Endpoint
	quic     []net.Addr
	tcp      []net.Addr
	ticketMu sync.Mutex // SetIroh rewrites the ticket while it is read
	ticket   identity.Ticket
	runDone  chan struct{}
	runErr   error
	stopOnce sync.Once
}

// ErrStarted is returned by Start on a host that already started.
var ErrStarted = errors.New("host: already started")

// New validates o and prepares the host's key, config store and Authenticator.
func New(o Options) (*Host, error) {
	h := &Host{Key: o.Key, o: o, log: o.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.Key == nil {
		k, err := identity.Generate()
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		h.Key = k
	}
	if len(h.o.Listen) == 0 {
		h.o.Listen = []string{"127.0.0.1:0"}
	}
	if o.NoQUIC && o.NoTCP {
		return nil, errors.New("host: NoQUIC and NoTCP: nothing to listen on")
	}
	var err error
	if h.Store, err = config.NewStore(o.Dynamic); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h.Auth = auth.NewAuthenticator(h.Store.Provider(), auth.AuthenticatorOptions{
		Limits: h.Store.RateLimits, Logger: h.log, OnAttempt: o.OnAuthAttempt})
	return h, nil
}

// Start builds TLS and the endpoint for handlers, binds every listener and serves in the
// background until Shutdown (or a listener fails: Done closes, Err says why).
func (h *Host) Start(handlers ...endpoint.ProtocolHandler) error {
	if h.ep != nil {
		return ErrStarted
	}
	reg, err := endpoint.NewRegistry(handlers...)
	if err != nil {
		return err
	}
	if h.tls, err = tlsconf.NewServer(h.o.TLS, h.Key, reg.ALPNs()); err != nil {
		return fmt.Errorf("host: tls: %w", err)
	}
	h.ep, err = endpoint.New(endpoint.Options{Registry: reg, Auth: h.Auth, Store: h.Store, Limits: h.o.Limits,
		DrainTimeout: h.o.DrainTimeout, Logger: h.log, Metrics: h.o.Metrics, EphemeralKey: h.o.Key == nil})
	if err != nil {
		_ = h.tls.Close()
		return err
	}
	for _, addr := range h.o.Listen {
		if err := h.listen(addr); err != nil {
			_ = h.ep.Shutdown(context.Background())
			_ = h.tls.Close()
			return err
		}
	}
	for _, s := range h.o.Sources {
		if err := h.ep.AddSource(s); err != nil {
			_ = h.ep.Shutdown(context.Background())
			_ = h.tls.Close()
			return err
		}
	}
	h.ticket = h.makeTicket()
	if h.o.Iroh != nil {
		a := identity.IrohAddr{RelayURL: h.o.Iroh.RelayURL, Addrs: slices.Clone(h.o.Iroh.Addrs)}
		h.ticket.Iroh = &a
	}
	h.runDone = make(chan struct{})
	go func() {
		h.runErr = h.ep.Run(context.Background())
		close(h.runDone)
	}()
	return nil
}

// listen binds addr for the host's transports; port 0 gets the same free number for both.
func (h *Host) listen(addr string) error {
	hostPart, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("host: listen %q: %w", addr, err)
	}
	if port == "0" && !h.o.NoQUIC && !h.o.NoTCP {
		p, err := freePortPair(hostPart)
		if err != nil {
			return err
		}
		addr = net.JoinHostPort(hostPart, strconv.Itoa(p))
	}
	if !h.o.NoQUIC {
		a, err := h.ep.ListenQUIC(addr, h.tls.QUIC())
		if err != nil {
			return err
		}
		h.quic = append(h.quic, a)
	}
	if !h.o.NoTCP {
		a, err := h.ep.ListenTCP(addr, h.tls.TCP())
		if err != nil {
			return err
		}
		h.tcp = append(h.tcp, a)
	}
	return nil
}

// freePortPair finds a port number free for both TCP and UDP on host.
func freePortPair(host string) (int, error) {
	var lastErr error
	for range 20 {
		tl, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("host: listen %q: %w", host, err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		_ = tl.Close()
		if err == nil {
			_ = ul.Close()
			return port, nil
		}
		lastErr = err
	}
	return 0, fmt.Errorf("host: no port free for both TCP and UDP on %q: %w", host, lastErr)
}

func (h *Host) makeTicket() identity.Ticket {
	t := identity.Ticket{Fingerprint: h.Fingerprint()}
	if len(h.o.Advertise) > 0 {
		if !h.o.NoQUIC {
			t.QUIC = slices.Clone(h.o.Advertise)
		}
		if !h.o.NoTCP {
			t.TCP = slices.Clone(h.o.Advertise)
		}
		return t
	}
	advertised := func(a net.Addr) string {
		host, port, _ := net.SplitHostPort(a.String())
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			h.log.Warn("wildcard listener without advertised addresses: the ticket advertises 127.0.0.1", "addr", a.String())
			return net.JoinHostPort("127.0.0.1", port)
		}
		return a.String()
	}
	for _, a := range h.quic {
		t.QUIC = append(t.QUIC, advertised(a))
	}
	for _, a := range h.tcp {
		t.TCP = append(t.TCP, advertised(a))
	}
	return t
}

// Fingerprint is what clients pin: the key's fingerprint in key mode, the certificate's in x509
// and ACME modes (known after Start).
func (h *Host) Fingerprint() string {
	if h.tls != nil {
		return h.tls.Fingerprint()
	}
	return h.Key.Fingerprint()
}

// QUICAddrs and TCPAddrs are the bound listener addresses (after Start).
func (h *Host) QUICAddrs() []net.Addr { return slices.Clone(h.quic) }

// TCPAddrs returns the bound TCP+TLS listener addresses (after Start).
func (h *Host) TCPAddrs() []net.Addr { return slices.Clone(h.tcp) }

// Ticket reaches the node: its fingerprint and advertised addresses (after Start).
func (h *Host) Ticket() identity.Ticket {
	h.ticketMu.Lock()
	defer h.ticketMu.Unlock()
	t := h.ticket
	t.QUIC, t.TCP = slices.Clone(t.QUIC), slices.Clone(t.TCP)
	if t.Iroh != nil {
		a := identity.IrohAddr{RelayURL: t.Iroh.RelayURL, Addrs: slices.Clone(t.Iroh.Addrs)}
		t.Iroh = &a
	}
	return t
}

// SetIroh replaces the ticket's iroh records (the iroh endpoint's addresses changed).
func (h *Host) SetIroh(a identity.IrohAddr) {
	a.Addrs = slices.Clone(a.Addrs)
	h.ticketMu.Lock()
	h.ticket.Iroh = &a
	h.ticketMu.Unlock()
}

// Credentials pin this host, presenting key (nil: anonymous): what a client dials it with.
func (h *Host) Credentials(key *identity.NodeKey) tlsconf.ConnectionCredentials {
	return tlsconf.ConnectionCredentials{RemotePin: h.Fingerprint(), LocalKey: key}
}

// Endpoint returns the endpoint (after Start), for what Host does not wrap.
func (h *Host) Endpoint() *endpoint.Endpoint { return h.ep }

// Done is closed once the host stopped serving: after Shutdown, or when a listener failed.
func (h *Host) Done() <-chan struct{} { return h.runDone }

// Err returns why serving stopped early (a listener failed); nil after a clean Shutdown.
func (h *Host) Err() error {
	select {
	case <-h.runDone:
		return h.runErr
	default:
		return nil
	}
}

// Shutdown stops accepting, lets handlers drain (Options.DrainTimeout), closes what is left,
// and releases the sockets. Safe to call more than once, and on a host that never started.
func (h *Host) Shutdown(ctx context.Context) error {
	if h.ep == nil {
		return nil
	}
	var err error
	h.stopOnce.Do(func() {
		err = h.ep.Shutdown(ctx)
		select {
		case <-h.runDone:
		case <-ctx.Done():
		}
		_ = h.tls.Close()
	})
	return err
}
