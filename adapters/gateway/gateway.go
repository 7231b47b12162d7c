// Package gateway serves a node's operations over HTTP (docs/http.md §3): POST /ops/{name}
// with JSON answers or Server-Sent Events, problem+json errors, the caller's OpenAPI document
// at /openapi.json and MCP at /mcp, on the node's TCP+TLS listeners (ALPN h2 and http/1.1)
// and on a plain loopback listener.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
)

// Defaults of Options (docs/http.md §3.2).
const (
	DefaultMaxBodyBytes           = 16 << 20
	DefaultBodyTimeout            = 30 * time.Second
	DefaultWriteTimeout           = 30 * time.Second
	DefaultSSEWriteTimeout        = 60 * time.Second
	DefaultSSEKeepalive           = 15 * time.Second
	DefaultMaxInFlight            = 1024
	DefaultLoopbackMaxConnections = 256
	DefaultIdleTimeout            = 30 * time.Second
	DefaultReadHeaderTimeout      = 10 * time.Second
	DefaultMaxHeaderBytes         = 64 << 10
)

// Surfaces: the TCP+TLS route of the node's listeners, and the plain loopback listener.
const (
	SurfaceTLS      = "tls"
	SurfaceLoopback = "loopback"
)

// DocumentFunc returns the OpenAPI document for a caller on a surface (docs/http.md §4).
type DocumentFunc func(ctx context.Context, caller catalog.Caller, surface string) ([]byte, error)

// Options configure a Gateway.
type Options struct {
	Catalog catalog.Catalog
	Logger  *slog.Logger
	// TLSRoute serves h2 and http/1.1 on the node's TCP+TLS listeners (Handlers).
	TLSRoute bool
	// LoopbackListen is the plain loopback listener's address ("": none); only loopback
	// addresses are accepted.
	LoopbackListen string
	// PublicURL, when set, is the URL the document names and its host is accepted on loopback.
	PublicURL   string
	CORSOrigins []string // exact origins allowed cross-site (no "*")
	AccessLog   bool     // access lines at info instead of debug

	MaxBodyBytes           int64 // per request (413 past it); bodies held count against the node's partial-frame budget (503 past it)
	BodyTimeout            time.Duration
	WriteTimeout           time.Duration // each unary answer and /mcp write
	SSEWriteTimeout        time.Duration // each SSE write and flush
	SSEKeepalive           time.Duration
	MaxInFlight            int // calls at once, HTTP and MCP (503 past it)
	LoopbackMaxConnections int
	IdleTimeout            time.Duration
	ReadHeaderTimeout      time.Duration

	Document DocumentFunc // nil: /openapi.json is 404
	MCP      http.Handler // nil: /mcp is 404
}

// Validate reports the first bad option.
func (o Options) Validate() error {
	if o.Catalog == nil {
		return errors.New("gateway: no catalog")
	}
	if o.LoopbackListen != "" {
		if err := CheckLoopback(o.LoopbackListen); err != nil {
			return fmt.Errorf("gateway: loopback_listen: %w", err)
		}
	}
	for _, origin := range o.CORSOrigins {
		if err := CheckOrigin(origin); err != nil {
			return fmt.Errorf("gateway: cors_origins: %w", err)
		}
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("gateway: public_url %q: want an http(s) URL", o.PublicURL)
		}
	}
	return nil
}

// CheckLoopback refuses a listen address that is not a loopback IP with a port.
func CheckLoopback(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if h == "localhost" {
		return nil
	}
	if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

// CheckOrigin refuses a CORS entry that is not an exact origin (scheme://host[:port]).
func CheckOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(origin, "*") {
		return fmt.Errorf("%q is not an exact origin such as https://app.example (no *, path or query)", origin)
	}
	return nil
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.BodyTimeout, DefaultBodyTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.SSEWriteTimeout, DefaultSSEWriteTimeout)
	def(&o.SSEKeepalive, DefaultSSEKeepalive)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.LoopbackMaxConnections <= 0 {
		o.LoopbackMaxConnections = DefaultLoopbackMaxConnections
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Gateway is the HTTP front end of a node. It is a node.Addon.
type Gateway struct {
	o       Options
	srv     *http.Server
	routed  *memListener // TLS-route connections handed over by Handle
	csrf    *http.CrossOriginProtection
	publicH string // PublicURL's host, accepted on loopback

	auth     *auth.Authenticator // the node's: an anonymous TLS client's IP may be blocked
	node     *node.Node          // its dispatcher holds the node-wide byte budget
	inFlight atomic.Int64

	// base is cancelled at Shutdown: SSE streams end at once, unary calls get the drain.
	base     context.Context
	stopBase context.CancelFunc

	mu       sync.Mutex
	loopback net.Listener
	serving  sync.WaitGroup
}

var _ node.Addon = (*Gateway)(nil)

// New builds a gateway; it serves nothing until Start (loopback) and the node's listeners
// (TLS route).
func New(o Options) (*Gateway, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	g := &Gateway{o: o, routed: newMemListener(), csrf: http.NewCrossOriginProtection()}
	g.base, g.stopBase = context.WithCancel(context.Background())
	for _, origin := range o.CORSOrigins {
		if err := g.csrf.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("gateway: cors_origins %q: %w", origin, err)
		}
	}
	if o.PublicURL != "" {
		u, _ := url.Parse(o.PublicURL)
		g.publicH = u.Hostname()
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	g.srv = &http.Server{
		Handler:           g,
		Protocols:         &protocols,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		// net/http reads up to MaxHeaderBytes + 4096 before refusing: this makes it 64 KiB.
		MaxHeaderBytes: DefaultMaxHeaderBytes - 4096,
		HTTP2:          &http.HTTP2Config{MaxConcurrentStreams: 250, WriteByteTimeout: o.WriteTimeout},
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		ConnContext:    g.connContext,
	}
	return g, nil
}

// Handlers returns the TLS route's protocol handlers (h2, http/1.1), none without TLSRoute.
func (g *Gateway) Handlers(n *node.Node) ([]endpoint.ProtocolHandler, error) {
	g.auth, g.node = n.Auth, n
	if !g.o.TLSRoute {
		return nil, nil
	}
	g.serving.Go(func() { _ = g.srv.Serve(g.routed) })
	return []endpoint.ProtocolHandler{routeHandler{g, "h2"}, routeHandler{g, "http/1.1"}}, nil
}

// Start binds the loopback listener, if any.
func (g *Gateway) Start(*node.Node) error {
	if g.o.LoopbackListen == "" {
		return nil
	}
	_, err := g.ListenLoopback(g.o.LoopbackListen)
	return err
}

// ListenLoopback binds a plain HTTP listener on a loopback address and serves it.
func (g *Gateway) ListenLoopback(addr string) (net.Addr, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, fmt.Errorf("gateway: loopback listen: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway: loopback listen: %w", err)
	}
	g.mu.Lock()
	g.loopback = ln
	g.mu.Unlock()
	cl := &capListener{Listener: ln, slots: make(chan struct{}, g.o.LoopbackMaxConnections), log: g.o.Logger}
	g.serving.Go(func() { _ = g.srv.Serve(cl) })
	return ln.Addr(), nil
}

// LoopbackAddr returns the loopback listener's address (nil: none).
func (g *Gateway) LoopbackAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.loopback == nil {
		return nil
	}
	return g.loopback.Addr()
}

// Shutdown ends SSE streams at once, lets unary calls finish until ctx ends, then closes
// every connection.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopBase()
	err := g.srv.Shutdown(ctx)
	if err != nil {
		_ = g.srv.Close()
	}
	g.routed.Close()
	g.serving.Wait()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil // the connections left were closed: the drain ended
	}
	return err
}

type connInfoKey struct{}

// connInfo is what a request knows about its connection.
type connInfo struct {
	surface  string
	remote   net.Addr
	identity *auth.Identity // the connection's (TLS client certificate); nil on loopback
	failures *auth.ConnFailures
	close    func()
}

func (g *Gateway) connContext(ctx context.Context, c net.Conn) context.Context {
	switch rc := c.(type) {
	case *routedConn:
		ctx = auth.NewContext(ctx, rc.ac)
		cf := auth.NewConnFailures(nil)
		ctx = auth.WithConnFailures(ctx, cf)
		return context.WithValue(ctx, connInfoKey{}, &connInfo{surface: SurfaceTLS, remote: rc.ac.RemoteAddr, identity: rc.ac.Identity, failures: cf, close: rc.closeNow})
	case *countedConn:
		ctx = auth.NewContext(ctx, auth.Context{ALPN: "http/1.1", RemoteAddr: c.RemoteAddr()})
		cf := auth.NewLocalConnFailures(nil)
		ctx = auth.WithConnFailures(ctx, cf)
		return context.WithValue(ctx, connInfoKey{}, &connInfo{surface: SurfaceLoopback, failures: cf, close: func() { _ = rc.Conn.Close() }})
	}
	return ctx
}

func connInfoFrom(ctx context.Context) *connInfo {
	if ci, ok := ctx.Value(connInfoKey{}).(*connInfo); ok {
		return ci
	}
	return &connInfo{surface: SurfaceLoopback, close: func() {}}
}

// routeHandler is the endpoint's handler of one HTTP ALPN: each connection goes to the
// gateway's server through the in-memory listener, and Handle returns when the server is
// done with it (or the endpoint drains).
type routeHandler struct {
	g    *Gateway
	alpn string
}

func (h routeHandler) ALPN() string { return h.alpn }

func (h routeHandler) Handle(ctx context.Context, c conn.Connection, ac auth.Context) error {
	s, err := c.AcceptStream(ctx)
	if err != nil {
		return err
	}
	nc, ok := s.(net.Conn)
	if !ok {
		return errors.New("gateway: stream is not a net.Conn")
	}
	rc := &routedConn{Conn: nc, ac: ac, done: make(chan struct{}), c: c}
	if !h.g.routed.push(ctx, rc) {
		_ = nc.Close()
		return nil
	}
	select {
	case <-rc.done:
	case <-ctx.Done():
		rc.closeNow()
	case <-c.Done():
	}
	return nil
}

// routedConn is a TLS-route stream as the HTTP server's net.Conn.
type routedConn struct {
	net.Conn
	ac   auth.Context
	c    conn.Connection
	once sync.Once
	done chan struct{}
}

func (r *routedConn) Close() error {
	err := r.Conn.Close()
	r.once.Do(func() { close(r.done) })
	return err
}

func (r *routedConn) closeNow() { _ = r.Close() }

// memListener hands routed connections to http.Server.Serve.
type memListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) push(ctx context.Context, c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
	case <-ctx.Done():
	}
	return false
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "alknet" }
func (memAddr) String() string  { return "tls-route" }

// capListener closes connections past its slots at accept (loopback_max_connections).
type capListener struct {
	net.Listener
	slots  chan struct{}
	log    *slog.Logger
	logged atomic.Int64
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &countedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			_ = c.Close()
			if now := time.Now().Unix(); l.logged.Swap(now) != now {
				l.log.Warn("http loopback connection refused: too many connections", "max", cap(l.slots))
			}
		}
	}
}

// countedConn gives its slot back once closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
