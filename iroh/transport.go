//go:build cgo && !noiroh

package iroh

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Transport is one bound iroh endpoint: a connection source for endpoint.Endpoint and a
// client.IrohDialer.
type Transport struct {
	hv     atomic.Uint64 // the endpoint handle (ep)
	bound  []string      // the sockets the first bind got: a re-bind asks for them again
	fp     string
	opts   Options
	log    *slog.Logger
	src    *source
	logCh  chan struct{}
	addrCh chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	conns   map[*connection]struct{}
	addr    identity.IrohAddr
	addrGen uint64

	hsFailed  atomic.Uint64 // the crate's failed-handshake count last reported
	rebinding bool          // a re-bind is under way (t.mu)
}

var _ client.IrohDialer = (*Transport)(nil)

// Version is the linked iroh crate's version.
func Version() string { return cIrohVersion() }

// ABIVersion is the C ABI version the linked archive implements.
func ABIVersion() uint32 { return cABIVersion() }

// NativeStats are the crate's process-wide counters: live handles, pending tokens, bytes in
// chunks Go holds, refusals by reason.
func NativeStats() Stats { return cStats() }

// Bind binds an iroh endpoint with the node's key. The seed crosses to the crate once; the
// endpoint's id is checked against the key.
func Bind(ctx context.Context, o Options) (*Transport, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := thePoller.acquire(); err != nil {
		return nil, err
	}
	t, err := bind(ctx, o)
	if err != nil {
		thePoller.releaseUser()
		return nil, err
	}
	return t, nil
}

func relayCode(m RelayMode) uint32 {
	switch m {
	case RelayCustom:
		return 1
	case RelayN0:
		return 2
	}
	return 0
}

func clampU32(v int64, def uint32) uint32 {
	switch {
	case v < 0:
		return ^uint32(0)
	case v == 0:
		return def
	case v > int64(^uint32(0)):
		return ^uint32(0)
	}
	return uint32(v)
}

// bindEndpoint binds an endpoint with o on binds and checks its id is o.Key's.
func bindEndpoint(ctx context.Context, o Options, binds []string) (h uint64, id [32]byte, err error) {
	l := o.Limits.WithDefaults()
	maxConns := int64(l.MaxConnections)
	if maxConns > 0 {
		maxConns = max(maxConns/2, 1) // iroh's half of the node's connections (spec §5.2)
	}
	opts := bindOpts{relayMode: relayCode(o.Relay), maxBidi: clampU32(l.MaxIncomingStreams, 100),
		idleMS: clampU32(l.IdleTimeout.Milliseconds(), 30000), handshakeMS: clampU32(l.HandshakeTimeout.Milliseconds(), 10000),
		maxHandshakes: uint32(o.MaxHandshakes), backlog: uint32(o.Backlog), maxConns: clampU32(maxConns, 0),
		maxConnsPerIP: clampU32(int64(l.MaxConnectionsPerIP), 0)}
	if len(o.ALPNs) == 0 {
		opts.flags = 1 // dial-only
	}
	if lv, ok := logLevels[o.LogLevel]; ok {
		cLogLevel(lv)
	}
	seed := o.Key.PrivateKey()[:ed25519.SeedSize] // no copy: the crate copies it once and zeroizes
	cp, tok, op := issue(func(t uint64, out *completion) int32 {
		return cBind(opts, seed, lines(o.ALPNs), lines(binds), lines(o.RelayURLs), lines(o.Advertise), t, out)
	})
	if op != nil {
		cp = await(ctx, tok, op)
	}
	msg := cMessage(cp.detail)
	if cp.status != stOK {
		if cp.status == stCanceled && ctx.Err() != nil {
			return 0, id, ctx.Err()
		}
		return 0, id, fmt.Errorf("%w: %s", ErrBind, statusText(cp.status, msg))
	}
	h = cp.value
	if ctx.Err() != nil { // bound as ctx ended
		closeEndpoint(h)
		return 0, id, ctx.Err()
	}
	id, st := cEndpointID(h)
	if st != stOK || !ed25519.PublicKey(id[:]).Equal(o.Key.Public()) {
		closeEndpoint(h)
		return 0, id, fmt.Errorf("%w: the endpoint's id is not the node's key", ErrBind)
	}
	return h, id, nil
}

func bind(ctx context.Context, o Options) (*Transport, error) {
	h, id, err := bindEndpoint(ctx, o, o.BindAddrs)
	if err != nil {
		return nil, err
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	t := &Transport{fp: identity.PrefixEd25519 + hex.EncodeToString(id[:]), opts: o, log: lg,
		logCh: make(chan struct{}, 1), addrCh: make(chan struct{}, 1), stop: make(chan struct{}),
		conns: make(map[*connection]struct{})}
	t.hv.Store(h)
	t.src = &source{t: t, closed: make(chan struct{})}
	t.hsFailed.Store(cStats().HandshakeFailed)
	for _, ap := range t.BoundSockets() { // a re-bind asks for the same ports (spec §6.8)
		t.bound = append(t.bound, ap.String())
	}
	t.refreshAddr()
	thePoller.subscribeLogs(t.logCh)
	// Events recorded during the bind signalled before anyone listened, and the ring signals
	// only once until it is drained empty: drain now.
	t.logCh <- struct{}{}
	t.wg.Add(1)
	go t.background()
	t.watchAddr()
	if o.Relay == RelayN0 && len(o.ALPNs) > 0 {
		lg.Info("iroh: relay mode n0: this node's id and addresses are published to number 0's relays and DNS")
	}
	return t, nil
}

// ep is the current endpoint handle (a re-bind replaces it).
func (t *Transport) ep() uint64 { return t.hv.Load() }

// Re-binding after a lost endpoint (spec iroh.md §6.8).
var (
	rebindBackoff  = client.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: true}
	rebindSamePort = 5 * time.Second // then a port still taken is given up for port 0
)

// rebind binds a new endpoint on the same key and ports after iroh lost the old one; the old
// one's connections have failed, dials meanwhile fail with ErrUnavailable and Accept waits.
func (t *Transport) rebind() {
	defer t.wg.Done()
	t.log.Warn("iroh: endpoint lost; re-binding on the same key and ports")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-t.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	// The lost endpoint's sockets close only once the crate drops it: release it first, so the
	// same ports can be bound again (meanwhile its handle answers HANDLE: dials fail with
	// ErrUnavailable, Accept waits).
	closeEndpoint(t.ep())
	binds, start := t.bound, time.Now()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(rebindBackoff.Wait(n)):
		}
		if time.Since(start) > rebindSamePort {
			binds = portZero(t.bound)
		}
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		h, _, err := bindEndpoint(bctx, t.opts, binds)
		bcancel()
		if err != nil {
			t.log.Debug("iroh: re-bind failed", "attempt", n+1, "err", err)
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			closeEndpoint(h)
			return
		}
		t.hv.Store(h)
		t.rebinding = false
		t.mu.Unlock()
		t.log.Info("iroh: re-bound", "binds", binds, "attempts", n+1)
		if t.refreshAddr() {
			select {
			case t.addrCh <- struct{}{}:
			default:
			}
		}
		t.watchAddr()
		return
	}
}

// portZero keeps the addresses of binds with port 0.
func portZero(binds []string) []string {
	out := make([]string, 0, len(binds))
	for _, b := range binds {
		if ap, err := netip.ParseAddrPort(b); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr(), 0).String())
		}
	}
	return out
}

func lines(items []string) []byte { return []byte(strings.Join(items, "\n")) }

// closeEndpoint closes and releases an endpoint handle no Transport owns.
func closeEndpoint(h uint64) {
	cp, t, o := issue(func(tok uint64, out *completion) int32 { return cEndpointClose(h, tok, out) })
	if o != nil {
		cp = await(context.Background(), t, o)
	}
	cMessage(cp.detail)
	cRelease(h)
}

// background calls OnAddr serially and drains iroh's log ring into the logger.
func (t *Transport) background() {
	defer t.wg.Done()
	buf := make([]byte, 512)
	for {
		select {
		case <-t.stop:
			t.drainLog(buf) // the close's own events
			return
		case <-t.logCh:
			t.drainLog(buf)
		case <-t.addrCh:
			if t.opts.OnAddr != nil {
				t.opts.OnAddr(t.Addr())
			}
		}
	}
}

// drainLog moves iroh's log ring into the logger until the ring is empty, which re-arms its
// signal.
func (t *Transport) drainLog(buf []byte) {
	for {
		text, level := cLogTake(buf)
		if level == 0 {
			return
		}
		t.log.Log(context.Background(), slogLevel(level), "iroh", "event", text)
	}
}

func slogLevel(l int32) slog.Level {
	switch l {
	case 1:
		return slog.LevelError
	case 2:
		return slog.LevelWarn
	case 3:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// refreshAddr reads the endpoint's relay and direct addresses; reports whether they changed.
func (t *Transport) refreshAddr() bool {
	text, gen, st := cAddrs(t.ep(), 0)
	if st != stOK {
		return false
	}
	var a identity.IrohAddr
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "relay ") && a.RelayURL == "":
			a.RelayURL = strings.TrimPrefix(l, "relay ")
		case strings.HasPrefix(l, "ip ") && len(a.Addrs) < 8:
			a.Addrs = append(a.Addrs, strings.TrimPrefix(l, "ip "))
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := gen != t.addrGen && (a.RelayURL != t.addr.RelayURL || strings.Join(a.Addrs, ",") != strings.Join(t.addr.Addrs, ","))
	t.addr, t.addrGen = a, gen
	return changed
}

// watchAddr keeps one address-watch operation pending; each completion re-reads the
// addresses, tells OnAddr when they changed, and re-arms.
func (t *Transport) watchAddr() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	gen := t.addrGen
	t.mu.Unlock()
	cp, pending := issueFunc(func(tok uint64, out *completion) int32 { return cWatch(t.ep(), gen, tok, out) }, t.onAddrChange)
	if !pending {
		t.onAddrChange(cp)
	}
}

func (t *Transport) onAddrChange(cp completion) {
	cMessage(cp.detail)
	if cp.status == stShutdown { // the endpoint was lost (or is closing)
		t.mu.Lock()
		start := !t.closed && !t.rebinding
		if start {
			t.rebinding = true
			t.wg.Add(1)
		}
		t.mu.Unlock()
		if start {
			go t.rebind()
		}
		return
	}
	if cp.status != stOK {
		return // canceled: the transport is closing
	}
	if t.refreshAddr() {
		select {
		case t.addrCh <- struct{}{}:
		default:
		}
	}
	go t.watchAddr() // not on the poller: issuing may wait for the ops lock the poller holds briefly
}

// Fingerprint is the endpoint's key, ed25519:<hex>: the node's fingerprint.
func (t *Transport) Fingerprint() string { return t.fp }

// Addr is the endpoint's relay URL and up to 8 direct addresses, as tickets carry them.
func (t *Transport) Addr() identity.IrohAddr {
	t.mu.Lock()
	defer t.mu.Unlock()
	return identity.IrohAddr{RelayURL: t.addr.RelayURL, Addrs: append([]string(nil), t.addr.Addrs...)}
}

// BoundSockets are the local UDP sockets the endpoint bound.
func (t *Transport) BoundSockets() []netip.AddrPort {
	text, _, st := cAddrs(t.ep(), 1)
	if st != stOK {
		return nil
	}
	var out []netip.AddrPort
	for _, l := range strings.Split(text, "\n") {
		if ap, err := netip.ParseAddrPort(strings.TrimPrefix(l, "ip ")); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

func (t *Transport) track(c *connection) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) forget(c *connection) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// wrap turns a connection handle into an adapter the transport tracks.
func (t *Transport) wrap(h uint64) (*connection, error) {
	c, err := newConnection(t, h)
	if err != nil {
		return nil, err
	}
	if !t.track(c) {
		_ = c.Close(conn.CodeShutdown, conn.ReasonShutdown)
		return nil, ErrClosed
	}
	if c.ctx.Err() != nil { // closed before it was tracked: onClosed's forget ran first
		t.forget(c)
	}
	return c, nil
}

// DialEndpoint dials the node fp names over iroh (client.IrohDialer). With neither a relay
// nor an address it dials by key through the relay mode's lookup (RelayN0 only).
func (t *Transport) DialEndpoint(ctx context.Context, fp string, a identity.IrohAddr, alpn string) (conn.Connection, error) {
	fail := func(kind client.DialKind, err error) (conn.Connection, error) {
		return nil, &client.DialError{Kind: kind, Transport: conn.TransportIroh, Addr: fp, Err: err}
	}
	hexKey, ok := strings.CutPrefix(fp, identity.PrefixEd25519)
	key, err := hex.DecodeString(hexKey)
	if !ok || err != nil || len(key) != ed25519.PublicKeySize {
		return fail(client.DialConfig, fmt.Errorf("%q is not an %s fingerprint", fp, identity.PrefixEd25519))
	}
	if a.RelayURL == "" && len(a.Addrs) == 0 && t.opts.Relay != RelayN0 {
		return fail(client.DialConfig, errors.New("no relay and no address: dialing by key needs relay mode n0"))
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return fail(client.DialConnect, ErrClosed)
	}
	// The crate enforces ctx's deadline itself (a CONNECT "timed out": unreachable), so only a
	// cancellation of ctx cancels the token.
	timeout := uint32(0)
	wait := ctx
	if dl, ok := ctx.Deadline(); ok {
		timeout = uint32(max(time.Until(dl).Milliseconds(), 1))
		wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		defer stop()
		defer context.AfterFunc(ctx, func() {
			if errors.Is(ctx.Err(), context.Canceled) {
				stop()
			}
		})()
		wait = wctx
	}
	cp, tok, op := issue(func(tk uint64, out *completion) int32 {
		return cConnect(t.ep(), key, []byte(alpn), []byte(a.RelayURL), lines(a.Addrs), timeout, tk, out)
	})
	if op != nil {
		cp = await(wait, tok, op)
	}
	msg := cMessage(cp.detail)
	if cp.status == stOK {
		if errors.Is(ctx.Err(), context.Canceled) {
			cConnClose(cp.value, 0, nil)
			cRelease(cp.value)
			return fail(client.DialCanceled, ctx.Err())
		}
		c, err := t.wrap(cp.value)
		if err != nil {
			return fail(client.DialConnect, err)
		}
		return c, nil
	}
	text := errors.New(statusText(cp.status, msg))
	switch cp.status {
	case stCanceled:
		if ctx.Err() == nil { // cancelled by the endpoint's close, not the caller
			return fail(client.DialCanceled, fmt.Errorf("%w: %w", ErrClosed, text))
		}
		return fail(client.DialCanceled, ctx.Err())
	case stConnect:
		if errors.Is(ctx.Err(), context.Canceled) {
			return fail(client.DialCanceled, ctx.Err())
		}
		return fail(client.DialConnect, text)
	case stPin:
		return fail(client.DialHandshake, fmt.Errorf("%w: %w", tlsconf.ErrPinMismatch, text))
	case stALPN:
		return fail(client.DialHandshake, fmt.Errorf("%w: %w", client.ErrALPNNotNegotiated, text))
	case stHandshake:
		return fail(client.DialHandshake, text)
	case stArg:
		return fail(client.DialConfig, text)
	case stShutdown, stHandle:
		return fail(client.DialConnect, fmt.Errorf("%w: %w", ErrUnavailable, text))
	}
	return fail(client.DialConnect, text)
}

// Stats counts the live connections by path (read from the crate now) and reports, through
// Options.Metrics, the inbound handshakes that failed since the last call (the crate counts
// them process-wide).
func (t *Transport) Stats() TransportStats {
	t.mu.Lock()
	conns := make([]*connection, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	relay := t.addr.RelayURL != ""
	t.mu.Unlock()
	st := TransportStats{RelayConnected: relay}
	for _, c := range conns {
		path := c.currentPath()
		switch path {
		case pathDirect:
			st.Direct++
		case pathRelay:
			st.Relayed++
		default:
			st.Unknown++
		}
	}
	t.reportHandshakeFailures()
	return st
}

// reportHandshakeFailures passes the crate's count of failed inbound handshakes, as a delta,
// to Options.Metrics.HandshakeFailed("iroh").
func (t *Transport) reportHandshakeFailures() {
	if t.opts.Metrics == nil {
		return
	}
	now := cStats().HandshakeFailed
	prev := t.hsFailed.Swap(now)
	for range min(now-prev, 1000) { // a bounded burst per call; a reset (now < prev) wraps to the cap
		t.opts.Metrics.HandshakeFailed(string(conn.TransportIroh))
	}
}

// Source is the endpoint's inbound connections, for endpoint.Endpoint.AddSource.
func (t *Transport) Source() endpoint.Source { return t.src }

// Close stops accepting, closes every connection with CodeShutdown, closes the endpoint
// (≤ 2 s) and releases every handle; the last Transport stops the poller.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	h := t.ep()
	if t.rebinding {
		h = 0 // released by rebind; a new one, if bound, is closed there
	}
	conns := make([]*connection, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	t.src.close()
	for _, c := range conns {
		_ = c.Close(conn.CodeShutdown, conn.ReasonShutdown)
	}
	if h != 0 {
		closeEndpoint(h)
	}
	// Every connection's closed-watch fires once the endpoint is closed; wait (≤ 3 s) so their
	// handles are released before the poller stops.
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-time.After(time.Until(deadline)):
		}
	}
	close(t.stop)
	t.wg.Wait()
	thePoller.unsubscribeLogs(t.logCh)
	thePoller.releaseUser()
	return nil
}

// source adapts the endpoint's accept queue to endpoint.Source.
type source struct {
	t      *Transport
	once   sync.Once
	closed chan struct{}
}

func (s *source) close() {
	s.once.Do(func() {
		close(s.closed)
		cStopAccepting(s.t.ep())
	})
}

// Accept returns the next inbound connection; before Close only ctx ends it, after Close it
// returns conn.ErrConnectionClosed.
func (s *source) Accept(ctx context.Context) (conn.Connection, error) {
	for {
		select {
		case <-s.closed:
			return nil, conn.ErrConnectionClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cp, tok, op := issue(func(t uint64, out *completion) int32 { return cAccept(s.t.ep(), t, out) })
		if op != nil {
			cp = await(ctx, tok, op)
		}
		cMessage(cp.detail)
		switch cp.status {
		case stOK:
			c, err := s.t.wrap(cp.value)
			if err != nil {
				continue
			}
			return c, nil
		case stCanceled:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		default:
			select {
			case <-s.closed:
				return nil, conn.ErrConnectionClosed
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
				// The endpoint ended without Close (spec §6.8): Accept blocks until ctx or
				// Close rather than failing the endpoint's accept loop.
			}
		}
	}
}

func (s *source) Close() error {
	s.close()
	return nil
}
