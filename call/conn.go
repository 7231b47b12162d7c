package call

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/wire"
)

// ConnOptions configure the client side of a Conn (§15.1).
type ConnOptions struct {
	AuthToken          string        // default per-request token; never from the environment
	CallTimeout        time.Duration // default 30 s
	MaxPending         int           // outgoing requests in flight; default 1024
	SubscriptionBuffer int           // items buffered per subscription; default 32
	// The stream strategy on multi-stream connections (docs/protocol.md §4.1.2): by default queries
	// and mutations are pipelined over a pool of at most StreamReuse long-lived streams (0: 4),
	// each taking new requests while it has fewer than StreamCap in flight (0: 64); past that a
	// call opens a stream of its own. StreamPerCall opens a stream per call instead, for callees
	// that serve a stream's requests one at a time (Rust nodes). Subscriptions always get their
	// own stream. The defaults come from a sweep (docs/performance.md, ADR 0020).
	StreamReuse   int
	StreamCap     int
	StreamPerCall bool
	Logger        *slog.Logger
}

// Defaults of ConnOptions.
const (
	DefaultCallTimeout        = 30 * time.Second
	DefaultMaxPending         = 1024
	DefaultSubscriptionBuffer = 32
	DefaultStreamReuse        = 4
	DefaultStreamCap          = 64
	abortSendTimeout          = 5 * time.Second
)

func (o ConnOptions) withDefaults() ConnOptions {
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.SubscriptionBuffer <= 0 {
		o.SubscriptionBuffer = DefaultSubscriptionBuffer
	}
	if o.StreamReuse <= 0 {
		o.StreamReuse = DefaultStreamReuse
	}
	if o.StreamCap <= 0 {
		o.StreamCap = DefaultStreamCap
	}
	return o
}

// Conn speaks alknet/call over one connection, in both directions: it serves inbound
// requests against the dispatcher and issues outbound calls (§15.1).
type Conn struct {
	c   core.Connection
	d   *Dispatcher
	o   ConnOptions
	log *slog.Logger

	base   context.Context // never cancelled; carries the Conn (ConnFromContext)
	ctx    context.Context // ends when the connection ends
	cancel context.CancelFunc

	mu      sync.Mutex
	inbound map[string]*inbound
	pending map[string]*pending
	closed  bool
	overlay *Overlay
	peerSet *PeerSet // the set this Conn's overlay is attached to (guarded by mu)
	// Aborts that arrived before their request (multi-stream: the abort's fresh stream can
	// overtake the request's stream), so the request is not run when it comes; bounded FIFO.
	early      map[string]struct{}
	earlyOrder []string

	shared    *framed       // single-stream: the one stream (nil on multi-stream)
	ready     chan struct{} // closed once Run has the shared stream (or knows there is none)
	readyOnce sync.Once
	runOnce   sync.Once
	running   atomic.Bool    // Run was called
	finished  chan struct{}  // closed when Run returns
	wg        sync.WaitGroup // inbound handlers, stream readers, abort senders
	aborts    sync.WaitGroup // abort senders only (FlushAborts)

	workers *workers // runs served streams, inbound requests and response readers
	ident   atomic.Pointer[connIdentity]

	reuseMu sync.Mutex
	reuse   []*reuseStream // StreamReuse > 0

	// Entries of inbound and pending, readable without mu: how busy the single stream is
	// (batchInFlight).
	inboundN, pendingN atomic.Int32
}

// NewConn wraps c. Call Run to serve; outbound calls work once Run is running. Requests the
// peer sends are authenticated with an AuthContext taken from c (its ALPN, fingerprint,
// address and identity); ProtocolHandler passes the endpoint's instead.
func NewConn(c core.Connection, d *Dispatcher, o ConnOptions) *Conn {
	return newConn(context.Background(), c, d, o)
}

// newConn is NewConn whose requests carry parent's values (not its cancellation): the
// endpoint's AuthContext and per-connection failure limiter, so per-request tokens are
// limited and audited with the connection's address (docs/security.md).
func newConn(parent context.Context, c core.Connection, d *Dispatcher, o ConnOptions) *Conn {
	if _, ok := auth.FromContext(parent); !ok {
		ac := core.AuthContext{ALPN: c.ALPN(), Fingerprint: c.RemoteFingerprint(), RemoteAddr: c.RemoteAddr()}
		if id, ok := c.Identity(); ok {
			ac.Identity = &id
		}
		parent = auth.NewContext(parent, ac)
	}
	if d == nil {
		d = defaultDispatcher()
	}
	o = o.withDefaults()
	cn := &Conn{
		c: c, d: d, o: o, log: logger(o.Logger).With("alpn", c.ALPN()),
		inbound: map[string]*inbound{}, pending: map[string]*pending{},
		overlay: NewOverlay(), ready: make(chan struct{}), finished: make(chan struct{}),
	}
	// The connection's context carries the Conn, so handlers find it (ConnFromContext)
	// without a value context per request.
	cn.base = context.WithValue(context.WithoutCancel(parent), connKey{}, cn)
	cn.ctx, cn.cancel = context.WithCancel(cn.base)
	cn.workers = newWorkers(&cn.wg, cn.ctx.Done())
	return cn
}

// SetSubscriptionBuffer sets the items buffered per outgoing subscription (ConnOptions.
// SubscriptionBuffer) for a Conn that has not started: call it from ProtocolHandler.OnConn.
// Later calls are ignored.
func (c *Conn) SetSubscriptionBuffer(n int) {
	if n > 0 && !c.running.Load() {
		c.o.SubscriptionBuffer = n
	}
}

// SetStreamReuse pipelines this Conn's outgoing queries and mutations over at most n
// long-lived streams (ConnOptions.StreamReuse; n = 0 opens a stream per call) for a Conn that
// has not started: links between Go alknet nodes set it from ProtocolHandler.OnConn. Later
// calls are ignored.
func (c *Conn) SetStreamReuse(n int) {
	if n >= 0 && !c.running.Load() {
		c.o.StreamReuse, c.o.StreamPerCall = max(n, 1), n == 0
	}
}

// Connection returns the underlying connection.
func (c *Conn) Connection() core.Connection { return c.c }

// Import adds imported registrations to this connection's overlay (replacing by name).
func (c *Conn) Import(regs []HandlerRegistration) error { return c.overlay.Add(regs) }

// Start runs Run on a goroutine of its own (its error is dropped: the connection ended); Close
// waits for it to return.
func (c *Conn) Start(ctx context.Context) {
	c.running.Store(true)
	go func() { _ = c.Run(ctx) }()
}

// Close closes the connection and, if Run is running, waits until it has returned: pending calls
// have failed with "connection closed" and the peer's requests were aborted.
func (c *Conn) Close() error {
	err := c.c.Close(conn.CodeNormal, "")
	if c.running.Load() {
		<-c.finished
	}
	return err
}

// Done is closed when the connection has ended and Run has cleaned up.
func (c *Conn) Done() <-chan struct{} { return c.ctx.Done() }

// Run serves the connection until it ends or ctx is cancelled, then fails every pending
// call with "connection closed" and aborts every inbound handler. It returns nil when the
// connection closed, else the error that ended it.
func (c *Conn) Run(ctx context.Context) error {
	err := errors.New("call: Run called twice")
	c.runOnce.Do(func() { err = c.run(ctx) })
	return err
}

func (c *Conn) run(ctx context.Context) error {
	c.running.Store(true)
	defer close(c.finished)
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	stopWatch := c.c.AfterClose(c.cancel) // no goroutine per connection
	defer stopWatch()
	var err error
	if c.c.MultiStream() {
		c.readyOnce.Do(func() { close(c.ready) })
		err = c.acceptLoop()
	} else {
		err = c.serveShared()
	}
	c.teardown()
	c.wg.Wait()
	if errors.Is(err, conn.ErrConnectionClosed) || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// teardown fails pending calls and aborts inbound handlers; idempotent.
func (c *Conn) teardown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	pend := make([]*pending, 0, len(c.pending))
	for _, p := range c.pending {
		pend = append(pend, p)
	}
	in := make([]*inbound, 0, len(c.inbound))
	for _, i := range c.inbound {
		in = append(in, i)
	}
	c.mu.Unlock()
	c.cancel()
	c.readyOnce.Do(func() { close(c.ready) })
	for _, p := range pend {
		if c.finishPending(p, nil, errConnectionClosed(conn.ErrConnectionClosed)) {
			if stop := p.stop.Load(); stop != nil {
				(*stop)() // a reader blocked on the request's own stream returns
			}
		}
	}
	for _, i := range in {
		c.abortInbound(i.id)
	}
}

func (c *Conn) acceptLoop() error {
	for {
		st, err := c.c.AcceptStream(c.ctx)
		if err != nil {
			return err
		}
		c.wg.Add(1)
		c.workers.run(func() {
			defer c.wg.Done()
			c.serveStream(st)
		})
	}
}

// framed is one stream with its frame reader and writer (one allocation for the three).
type framed struct {
	s conn.Stream
	r wire.FrameReader
	w wire.FrameWriter
}

func (c *Conn) newFramed(s conn.Stream) *framed {
	w := &framed{}
	c.initFramed(w, s)
	return w
}

func (c *Conn) initFramed(w *framed, s conn.Stream) {
	w.s = s
	w.r.Init(s, c.d.cfg.MaxFrameSize, c.d.budget)
	w.w.Init(s, c.d.cfg.MaxFrameSize)
}

func (w *framed) send(e wire.Envelope) error { return w.w.WriteFramed(e.EncodedFrame()) }

// batchInFlight is how many requests in flight on one stream (this one included) make a
// request or an answer yield once before its write (FrameWriter.WriteYielding), so that
// others ready at the same moment share the write and the QUIC packet: one packet carrying
// many frames costs a fraction of a packet each (ADR 0021). A lone call writes at once.
const batchInFlight = 2

// sendMaybeBatched is sendStop, or with batch set a write that yields once to share it.
func (w *framed) sendMaybeBatched(e wire.Envelope, stop *atomic.Bool, batch bool) error {
	if !batch {
		return w.sendStop(e, stop)
	}
	return w.w.WriteYielding(e.EncodedFrame()[wire.PrefixLen:], stop)
}

// sendStop is send whose wait for queue room ends once stop is set (an abort).
func (w *framed) sendStop(e wire.Envelope, stop *atomic.Bool) error {
	return w.w.WriteFramedStop(e.EncodedFrame(), stop)
}

// servedStream tracks a stream the peer opened: FIN once clean EOF was read and every
// request read from it is terminal.
type servedStream struct {
	w        *framed
	framed   framed // w points here: stream, reader and writer in this one allocation
	mu       sync.Mutex
	inflight int
	eof      bool
	finDone  bool
	ids      []string // requests read from this stream and in flight
	idsBuf   [2]string
}

// requestStarted records a request read from this stream as in flight.
func (s *servedStream) requestStarted(id string) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.inflight++
	s.mu.Unlock()
}

func (s *servedStream) requestDone(id string) {
	s.mu.Lock()
	if i := slices.Index(s.ids, id); i >= 0 {
		s.ids = slices.Delete(s.ids, i, i+1)
		s.inflight--
	}
	fin := s.eof && s.inflight == 0 && !s.finDone
	if fin {
		s.finDone = true
	}
	s.mu.Unlock()
	if fin {
		_ = s.w.w.Drain() // frames queued behind another writer go out before the FIN
		_ = s.w.s.CloseWrite()
	}
}

// peerEnded records the clean end of the peer's sending side: FIN ours once every request read
// from the stream is terminal (now, if none is in flight).
func (s *servedStream) peerEnded() {
	s.mu.Lock()
	s.eof = true
	fin := s.inflight == 0 && !s.finDone
	if fin {
		s.finDone = true
	}
	s.mu.Unlock()
	if fin {
		_ = s.w.w.Drain()
		_ = s.w.s.CloseWrite()
	}
}

// serveStream reads frames from a stream the peer opened (§4.1.3).
func (c *Conn) serveStream(st conn.Stream) {
	c.d.streamOpened()
	ss := &servedStream{}
	ss.w = &ss.framed
	ss.ids = ss.idsBuf[:0]
	c.initFramed(ss.w, st)
	// A failed write ends what was read from the stream, whoever's frame it was (an answer
	// queued behind another, or batched, returned before its bytes were written).
	ss.w.w.OnError(func(err error) { c.brokenStream(ss, err) })
	c.readServed(ss)
}

// readServed is the reading loop of a served stream. A request is run by the goroutine that
// read it, once another worker has taken over the reading (leader/follower): the request
// starts without a hand-off, and the stream is still read meanwhile (more requests, aborts,
// the peer's end).
func (c *Conn) readServed(ss *servedStream) {
	handedOff := false
	defer func() {
		if !handedOff {
			ss.w.r.Discard()
			c.d.streamClosed()
		}
	}()
	st := ss.w.s
	var idle wire.IdleTimer
	idle.Init(st, &ss.w.r, c.d.cfg.StreamIdleTimeout)
	busy := func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.inflight > 0
	}
	handOff := func() {
		handedOff = true
		c.wg.Add(1)
		c.workers.run(func() {
			defer c.wg.Done()
			c.readServed(ss)
		})
	}
	for {
		idle.Arm()
		body, err := ss.w.r.ReadFrame()
		if err != nil {
			if stale, deadline := idle.Expired(err, busy); deadline {
				if !stale {
					continue // bytes arrived or requests are in flight: read on
				}
				_ = st.Close() // idle: FIN and stop reading
				return
			}
			if err == io.EOF {
				ss.peerEnded()
				return
			}
			c.brokenStream(ss, err)
			return
		}
		e, err := wire.DecodeEnvelope(body)
		if err != nil {
			c.brokenStream(ss, err)
			return
		}
		switch e.Type {
		case wire.EventRequested:
			if ss.w.r.Ended() {
				// The last frame this stream will carry (a stream per call, request and FIN
				// together): nothing is left to read, no one needs to take over.
				c.acceptRequest(e, ss.w, ss, func() {})
				ss.peerEnded()
				return
			}
			// More than one frame on this stream: a pooled stream, read in chunks from now on.
			ss.w.r.ReadAhead(readAheadSize)
			if ss.w.r.Buffered() {
				// The next request is here already: run this one on a worker and read on,
				// rather than handing the reading over for every request of a burst.
				c.acceptRequest(e, ss.w, ss, nil)
				continue
			}
			if c.acceptRequest(e, ss.w, ss, handOff) {
				return // the request ran here; the follower reads on
			}
		case wire.EventAborted:
			if c.abortInbound(e.ID) {
				c.log.Debug("request aborted by the caller", "request_id", e.ID)
			} else {
				c.rememberEarlyAbort(e.ID)
			}
		case wire.EventResponded, wire.EventCompleted, wire.EventError:
			c.log.Debug("ignoring a response event on a stream the peer opened", "type", e.Type)
		default:
			c.log.Debug("ignoring unknown event type", "type", e.Type)
		}
	}
}

// Early aborts kept per connection, and the longest id kept (UUIDs have 36 characters).
const (
	maxEarlyAborts  = 1024
	maxEarlyAbortID = 128
)

// rememberEarlyAbort records an abort for a request not (yet) in flight: on a multi-stream
// connection the abort travels on a stream of its own and may arrive before the request. The
// request, if it comes, is then not run. Ids a peer aborts without ever sending are forgotten
// oldest first.
func (c *Conn) rememberEarlyAbort(id string) {
	if len(id) == 0 || len(id) > maxEarlyAbortID {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.early == nil {
		c.early = map[string]struct{}{}
	}
	if _, ok := c.early[id]; ok {
		return
	}
	if len(c.earlyOrder) >= maxEarlyAborts {
		delete(c.early, c.earlyOrder[0])
		c.earlyOrder = c.earlyOrder[1:]
	}
	c.early[id] = struct{}{}
	c.earlyOrder = append(c.earlyOrder, id)
}

// takeEarlyAbortLocked reports (and forgets) an abort that came before request id; c.mu is held.
func (c *Conn) takeEarlyAbortLocked(id string) bool {
	if _, ok := c.early[id]; !ok {
		return false
	}
	delete(c.early, id)
	if i := slices.Index(c.earlyOrder, id); i >= 0 {
		c.earlyOrder = slices.Delete(c.earlyOrder, i, i+1)
	}
	return true
}

// brokenStream handles a malformed or truncated frame or a read error on a served stream:
// abort what was read from it, reset both directions (code 1 = protocol error).
func (c *Conn) brokenStream(ss *servedStream, err error) {
	if !errors.Is(err, conn.ErrConnectionClosed) {
		c.log.Debug("closing stream", "err", err)
	}
	ss.mu.Lock()
	ids := slices.Clone(ss.ids)
	ss.mu.Unlock()
	for _, id := range ids {
		c.abortInbound(id)
	}
	ss.w.s.Cancel(wire.CodeProtocolError)
}

// busy reports whether requests are in flight in either direction.
func (c *Conn) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inbound) > 0 || len(c.pending) > 0
}

// serveShared runs the single stream: one reader routes events of both directions (§4.3).
func (c *Conn) serveShared() error {
	st, err := c.c.AcceptStream(c.ctx)
	if err != nil {
		return err
	}
	c.shared = c.newFramed(st)
	c.shared.r.ReadAhead(readAheadSize) // every frame of the connection comes this way
	defer c.shared.r.Discard()
	c.readyOnce.Do(func() { close(c.ready) })
	// No byte for the connection's idle timeout with nothing in flight either way ends it
	// (docs/security.md: single-stream connections have no transport-level idle timeout).
	var idle wire.IdleTimer
	idle.Init(st, &c.shared.r, conn.TimeoutsOf(c.c).Idle)
	for {
		idle.Arm()
		body, err := c.shared.r.ReadFrame()
		if err != nil {
			if stale, deadline := idle.Expired(err, c.busy); deadline {
				if !stale {
					continue
				}
				c.log.Debug("closing idle connection", "idle_timeout", conn.TimeoutsOf(c.c).Idle)
				_ = c.c.Close(conn.CodeNormal, "idle")
				return conn.ErrConnectionClosed
			}
			if err != io.EOF && !errors.Is(err, conn.ErrConnectionClosed) {
				c.log.Debug("closing connection", "err", err)
			}
			_ = c.c.Close(conn.CodeNormal, "")
			return err
		}
		e, err := wire.DecodeEnvelope(body)
		if err != nil {
			c.log.Debug("malformed frame: closing connection", "err", err)
			_ = c.c.Close(conn.CodeNormal, "")
			return err
		}
		switch e.Type {
		case wire.EventRequested:
			c.acceptRequest(e, c.shared, nil, nil)
		case wire.EventResponded, wire.EventCompleted, wire.EventError:
			c.deliver(e, nil)
		case wire.EventAborted:
			if c.abortInbound(e.ID) {
				c.log.Debug("request aborted by the caller", "request_id", e.ID)
			} else {
				c.deliver(e, nil)
			}
		default:
			c.log.Debug("ignoring unknown event type", "type", e.Type)
		}
	}
}
