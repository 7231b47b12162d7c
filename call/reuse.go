package call

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/alkdev/alknet/call/internal/wire"
)

// reuseStream is a long-lived stream a caller pipelines queries and mutations on
// (ConnOptions.StreamReuse, docs/protocol.md §4.1.4).
type reuseStream struct {
	w       *framed
	mu      sync.Mutex
	pending map[string]*pending
	last    time.Time // when it last had nothing in flight
	retired bool      // no new requests: idle, or the stream ended
}

// pickReuse returns a stream to send on, opening one while fewer than StreamReuse exist. A
// stream idle for StreamIdleTimeout/2 is retired (FIN) first, so the callee's idle close can
// never race a new request.
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
		return best, nil
	}
	st, err := c.c.OpenStream(ctx)
	if err != nil {
		if best != nil {
			return best, nil
		}
		return nil, err
	}
	rs := &reuseStream{w: c.newFramed(st), pending: map[string]*pending{}, last: time.Now()}
	c.reuse = append(c.reuse, rs)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.readReuse(rs)
	}()
	return rs, nil
}

// sendReuse writes p's request on a shared long-lived stream.
func (c *Conn) sendReuse(ctx context.Context, p *pending, env wire.Envelope) error {
	rs, err := c.pickReuse(ctx)
	if err != nil {
		c.finishPending(p, nil, openStreamError(ctx, err))
		return p.err
	}
	rs.mu.Lock()
	if rs.retired {
		rs.mu.Unlock()
		return c.sendReuse(ctx, p, env)
	}
	rs.pending[p.id] = p
	rs.mu.Unlock()
	p.reuse.Store(rs)
	select { // ended before the store: release here, as finishPending could not
	case <-p.done:
		rs.release(p.id)
	default:
	}
	if err := rs.w.send(env); err != nil {
		rs.release(p.id)
		c.finishPending(p, nil, errInternal(fmt.Sprintf("failed to write frame: %v", err), err))
		return p.err
	}
	return nil
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
	for {
		body, err := rs.w.r.ReadFrame()
		if err == nil {
			var e wire.Envelope
			if e, err = wire.DecodeEnvelope(body); err == nil {
				rs.mu.Lock()
				p := rs.pending[e.ID]
				rs.mu.Unlock()
				if p != nil && (e.Type == wire.EventResponded || e.Type == wire.EventError || e.Type == wire.EventAborted) {
					c.deliver(e, p)
				}
				continue
			}
			rs.w.s.Cancel(wire.CodeProtocolError)
		}
		rs.mu.Lock()
		rs.retired = true
		left := make([]*pending, 0, len(rs.pending))
		for _, p := range rs.pending {
			left = append(left, p)
		}
		rs.mu.Unlock()
		for _, p := range left {
			c.finishPending(p, nil, c.streamError(err))
		}
		return
	}
}
