package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/internal/netkey"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Errors of the endpoint's lifecycle.
var (
	ErrDrainTimeout = errors.New("endpoint: drain timeout")
	ErrState        = errors.New("endpoint: wrong state")
)

// Source yields connections from a transport the endpoint does not run itself (e.g. an iroh bridge).
type Source interface {
	Accept(ctx context.Context) (conn.Connection, error)
	Close() error
}

// Options configure an Endpoint.
type Options struct {
	Registry     *Registry           // required, non-empty
	Auth         *auth.Authenticator // nil: connections get no identity and no IP is ever blocked
	Store        *config.Store       // optional: live connections are re-checked after each reload
	Limits       config.Limits       // zero fields take the defaults
	DrainTimeout time.Duration       // 0 → 2 s; negative: no drain
	Logger       *slog.Logger        // nil → slog.Default()
	Metrics      Metrics             // optional
	EphemeralKey bool                // warn at Run that the fingerprint changes every run
}

// Endpoint accepts connections and dispatches them by ALPN.
type Endpoint struct {
	reg     *Registry
	auth    *auth.Authenticator
	store   *config.Store
	limits  config.Limits
	drain   time.Duration
	log     *slog.Logger
	metrics Metrics
	ephem   bool
	adm     *admission

	baseCtx    context.Context // parent of every Handle ctx; cancelled when shutdown begins
	cancelBase context.CancelFunc

	mu         sync.Mutex
	started    bool
	quicLns    []*quicListener
	tcpLns     []net.Listener
	sources    []Source
	handshakes map[net.Conn]struct{} // TCP sockets in their TLS handshake
	live       map[*tracked]struct{}

	shuttingDown atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
	shutdownDone chan struct{}
	unsubscribe  func()

	loops    sync.WaitGroup // accept loops, handshakes, revocation sweeps
	handlers sync.WaitGroup // Handle goroutines
	fatal    chan error
}

type quicListener struct {
	udp *net.UDPConn
	tr  *quic.Transport
	ln  *quic.Listener
}

// New validates o and returns an endpoint ready for Listen* and Run.
func New(o Options) (*Endpoint, error) {
	if o.Registry == nil || len(o.Registry.order) == 0 {
		return nil, fmt.Errorf("%w: empty registry", ErrRegistry)
	}
	lim := o.Limits.WithDefaults()
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = config.DefaultDrainTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Endpoint{
		reg: o.Registry, auth: o.Auth, store: o.Store, limits: lim, drain: o.DrainTimeout,
		log: o.Logger, metrics: o.Metrics, ephem: o.EphemeralKey,
		baseCtx: ctx, cancelBase: cancel,
		handshakes: make(map[net.Conn]struct{}), live: make(map[*tracked]struct{}),
		shutdownDone: make(chan struct{}), fatal: make(chan error, 1),
	}
	e.adm = &admission{slots: newSlots(lim), auth: o.Auth, e: e, lastLog: make(map[netkey.Key]time.Time)}
	return e, nil
}

func (e *Endpoint) quicConfig() *quic.Config {
	keepAlive := e.limits.KeepAlivePeriod
	if keepAlive < 0 {
		keepAlive = 0
	}
	return &quic.Config{
		HandshakeIdleTimeout:  e.limits.HandshakeTimeout,
		MaxIdleTimeout:        e.limits.IdleTimeout,
		KeepAlivePeriod:       keepAlive,
		MaxIncomingStreams:    e.limits.MaxIncomingStreams,
		MaxIncomingUniStreams: -1,
		Allow0RTT:             false,
	}
}

// ListenQUIC binds a UDP socket and starts (at Run) accepting QUIC connections on it.
func (e *Endpoint) ListenQUIC(addr string, tc *tls.Config) (net.Addr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.shuttingDown.Load() {
		return nil, fmt.Errorf("%w: ListenQUIC after Run", ErrState)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("endpoint: quic address %q: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("endpoint: listen quic %q: %w", addr, err)
	}
	qc := e.quicConfig()
	base := qc.Clone()
	// Limits and blocked IPs are checked before the handshake; refusing fails it.
	qc.GetConfigForClient = func(info *quic.ClientInfo) (*quic.Config, error) {
		if reason := e.adm.refuseReason(info.RemoteAddr); reason != "" {
			e.adm.refused(info.RemoteAddr, "", "", reason)
			return nil, errors.New(reason)
		}
		return base, nil
	}
	tr := &quic.Transport{Conn: udp}
	e.requireRetry(tr)
	ln, err := tr.Listen(tc, qc)
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, fmt.Errorf("endpoint: listen quic %q: %w", addr, err)
	}
	e.quicLns = append(e.quicLns, &quicListener{udp: udp, tr: tr, ln: ln})
	return udp.LocalAddr(), nil
}

// ListenTCP binds a TCP listener and starts (at Run) accepting TCP+TLS connections on it.
func (e *Endpoint) ListenTCP(addr string, tc *tls.Config) (net.Addr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.shuttingDown.Load() {
		return nil, fmt.Errorf("%w: ListenTCP after Run", ErrState)
	}
	lc := net.ListenConfig{KeepAlive: e.limits.KeepAlivePeriod}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("endpoint: listen tcp %q: %w", addr, err)
	}
	e.tcpLns = append(e.tcpLns, tlsListener{ln, tc})
	return ln.Addr(), nil
}

type tlsListener struct {
	net.Listener
	tc *tls.Config
}

// AddSource registers a connection source; its connections are dispatched like any other.
func (e *Endpoint) AddSource(s Source) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.shuttingDown.Load() {
		return fmt.Errorf("%w: AddSource after Run", ErrState)
	}
	e.sources = append(e.sources, s)
	return nil
}

// Run serves until Shutdown (returns nil) or a listener fails (starts Shutdown, returns the
// error). Cancelling ctx starts Shutdown.
func (e *Endpoint) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrState)
	}
	e.started = true
	if e.shuttingDown.Load() {
		// Shutdown came first: start nothing (its loops.Wait must not race our loops.Add).
		e.mu.Unlock()
		<-e.shutdownDone
		return nil
	}
	if e.ephem {
		e.log.Warn("ephemeral node key: the fingerprint changes every run")
	}
	if e.store != nil {
		e.unsubscribe = e.store.Subscribe(func(_, _ *config.DynamicConfig) { e.sweep() })
	}
	for _, l := range e.quicLns {
		e.loops.Add(1)
		go e.acceptQUIC(l)
	}
	for _, l := range e.tcpLns {
		e.loops.Add(1)
		go e.acceptTCP(l.(tlsListener))
	}
	for _, s := range e.sources {
		e.loops.Add(1)
		go e.acceptSource(s)
	}
	e.mu.Unlock()

	var runErr error
	select {
	case <-ctx.Done():
		_ = e.Shutdown(context.Background())
	case <-e.shutdownDone:
	case runErr = <-e.fatal:
		_ = e.Shutdown(context.Background())
	}
	<-e.shutdownDone
	return runErr
}

func (e *Endpoint) fail(err error) {
	select {
	case e.fatal <- err:
	default:
	}
}

func (e *Endpoint) acceptQUIC(l *quicListener) {
	defer e.loops.Done()
	for {
		qc, err := l.ln.Accept(context.Background())
		if err != nil {
			if !e.shuttingDown.Load() && !errors.Is(err, quic.ErrServerClosed) {
				e.log.Error("quic listener failed", "addr", l.udp.LocalAddr().String(), "err", err)
				e.fail(fmt.Errorf("endpoint: quic listener %s: %w", l.udp.LocalAddr(), err))
			}
			return
		}
		handshakeDone(qc.Context())
		c := e.withTimeouts(conn.FromQUIC(qc))
		release, reason := e.adm.admit(c.RemoteAddr(), "", c.ALPN())
		if reason != "" {
			_ = c.Close(conn.CodeLimit, conn.ReasonLimit)
			continue
		}
		e.dispatch(c, release)
	}
}

func (e *Endpoint) acceptTCP(l tlsListener) {
	defer e.loops.Done()
	delay := time.Duration(0)
	var lastWarn time.Time
	for {
		raw, err := l.Accept()
		if err != nil {
			if e.shuttingDown.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary accept errors (EMFILE, ECONNABORTED): back off 5 ms doubling to 1 s.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if time.Since(lastWarn) >= time.Minute {
				lastWarn = time.Now()
				e.log.Warn("tcp accept failed; retrying", "addr", l.Addr().String(), "err", err, "delay", delay)
			}
			select {
			case <-time.After(delay):
				continue
			case <-e.baseCtx.Done():
				return
			}
		}
		delay = 0
		release, reason := e.adm.admit(raw.RemoteAddr(), "", "")
		if reason != "" {
			_ = raw.Close()
			continue
		}
		e.mu.Lock()
		if e.shuttingDown.Load() {
			e.mu.Unlock()
			_ = raw.Close()
			release()
			return
		}
		e.handshakes[raw] = struct{}{}
		e.loops.Add(1)
		e.mu.Unlock()
		go e.handshakeTCP(raw, l.tc, release)
	}
}

func (e *Endpoint) handshakeTCP(raw net.Conn, tc *tls.Config, release func()) {
	defer e.loops.Done()
	ctx, cancel := context.WithTimeout(e.baseCtx, e.limits.HandshakeTimeout)
	tlsConn := tls.Server(raw, tc)
	err := tlsConn.HandshakeContext(ctx)
	cancel()
	e.mu.Lock()
	delete(e.handshakes, raw)
	e.mu.Unlock()
	if err != nil {
		e.metrics.HandshakeFailed(string(conn.TransportTCPTLS))
		e.log.Debug("tls handshake failed", "remote_addr", netkey.Host(raw.RemoteAddr()), "transport", string(conn.TransportTCPTLS), "err", err)
		_ = raw.Close()
		release()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	e.dispatch(e.withTimeouts(conn.FromTLS(tlsConn)), release)
}

// withTimeouts gives c the endpoint's inactivity limits.
func (e *Endpoint) withTimeouts(c conn.Connection) conn.Connection {
	idle, write := e.limits.ConnTimeouts(c.MultiStream())
	if tlsconf.IsHTTPOverTCP(c.ALPN()) {
		// The HTTP server's IdleTimeout (no active request) replaces it: an open SSE or /mcp
		// stream keeps its connection (docs/http.md §3.1), and the server sets write deadlines.
		idle, write = 0, 0
	}
	return conn.WithTimeouts(c, conn.Timeouts{Idle: idle, Write: write})
}

func (e *Endpoint) acceptSource(s Source) {
	defer e.loops.Done()
	for {
		c, err := s.Accept(e.baseCtx)
		if err != nil {
			if !e.shuttingDown.Load() {
				e.log.Error("connection source failed", "err", err)
				e.fail(fmt.Errorf("endpoint: source: %w", err))
			}
			return
		}
		e.Dispatch(c)
	}
}

// Shutdown stops accepting, cancels every Handle ctx, waits up to the drain timeout (or
// until ctx ends), closes what is left with CodeShutdown and releases the sockets. It
// returns an error wrapping ErrDrainTimeout if handlers had to be cut off. Idempotent.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		e.shutdownErr = e.shutdown(ctx)
		close(e.shutdownDone)
	})
	select {
	case <-e.shutdownDone:
		return e.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Endpoint) shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.shuttingDown.Store(true)
	if e.unsubscribe != nil {
		e.unsubscribe()
	}
	// Close errors of listeners being shut down carry no information for the caller.
	for _, l := range e.quicLns {
		_ = l.ln.Close()
	}
	for _, l := range e.tcpLns {
		_ = l.Close()
	}
	for _, s := range e.sources {
		_ = s.Close()
	}
	for raw := range e.handshakes {
		_ = raw.Close()
	}
	e.mu.Unlock()
	e.cancelBase()

	drained := make(chan struct{})
	go func() {
		e.handlers.Wait()
		close(drained)
	}()
	var timer <-chan time.Time
	if e.drain >= 0 {
		t := time.NewTimer(e.drain)
		defer t.Stop()
		timer = t.C
	} else {
		timer = closedTimeChan
	}
	cutOff := 0
	select {
	case <-drained:
	case <-timer:
		cutOff = e.closeAll()
	case <-ctx.Done():
		cutOff = e.closeAll()
	}
	if cutOff > 0 {
		// Closing their connections makes blocked reads and writes fail; give the
		// handlers a moment to return before the transports go away.
		select {
		case <-drained:
		case <-time.After(time.Second):
		}
	}
	for _, l := range e.quicLns {
		_ = l.tr.Close()
		_ = l.udp.Close()
	}
	e.loops.Wait()
	if cutOff > 0 {
		return fmt.Errorf("%w: closed %d connection(s) whose handlers did not return", ErrDrainTimeout, cutOff)
	}
	return nil
}

var closedTimeChan = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

func (e *Endpoint) closeAll() int {
	e.mu.Lock()
	live := make([]*tracked, 0, len(e.live))
	for t := range e.live {
		live = append(live, t)
	}
	e.mu.Unlock()
	for _, t := range live {
		_ = t.Close(conn.CodeShutdown, conn.ReasonShutdown)
	}
	return len(live)
}
