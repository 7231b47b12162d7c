package call

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/alkdev/alknet/call/internal/wire"
	"github.com/alkdev/alknet/core/conn"
)

// reuseStream is a long-lived stream a caller pipelines queries and mutations on
// (ConnOptions.StreamReuse, docs/protocol.md §4.1.4).
type reuseStream struct {
	w       *framed
	mu      sync.Mutex
	pending map[string]pooledReq
	last    time.Time // when it last had nothing in flight
	retired bool      // no new requests: idle, or the stream ended
}

// pooledReq is a request in flight on a pooled stream, with its envelope for a resend (§4.1.6).
type pooledReq struct {
	p   *pending
	env wire.Envelope
}

// pickReuse returns a stream to send on, opening one while fewer than StreamReuse exist; nil
// when every pooled stream is at StreamCap (the call then opens a stream of its own). A stream
// idle for StreamIdleTimeout/2 is retired (FIN) first, so the callee's idle close can never
// race a new request.
func (c *Conn) pickReuse(ctx context.Context) (*reuseStream, error) {
	idle := c.d.cfg.StreamIdleTimeout / 2
	c.reuseMu.Lock()
	defer c.reuseMu.Unlock()
	live := c.reuse[:0]
	for _, rs := range c.reuse {
		rs.mu.Lock()
		if !rs.retired && len(rs.pending) == 0 && time.Since(rs.last) >= idle {
			rs.retired = true
			_ = rs.w.w.Drain()
			_ = rs.w.s.CloseWrite()
		}
		retired := rs.retired
		rs.mu.Unlock()
		if !retired {
			live = append(live, rs)
		}
	}
	c.reuse = live
	var best *reuseStream
	bestLoad := -1
	for _, rs := range c.reuse {
		rs.mu.Lock()
		load := len(rs.pending)
		rs.mu.Unlock()
		if best == nil || load < bestLoad {
			best, bestLoad = rs, load
		}
	}
	if best != nil && (bestLoad == 0 || len(c.reuse) >= c.o.StreamReuse) {
		if bestLoad >= c.o.StreamCap {
			return nil, nil // all at their cap: overflow to a stream of its own
		}
		return best, nil
	}
	st, err := c.c.OpenStream(ctx)
	if err != nil {
		if best != nil {
			return best, nil
		}
		return nil, err
	}
	rs := &reuseStream{w: c.newFramed(st), pending: map[string]pooledReq{}, last: time.Now()}
	rs.w.w.OnError(func(err error) { rs.writeFailed(err) })
	c.reuse = append(c.reuse, rs)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.readReuse(rs)
	}()
	return rs, nil
}

// sendReuse writes p's request on a shared long-lived stream; pooled is false when every pooled
// stream is at its cap and nothing was sent.
func (c *Conn) sendReuse(ctx context.Context, p *pending, env wire.Envelope) (pooled bool, err error) {
	rs, err := c.pickReuse(ctx)
	if err != nil {
		c.finishPending(p, nil, openStreamError(ctx, err))
		return true, p.err
	}
	if rs == nil {
		return false, nil
	}
	rs.mu.Lock()
	if rs.retired {
		rs.mu.Unlock()
		return c.sendReuse(ctx, p, env)
	}
	rs.pending[p.id] = pooledReq{p: p, env: env}
	busy := len(rs.pending) >= batchInFlight
	rs.mu.Unlock()
	p.reuse.Store(rs)
	select { // ended before the store: release here, as finishPending could not
	case <-p.done:
		rs.release(p.id)
	default:
	}
	if err := rs.w.sendMaybeBatched(env, nil, busy); err != nil {
		rs.release(p.id)
		if refusedClean(err) { // the stream is retired already (writeFailed)
			if c.resend(p, env) {
				return true, nil // sent again on another stream (§4.1.6)
			}
		}
		c.finishPending(p, nil, errInternal(fmt.Sprintf("failed to write frame: %v", err), err))
		return true, p.err
	}
	return true, nil
}

// resend sends p once more, on another stream, after its pooled stream ended without reading it
// (the callee's clean FIN, or a write refused with code 0): the callee FINs only once all it
// read is terminal, so a request with no event was never read and runs once (§4.1.6). false
// when p was resent already.
func (c *Conn) resend(p *pending, env wire.Envelope) bool {
	if !p.resent.CompareAndSwap(false, true) {
		return false
	}
	p.reuse.Store(nil)
	select {
	case <-p.done: // ended meanwhile (its caller gave up): nothing to send
		return true
	default:
	}
	ctx := c.ctx
	if !p.budget.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, p.budget)
		defer cancel()
	}
	if pooled, _ := c.sendReuse(ctx, p, env); pooled { // sent, or failed and finished
		return true
	}
	_, _ = c.sendOwn(ctx, p, env, false)
	return true
}

// writeFailed is told the first failed write on rs, which may also carry requests whose
// writers returned before it (queued behind another's write, or batched): no new request goes
// there. A callee that refused it with code 0 FINs once all it read is terminal, and what it
// never read is then resent (readReuse, §4.1.6); any other failure ends the stream's calls now.
func (rs *reuseStream) writeFailed(err error) {
	rs.mu.Lock()
	rs.retired = true
	rs.mu.Unlock()
	if !refusedClean(err) {
		rs.w.s.Cancel(0)
	}
}

// refusedClean reports a write the callee refused with code 0: it stopped reading the stream.
func refusedClean(err error) bool {
	var sce *conn.StreamCancelError
	return errors.As(err, &sce) && sce.Remote && sce.Code == 0
}

func (rs *reuseStream) release(id string) {
	rs.mu.Lock()
	delete(rs.pending, id)
	if len(rs.pending) == 0 {
		rs.last = time.Now()
	}
	rs.mu.Unlock()
}

// readReuse routes responses on a reuse stream; when the stream ends, what was sent on it
// and is not terminal fails with "stream closed before response" (§4.1.6).
func (c *Conn) readReuse(rs *reuseStream) {
	stop := context.AfterFunc(c.ctx, func() { rs.w.s.Cancel(0) })
	defer stop()
	defer rs.w.s.Close()
	defer rs.w.r.Discard()
	rs.w.r.ReadAhead(readAheadSize) // many responses: read them in chunks, not two reads each
	for {
		body, err := rs.w.r.ReadFrame()
		if err == nil {
			var e wire.Envelope
			if e, err = wire.DecodeEnvelope(body); err == nil {
				rs.mu.Lock()
				pr, ok := rs.pending[e.ID]
				rs.mu.Unlock()
				if ok && (e.Type == wire.EventResponded || e.Type == wire.EventError || e.Type == wire.EventAborted) {
					c.deliver(e, pr.p)
				}
				continue
			}
			rs.w.s.Cancel(wire.CodeProtocolError)
		}
		rs.mu.Lock()
		rs.retired = true
		left := make([]pooledReq, 0, len(rs.pending))
		for _, pr := range rs.pending {
			left = append(left, pr)
		}
		rs.pending = map[string]pooledReq{}
		rs.mu.Unlock()
		clean := errors.Is(err, io.EOF) // the callee's FIN: what is left was never read
		for _, pr := range left {
			if clean && c.resend(pr.p, pr.env) {
				continue
			}
			c.finishPending(pr.p, nil, c.streamError(err))
		}
		return
	}
}
