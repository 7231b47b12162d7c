package call

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"

	"github.com/alkdev/alknet/call/internal/wire"
)

// inbound is a request the peer sent us, in flight until it is terminal on the wire.
type inbound struct {
	id     string
	node   *reqNode
	cancel context.CancelFunc
	out    *framed
	stream *servedStream // multi-stream only

	mu       sync.Mutex // serialises events of this request with its terminal state
	terminal bool
	stopping atomic.Bool  // set by an abort before it takes mu: a sendItem waiting for room gives up
	itemHead []byte       // subscriptions: the envelope before each item's output
	observe  func(*Error) // metrics: called once with the terminal outcome (nil = success)
}

// sendItem writes a subscription item unless the request is already terminal. The envelope
// is assembled in the stream's write queue (head, output, tail: no frame of its own), where
// it may wait briefly to share a write with the next item. The request's lock is held only
// while the item is queued, never while it is written, and a wait for queue room ends when
// the request is aborted: an abort (read by a single-stream connection's only reader) never
// waits on a peer that stopped reading.
func (in *inbound) sendItem(out json.RawMessage) error {
	in.mu.Lock()
	if in.terminal {
		in.mu.Unlock()
		in.cancel() // the call has ended: a handler that sees emit fail finds its ctx done too
		return errCancelled(nil)
	}
	if in.itemHead == nil {
		in.itemHead = wire.RespondedHead(nil, in.id)
	}
	flush, err := in.out.w.QueueBatched(in.itemHead, out, wire.RespondedTail, &in.stopping)
	in.mu.Unlock()
	if errors.Is(err, wire.ErrWriteStopped) {
		in.cancel() // as above: stopped means aborted
		return errCancelled(nil)
	}
	if err != nil || !flush {
		return err
	}
	return in.out.w.Flush()
}

// acceptRequest starts a call.requested (§4.1.3, §4.3.3, §17) on a worker, or, with inline
// set, on the calling goroutine once the request is registered and inline has run (it hands
// the caller's other work to someone else). It reports whether it ran the request inline;
// a request refused at once is answered here and not run.
func (c *Conn) acceptRequest(e wire.Envelope, out *framed, ss *servedStream, inline func()) bool {
	reject := func(ce *Error) {
		_ = out.send(wire.Envelope{Type: wire.EventError, ID: e.ID, Payload: appendCallError(nil, ce)})
	}
	p := wire.DecodeRequested(e.Payload)
	if ce := c.d.checkVia(p.Via, p.ViaLen); ce != nil {
		// A loop or too many hops: answered at once, no handler runs (§7.2).
		c.d.callDone(OtherOperationLabel, ce, time.Now())
		reject(ce)
		return false
	}
	// Not a child of c.ctx: teardown aborts every inbound request itself, and a child would
	// register with (and contend on) the connection's context on every call.
	reg := c.d.rootRegistration(p.OperationID)
	ctx, cancel := c.d.requestContext(c.base, reg, p.TimeoutMS)
	in := &inbound{id: e.ID, node: &reqNode{}, cancel: cancel, out: out, stream: ss}
	if c.d.observer != nil {
		// Only operations that resolved to a registration get a label of their own: names a
		// peer makes up must not grow the metrics (docs/security.md).
		start, op := time.Now(), OtherOperationLabel
		if reg != nil {
			op = reg.Spec.Name
		}
		in.observe = func(ce *Error) { c.d.callDone(op, ce, start) }
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		cancel()
		return false
	case len(c.early) > 0 && c.takeEarlyAbortLocked(e.ID):
		// Aborted before it arrived: the caller has given up on it; nothing is run or written.
		c.mu.Unlock()
		cancel()
		return false
	case c.inbound[e.ID] != nil:
		c.mu.Unlock()
		cancel()
		reject(&Error{code: CodeInvalidInput, message: msgDuplicateID})
		return false
	case len(c.inbound) >= c.d.cfg.MaxInFlight || !c.d.reserveInFlight():
		c.mu.Unlock()
		cancel()
		reject(errRetryableInternal(msgTooManyInFlight))
		return false
	}
	c.inbound[e.ID] = in
	c.inboundN.Add(1)
	c.wg.Add(1)
	c.mu.Unlock()
	if ss != nil {
		ss.requestStarted(e.ID)
	}
	if inline != nil {
		inline()
		defer c.wg.Done()
		c.runInbound(ctx, in, p)
		return true
	}
	c.workers.run(func() {
		defer c.wg.Done()
		c.runInbound(ctx, in, p)
	})
	return false
}

// finishInbound writes the terminal event (nil: none) once and forgets the request.
func (c *Conn) finishInbound(in *inbound, e *wire.Envelope) {
	// The terminal state is decided under the request's lock; the event is written after it.
	// Items queued before stay ahead of it (the stream's writer keeps order), none can follow
	// (sendItem checks terminal under the lock), and an abort (on a single-stream connection,
	// read by the connection's only reader) never waits for a write to a peer that stopped
	// reading: it finds the request terminal, or its write gives up (stopping).
	in.mu.Lock()
	if in.terminal {
		in.mu.Unlock()
		return
	}
	in.terminal = true
	in.mu.Unlock()
	var err error
	if e != nil && !in.stopping.Load() {
		if err = in.sendTerminal(*e, c.inboundN.Load()); errors.Is(err, wire.ErrFrameTooLarge) {
			// Nothing was written: answer with the error instead (§17).
			e = errorEnvelope(in.id, errInternal(msgResponseTooLarge, err))
			err = in.out.sendStop(*e, &in.stopping)
		}
		if errors.Is(err, wire.ErrWriteStopped) {
			e, err = nil, nil // aborted while it waited: nothing more is written for the id
		}
	}
	if in.observe != nil {
		var ce *Error
		switch {
		case e == nil:
			ce = errCancelled(nil)
		case e.Type == wire.EventError:
			ce, _ = decodeCallError(e.Payload)
		}
		in.observe(ce)
	}
	c.forgetInbound(in)
}

// sendTerminal writes a request's terminal event; on a stream with others in flight (a pooled
// stream, or a single-stream connection: shared counts its requests in flight) it yields once
// so that answers ready at the same moment share the write (batchInFlight).
func (in *inbound) sendTerminal(e wire.Envelope, shared int32) error {
	busy := shared >= batchInFlight
	if ss := in.stream; ss != nil {
		ss.mu.Lock()
		busy = ss.inflight >= batchInFlight
		ss.mu.Unlock()
	}
	return in.out.sendMaybeBatched(e, &in.stopping, busy)
}

func (c *Conn) forgetInbound(in *inbound) {
	in.cancel()
	c.mu.Lock()
	if c.inbound[in.id] == in {
		delete(c.inbound, in.id)
		c.inboundN.Add(-1)
	}
	c.mu.Unlock()
	c.d.inflight.Add(-1)
	if in.stream != nil {
		in.stream.requestDone(in.id)
	}
}

// abortInbound ends an inbound request in flight: cancel its ctx (cascading to AbortDependents
// children), write nothing more for its id. It reports whether the id was in flight.
func (c *Conn) abortInbound(id string) bool {
	c.mu.Lock()
	in := c.inbound[id]
	c.mu.Unlock()
	if in == nil {
		return false
	}
	in.node.aborted.Store(true)
	in.stopping.Store(true)
	in.out.w.Wake()
	c.finishInbound(in, nil)
	return true
}

func errorEnvelope(id string, ce *Error) *wire.Envelope {
	return &wire.Envelope{Type: wire.EventError, ID: id, Payload: appendCallError(nil, ce)}
}

// runInbound runs one root request to its terminal event.
func (c *Conn) runInbound(ctx context.Context, in *inbound, p wire.RequestedPayload) {
	connID, peers := c.peerIdentity()
	identity, rejected := c.d.resolveRequest(ctx, connID, p.AuthToken, p.HasAuthToken)
	rt, ce := c.d.startRoot(ctx, rootInput{id: in.id, op: p.OperationID, input: p.Input, identity: identity, tokenRejected: rejected,
		byToken: identity != connID, forwardedFor: p.ForwardedFor, via: p.Via, peers: peers, ownCtx: true})
	if ce != nil {
		c.finishInbound(in, errorEnvelope(in.id, ce))
		return
	}
	defer rt.cancel()
	rt.oc.node = in.node
	if rt.reg.Spec.Type == OpSubscription { // no deadline (§13)
		emit := func(out json.RawMessage) error {
			if err := in.sendItem(out); err != nil {
				if errors.Is(err, wire.ErrFrameTooLarge) {
					c.finishInbound(in, errorEnvelope(in.id, errInternal(msgResponseTooLarge, err)))
					return err
				}
				// The stream is gone (the caller cancelled it, or the connection ended): the
				// subscription ends as an abort would end it, not as a handler failure that a
				// peer could make us log at will.
				var ce *Error
				if !errors.As(err, &ce) {
					err = errCancelled(err)
				}
				return err
			}
			return nil
		}
		if ce := c.d.runStream(rt.ctx, rt.oc, rt.reg, rt.input, emit); ce != nil {
			c.finishInbound(in, errorEnvelope(in.id, ce))
			return
		}
		c.finishInbound(in, &wire.Envelope{Type: wire.EventCompleted, ID: in.id, Payload: wire.EmptyObject})
		return
	}
	// A deadline that passes first is answered at once; a later result is discarded (§13.3).
	// A timer of its own, not a callback on rt.ctx: that would allocate the context's done
	// channel and children map on every call.
	stopTimer := func() bool { return false }
	if dl, ok := rt.ctx.Deadline(); ok {
		stopTimer = time.AfterFunc(time.Until(dl), func() {
			<-rt.ctx.Done() // its own timer, due at the same instant, may not have fired yet
			if errors.Is(rt.ctx.Err(), context.DeadlineExceeded) {
				in.node.aborted.Store(true)
				c.finishInbound(in, errorEnvelope(in.id, errDeadline()))
			}
		}).Stop
	}
	out, ce := c.d.runHandler(rt.ctx, rt.oc, rt.reg, rt.input)
	stopTimer()
	if rt.ctx.Err() != nil && errors.Is(rt.ctx.Err(), context.DeadlineExceeded) {
		ce = errDeadline() // the deadline passed first: whatever the handler returned (§7.3.6)
	}
	if ce != nil {
		c.finishInbound(in, errorEnvelope(in.id, ce))
		return
	}
	env := wire.Responded(in.id, out)
	c.finishInbound(in, &env)
}

// connIdentity is the connection's identity and the peer layer of its environment.
type connIdentity struct {
	id    *core.Identity
	peers []peerLayer
}

// peerIdentity returns the connection's identity (nil: none yet) and its peer layer. The
// identity is write-once, so it is read from the connection once it is set, not per request.
func (c *Conn) peerIdentity() (*core.Identity, []peerLayer) {
	if ci := c.ident.Load(); ci != nil {
		return ci.id, ci.peers
	}
	id, ok := c.c.Identity()
	if !ok {
		return nil, nil // anonymous so far (an identity may still be set): nothing to keep
	}
	ci := &connIdentity{id: new(core.Identity), peers: []peerLayer{{id: id.ID, ov: c.overlay}}}
	*ci.id = id
	if !c.ident.CompareAndSwap(nil, ci) {
		ci = c.ident.Load()
	}
	return ci.id, ci.peers
}

type connKey struct{}

// ConnFromContext returns the Conn an inbound request arrived on, so a handler can call the
// peer back over the same connection.
func ConnFromContext(ctx context.Context) (*Conn, bool) {
	c, ok := ctx.Value(connKey{}).(*Conn)
	return c, ok
}
