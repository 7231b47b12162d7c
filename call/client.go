package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/jsonscan"

	"github.com/alkdev/alknet/call/internal/wire"
)

// readAheadSize is the read-ahead chunk of streams that carry many frames: a subscription's
// own stream on the caller's side, and single-stream connections.
const readAheadSize = 32 << 10

// pending is an outgoing request awaiting its terminal event (§15.2).
type pending struct {
	id     string
	sub    bool
	shared bool                        // on a shared stream: a full buffer aborts instead of blocking
	known  []string                    // domain codes the caller knows (WithKnownCodes)
	budget time.Time                   // a call's own deadline (timeout or ctx's, the sooner); zero for a subscription
	reuse  atomic.Pointer[reuseStream] // the long-lived stream it was sent on (StreamReuse)
	resent atomic.Bool                 // sent again after its pooled stream ended unread (§4.1.6)
	stop   atomic.Pointer[func()]      // stops the reader of its own stream (ended locally)
	items  chan json.RawMessage
	done   chan struct{}
	once   sync.Once
	out    json.RawMessage
	err    error // *Error, or io.EOF for a completed subscription
}

// CallOption adjusts one request.
type CallOption func(*callOpts)

type callOpts struct {
	via          []string // forwarders so far, this node last (forwarders only)
	id           string
	token        string
	hasToken     bool
	forwardedFor *core.Identity
	timeout      time.Duration
	known        []string
}

// WithKnownCodes declares the domain error codes the caller knows for this operation (its
// error_schemas); any other non-protocol code is reported as INTERNAL with OriginalCode set.
func WithKnownCodes(codes ...string) CallOption {
	return func(o *callOpts) { o.known = append(o.known, codes...) }
}

// WithRequestID sets the request id (default: a fresh UUID v4).
func WithRequestID(id string) CallOption { return func(o *callOpts) { o.id = id } }

// WithAuthToken sends token as this request's auth_token.
func WithAuthToken(token string) CallOption {
	return func(o *callOpts) { o.token, o.hasToken = token, true }
}

// WithForwardedFor sends the end caller's identity (forwarders only; never trusted for access).
func WithForwardedFor(id *core.Identity) CallOption { return func(o *callOpts) { o.forwardedFor = id } }

// WithTimeout overrides ConnOptions.CallTimeout for one call.
func WithTimeout(d time.Duration) CallOption { return func(o *callOpts) { o.timeout = d } }

func (c *Conn) options(opts []CallOption) callOpts {
	o := callOpts{timeout: c.o.CallTimeout}
	if c.o.AuthToken != "" {
		o.token, o.hasToken = c.o.AuthToken, true
	}
	for _, f := range opts {
		f(&o)
	}
	if o.id == "" {
		o.id = newUUID()
	}
	return o
}

// register adds a pending entry before its request is written.
func (c *Conn) register(o callOpts, sub bool, budget time.Time) (*pending, *Error) {
	id := o.id
	p := &pending{id: id, sub: sub, shared: !c.c.MultiStream(), known: o.known, budget: budget, done: make(chan struct{})}
	if sub {
		p.items = make(chan json.RawMessage, c.o.SubscriptionBuffer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, errConnectionClosed(conn.ErrConnectionClosed)
	case c.pending[id] != nil:
		return nil, &Error{code: CodeInvalidInput, message: msgDuplicateID}
	case len(c.pending) >= c.o.MaxPending:
		return nil, errRetryableInternal(msgTooManyPending)
	}
	c.pending[id] = p
	c.pendingN.Add(1)
	return p, nil
}

// endLocally ends p from this side (timeout, cancellation, Abort, Close): the request's own
// stream stops reading, and the peer is told with call.aborted.
func (c *Conn) endLocally(p *pending, err *Error) {
	// The abort is counted before the call ends, so a caller that sees the call end and then
	// waits in FlushAborts (a CLI about to exit) really waits for it.
	reserved := c.reserveAbort()
	if !c.finishPending(p, nil, err) {
		if reserved {
			c.abortDone()
		}
		return
	}
	if stop := p.stop.Load(); stop != nil {
		(*stop)()
	}
	if reserved {
		c.sendAbortReserved(p.id)
	}
}

// finishPending ends p once with (out, err) and forgets it; it reports whether this call ended it.
func (c *Conn) finishPending(p *pending, out json.RawMessage, err error) bool {
	ended := false
	p.once.Do(func() {
		p.out, p.err = out, err
		close(p.done)
		ended = true
		if rs := p.reuse.Load(); rs != nil {
			rs.release(p.id)
		}
	})
	c.mu.Lock()
	if c.pending[p.id] == p {
		delete(c.pending, p.id)
		c.pendingN.Add(-1)
	}
	c.mu.Unlock()
	return ended
}

func (c *Conn) lookupPending(id string) *pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[id]
}

// deliver routes a response event to its pending entry; events for unknown ids are ignored.
// only, when set, restricts delivery to that entry (a caller-opened stream).
func (c *Conn) deliver(e wire.Envelope, only *pending) {
	var p *pending
	switch {
	case only == nil:
		p = c.lookupPending(e.ID)
	case e.ID == only.id: // its own stream: no lookup (and lock) per subscription item
		select {
		case <-only.done: // already ended: like an id no longer pending
		default:
			p = only
		}
	}
	if p == nil {
		return
	}
	switch e.Type {
	case wire.EventResponded:
		out, ok := e.RespondedOutput()
		if !ok {
			return
		}
		if !p.sub {
			c.finishPending(p, out, nil)
			return
		}
		if p.shared {
			select {
			case p.items <- out:
			default:
				// Blocking would stall every call on the shared stream: abort instead (§15.4).
				c.sendAbort(p.id)
				c.finishPending(p, nil, errInternal(msgConsumerTooSlow, nil))
			}
			return
		}
		select { // dedicated stream: block, so flow control slows the callee
		case p.items <- out:
		case <-p.done:
		}
	case wire.EventCompleted:
		if p.sub {
			c.finishPending(p, nil, io.EOF)
		}
	case wire.EventError:
		ce, ok := decodeCallError(e.Payload)
		if !ok {
			return // undecodable: the request stays pending until it ends otherwise
		}
		c.finishPending(p, nil, p.remoteError(ce, time.Now()))
	case wire.EventAborted:
		c.finishPending(p, nil, errCancelled(nil))
	}
}

// remoteError is the error a call.error event ends p with. A TIMEOUT arriving once the call's
// own budget has passed means the callee's deadline (derived from our timeout_ms) only won the
// race against our timer: the caller reports its own timeout (docs/protocol.md §13).
func (p *pending) remoteError(ce *Error, now time.Time) *Error {
	err := normalizeRemote(ce, p.known)
	if err.code == CodeTimeout && !p.budget.IsZero() && !now.Before(p.budget) {
		return errTimedOut()
	}
	return err
}

// normalizeRemote treats a code that is neither a protocol code nor one the caller declared
// known (WithKnownCodes, from the op's error_schemas) as INTERNAL, not retryable, keeping the
// original code in OriginalCode() (§7.4).
func normalizeRemote(ce *Error, known []string) *Error {
	if IsProtocolCode(ce.code) || slices.Contains(known, ce.code) {
		return ce
	}
	return &Error{code: CodeInternal, message: ce.message, details: ce.details, originalCode: ce.code, remote: ce.remote}
}

// Call runs a query or mutation on the peer; every error is a *Error.
func (c *Conn) Call(ctx context.Context, op string, in json.RawMessage, opts ...CallOption) (json.RawMessage, error) {
	o := c.options(opts)
	// The budget starts before the request is written: the callee's deadline (timeout_ms from
	// its arrival) then never precedes ours, and the caller reports "request timed out".
	deadline := time.Now().Add(o.timeout)
	budget := deadline
	if dl, ok := ctx.Deadline(); ok && dl.Before(budget) {
		budget = dl
	}
	p, ce := c.register(o, false, budget)
	if ce != nil {
		return nil, ce
	}
	own, err := c.sendRequest(ctx, p, op, in, o, true)
	if err != nil {
		return nil, err
	}
	// The timeout (and ctx, for a call reading its own stream) end the call from callbacks,
	// so the caller's goroutine is free to read the response itself: no hand-off to a reader
	// goroutine and back.
	timer := time.AfterFunc(time.Until(deadline), func() { c.endLocally(p, errTimedOut()) })
	defer timer.Stop()
	switch done := ctx.Done(); {
	case own != nil:
		if done != nil {
			stop := context.AfterFunc(ctx, func() { c.endLocally(p, ctxError(ctx)) })
			defer stop()
		}
		c.readOwnStream(own, p)
	case done != nil:
		// Answered by a stream reader: wait for either here, not with a callback registered
		// on ctx (an allocation, and a lock that every concurrent call on ctx shares).
		select {
		case <-p.done:
		case <-done:
			c.endLocally(p, ctxError(ctx))
		}
	}
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	return p.out, nil
}

// sendRequest writes call.requested on a new stream (multi-stream) or the shared one. With
// readInline, a new stream is returned for the caller to read (readOwnStream); otherwise a
// worker reads it.
func (c *Conn) sendRequest(ctx context.Context, p *pending, op string, in json.RawMessage, o callOpts, readInline bool) (*framed, error) {
	if len(in) == 0 {
		in = json.RawMessage("null")
	}
	if !jsonscan.Valid(in) {
		c.finishPending(p, nil, &Error{code: CodeInvalidInput, message: "input is not valid JSON"})
		return nil, p.err
	}
	if op != "" && op[0] != '/' {
		op = "/" + op
	}
	payload := wire.RequestedPayload{OperationID: op, Input: in, ForwardedFor: o.forwardedFor, Via: o.via,
		TimeoutMS: wireTimeout(ctx, p.sub, o.timeout)}
	if o.hasToken {
		payload.AuthToken = o.token
	}
	env := wire.Requested(p.id, payload)
	if c.c.MultiStream() && !c.o.StreamPerCall && !p.sub {
		if pooled, err := c.sendReuse(ctx, p, env); pooled {
			return nil, err
		}
		// Every pooled stream is at its cap: this call gets a stream of its own (§4.1.2).
	}
	if c.c.MultiStream() {
		return c.sendOwn(ctx, p, env, readInline)
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		c.finishPending(p, nil, errCancelled(ctx.Err()))
		return nil, p.err
	}
	shared := c.sharedFramed()
	if shared == nil {
		c.finishPending(p, nil, errConnectionClosed(conn.ErrConnectionClosed))
		return nil, p.err
	}
	if err := shared.sendMaybeBatched(env, nil, c.pendingN.Load() >= batchInFlight); err != nil {
		c.finishPending(p, nil, errInternal(fmt.Sprintf("failed to write frame: %v", err), err))
		return nil, p.err
	}
	return nil, nil
}

// sendOwn writes p's request on a stream of its own and FINs it; the answer is read there, by
// the caller when readInline (the stream is returned), else by a worker.
func (c *Conn) sendOwn(ctx context.Context, p *pending, env wire.Envelope, readInline bool) (*framed, error) {
	st, err := c.c.OpenStream(ctx)
	if err != nil {
		c.finishPending(p, nil, openStreamError(ctx, err))
		return nil, p.err
	}
	w := c.newFramed(st)
	if err := w.send(env); err != nil {
		st.Cancel(0)
		c.finishPending(p, nil, errInternal(fmt.Sprintf("failed to write frame: %v", err), err))
		return nil, p.err
	}
	_ = w.w.Drain()
	_ = st.CloseWrite()
	if readInline {
		return w, nil
	}
	c.wg.Add(1)
	c.workers.run(func() {
		defer c.wg.Done()
		c.readOwnStream(w, p)
	})
	return nil, nil
}

// wireTimeout is the timeout_ms a request carries (docs/protocol.md §5.2): a query or
// mutation's effective timeout (the call's, or less if ctx ends sooner), a subscription's
// only when ctx has a deadline; whole milliseconds, at least 1; 0 = none.
func wireTimeout(ctx context.Context, sub bool, timeout time.Duration) int64 {
	budget := timeout
	if sub {
		budget = 0
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); budget == 0 || left < budget {
			budget = left
		}
	}
	if budget <= 0 {
		return 0
	}
	return max(budget.Milliseconds(), 1)
}

// streamError is the error of a call whose stream failed: "connection closed" when the
// whole connection went (so callers and forwarders can tell a lost link), else "stream
// closed before response".
func (c *Conn) streamError(err error) *Error {
	if errors.Is(err, conn.ErrConnectionClosed) {
		return errConnectionClosed(err)
	}
	select {
	case <-c.c.Done():
		return errConnectionClosed(err)
	case <-c.ctx.Done():
		return errConnectionClosed(err)
	default:
		return errInternal(msgStreamClosed, err)
	}
}

// readOwnStream reads the responses on a stream we opened for p (§4.1.2, §4.1.6).
func (c *Conn) readOwnStream(w *framed, p *pending) {
	c.d.streamOpened()
	defer c.d.streamClosed()
	defer w.s.Close()   // CancelRead(0) once terminal
	defer w.r.Discard() // a partial frame's charge goes with the stream
	if p.sub {
		// Many frames follow: read them through a buffer, not two stream reads per frame.
		w.r.ReadAhead(readAheadSize)
	}
	// Ended locally (endLocally) or by teardown: stop reading.
	stopRead := func() { w.s.Cancel(0) }
	p.stop.Store(&stopRead)
	select { // ended before the store: stop here
	case <-p.done:
		return
	default:
	}
	for {
		body, err := w.r.ReadFrame()
		if err != nil {
			c.finishPending(p, nil, c.streamError(err))
			return
		}
		e, err := wire.DecodeEnvelope(body)
		if err != nil {
			w.s.Cancel(wire.CodeProtocolError)
			c.finishPending(p, nil, errInternal(msgStreamClosed, err))
			return
		}
		switch e.Type {
		case wire.EventResponded, wire.EventCompleted, wire.EventError, wire.EventAborted:
			c.deliver(e, p)
		default:
			continue // wrong direction or unknown: ignored
		}
		select {
		case <-p.done:
			return
		default:
		}
	}
}

// sendAbort tells the peer to abort id: a fresh stream on multi-stream connections (given
// up after 5 s), the shared stream otherwise.
func (c *Conn) sendAbort(id string) {
	if c.reserveAbort() {
		c.sendAbortReserved(id)
	}
}

// reserveAbort counts an abort about to be sent (FlushAborts waits for it); false once the
// connection is closed (no abort is sent then).
func (c *Conn) reserveAbort() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	c.aborts.Add(1)
	return true
}

func (c *Conn) abortDone() {
	c.aborts.Done()
	c.wg.Done()
}

// sendAbortReserved sends call.aborted for id: on the shared stream, or on a fresh stream of
// its own (§4.2), giving up after abortSendTimeout. It ends the reservation.
func (c *Conn) sendAbortReserved(id string) {
	env := wire.Envelope{Type: wire.EventAborted, ID: id, Payload: wire.EmptyObject}
	if !c.c.MultiStream() {
		defer c.abortDone()
		if w := c.sharedFramed(); w != nil {
			_ = w.send(env)
		}
		return
	}
	go func() {
		defer c.abortDone()
		ctx, cancel := context.WithTimeout(c.ctx, abortSendTimeout)
		defer cancel()
		st, err := c.c.OpenStream(ctx)
		if err != nil {
			c.log.Debug("abort not sent", "id", id, "err", err)
			return
		}
		_ = st.SetWriteDeadline(time.Now().Add(abortSendTimeout))
		if err := c.newFramed(st).send(env); err != nil {
			c.log.Debug("abort not sent", "id", id, "err", err)
			st.Cancel(0)
			return
		}
		if err := st.CloseWrite(); err != nil {
			st.Cancel(0)
			return
		}
		// The callee ends the stream once it has read the abort (§4.1.4): wait for that, so
		// FlushAborts means "the peer has it", not "it was queued" (a connection closed right
		// after would drop data still queued).
		_ = st.SetReadDeadline(time.Now().Add(abortSendTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(st, 1<<10))
		_ = st.Close()
	}()
}

// Abort sends call.aborted for a pending request and ends it locally at once.
func (c *Conn) Abort(id string) error {
	p := c.lookupPending(id)
	if p == nil {
		return Errorf(CodeNotFound, "no pending request %s", id)
	}
	c.endLocally(p, errCancelled(nil))
	return nil
}

// Subscription is an open subscription; Recv returns its items, then io.EOF or the error.
type Subscription struct {
	c *Conn
	p *pending
}

// ID is the request id.
func (s *Subscription) ID() string { return s.p.id }

// Recv returns the next item; io.EOF after call.completed; otherwise a *Error. Buffered
// items always come before the terminal error.
func (s *Subscription) Recv() (json.RawMessage, error) {
	select {
	case it := <-s.p.items:
		return it, nil
	default:
	}
	select {
	case it := <-s.p.items:
		return it, nil
	case <-s.p.done:
		select {
		case it := <-s.p.items:
			return it, nil
		default:
			return nil, s.p.err
		}
	}
}

// Close aborts the subscription if it is not yet terminal.
func (s *Subscription) Close() error {
	s.c.endLocally(s.p, errCancelled(nil))
	return nil
}

// Subscribe starts a subscription. ctx bounds the whole subscription: cancelling it aborts.
func (c *Conn) Subscribe(ctx context.Context, op string, in json.RawMessage, opts ...CallOption) (*Subscription, error) {
	o := c.options(opts)
	p, ce := c.register(o, true, time.Time{})
	if ce != nil {
		return nil, ce
	}
	if _, err := c.sendRequest(ctx, p, op, in, o, false); err != nil {
		return nil, err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-p.done:
		case <-ctx.Done():
			c.endLocally(p, errCancelled(ctx.Err()))
		}
	}()
	return &Subscription{c: c, p: p}, nil
}

// BatchItem is one call of a batch.
type BatchItem struct {
	Op    string
	Input json.RawMessage
	Opts  []CallOption
}

// BatchResult is one result of a batch, in input order.
type BatchResult struct {
	Output json.RawMessage
	Err    error
}

// Batch runs items concurrently; results come back in input order and fail independently.
func (c *Conn) Batch(ctx context.Context, items []BatchItem) []BatchResult {
	out := make([]BatchResult, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := c.Call(ctx, it.Op, it.Input, it.Opts...)
			out[i] = BatchResult{Output: o, Err: err}
		}()
	}
	wg.Wait()
	return out
}

// FlushAborts waits until every call.aborted being sent has been written (or given up), or
// ctx ends. Clients that exit right after an abort (Ctrl-C) call it before closing.
func (c *Conn) FlushAborts(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		c.aborts.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sharedWire returns the single stream once Run has it (nil before, or on multi-stream).
func (c *Conn) sharedFramed() *framed {
	select {
	case <-c.ready:
		return c.shared
	default:
		return nil
	}
}
