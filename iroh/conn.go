//go:build cgo && !noiroh

package iroh

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
)

// connection adapts one iroh connection to conn.Connection (spec iroh.md §6.4). Its Done
// hangs off a context the alk_conn_closed completion cancels: no goroutine per connection.
// No handle is released while a call uses it: the last call to leave after the close releases
// the connection and every stream it still holds.
type connection struct {
	t      *Transport
	h      uint64
	alpn   string
	fp     string
	path   uint32
	ident  atomic.Pointer[auth.Identity]
	ctx    context.Context
	cancel context.CancelFunc
	err    atomic.Pointer[error] // why it closed, once it has

	mu       sync.Mutex
	inflight int
	released bool
	streams  map[*stream]struct{}
}

var _ conn.Connection = (*connection)(nil)

func newConnection(t *Transport, h uint64) (*connection, error) {
	info, st := cConnInfo(h)
	if st != stOK {
		cRelease(h)
		return nil, connError(completion{status: st}, "conn info")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &connection{t: t, h: h, alpn: info.alpn, fp: identity.PrefixEd25519 + hex.EncodeToString(info.remote[:]),
		path: info.path, ctx: ctx, cancel: cancel, streams: make(map[*stream]struct{})}
	c.mu.Lock()
	c.inflight++ // the closed-watch holds the connection until it fires
	c.mu.Unlock()
	done, pending := issueFunc(func(tok uint64, out *completion) int32 { return cConnOp(connClosedWatch, h, tok, out) }, c.onClosed)
	if !pending {
		c.onClosed(done)
	}
	return c, nil
}

// onClosed runs on the poller when the connection has closed.
func (c *connection) onClosed(cp completion) {
	err := connError(cp, cMessage(cp.detail))
	c.err.CompareAndSwap(nil, &err)
	c.cancel()
	if c.t != nil {
		c.t.forget(c)
	}
	c.leave()
}

// currentPath reads the connection's selected path from the crate (direct or relayed).
func (c *connection) currentPath() uint32 {
	if !c.enter() {
		return c.path
	}
	defer c.leave()
	if info, st := cConnInfo(c.h); st == stOK {
		return info.path
	}
	return c.path
}

// closeErr is the error later calls return.
func (c *connection) closeErr() error {
	if e := c.err.Load(); e != nil {
		return *e
	}
	return conn.ErrConnectionClosed
}

// enter marks a call in flight; false once the connection's handles are gone.
func (c *connection) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return false
	}
	c.inflight++
	return true
}

func (c *connection) leave() {
	c.mu.Lock()
	c.inflight--
	if c.inflight > 0 || c.released || c.ctx.Err() == nil {
		c.mu.Unlock()
		return
	}
	c.released = true
	streams := make([]*stream, 0, len(c.streams))
	for s := range c.streams {
		streams = append(streams, s)
	}
	c.streams = nil
	c.mu.Unlock()
	for _, s := range streams {
		s.connGone()
	}
	cRelease(c.h)
}

func (c *connection) dropStream(s *stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

func (c *connection) streamOp(ctx context.Context, which int) (conn.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !c.enter() {
		return nil, c.closeErr()
	}
	defer c.leave()
	cp, t, o := issue(func(tok uint64, out *completion) int32 { return cConnOp(which, c.h, tok, out) })
	if o != nil {
		cp = await(ctx, t, o)
	}
	msg := cMessage(cp.detail)
	switch {
	case cp.status == stOK:
		s := &stream{c: c, h: cp.value}
		c.mu.Lock()
		if c.released {
			c.mu.Unlock()
			cRelease(cp.value)
			return nil, c.closeErr()
		}
		c.streams[s] = struct{}{}
		c.mu.Unlock()
		if ctx.Err() != nil { // opened as ctx ended: reset it rather than hand it to nobody
			s.Cancel(0)
			_ = s.Close()
			return nil, ctx.Err()
		}
		return s, nil
	case cp.status == stCanceled && ctx.Err() != nil:
		return nil, ctx.Err()
	default: // a cancel not ours (the endpoint or connection closing) maps as a close
		if e := c.err.Load(); e != nil && (cp.status == stClosed || cp.status == stTransport || cp.status == stTimeout) {
			return nil, *e
		}
		return nil, connError(cp, msg)
	}
}

func (c *connection) AcceptStream(ctx context.Context) (conn.Stream, error) {
	return c.streamOp(ctx, connAccept)
}

func (c *connection) OpenStream(ctx context.Context) (conn.Stream, error) {
	return c.streamOp(ctx, connOpen)
}

func (c *connection) ALPN() string                    { return c.alpn }
func (c *connection) Transport() conn.Transport       { return conn.TransportIroh }
func (c *connection) MultiStream() bool               { return true }
func (c *connection) RemoteAddr() net.Addr            { return nil }
func (c *connection) RemoteFingerprint() string       { return c.fp }
func (c *connection) Done() <-chan struct{}           { return c.ctx.Done() }
func (c *connection) AfterClose(f func()) func() bool { return context.AfterFunc(c.ctx, f) }

func (c *connection) SetIdentity(id auth.Identity) error {
	cl := id.Clone()
	if !c.ident.CompareAndSwap(nil, &cl) {
		return conn.ErrIdentityAlreadySet
	}
	return nil
}

func (c *connection) Identity() (auth.Identity, bool) {
	id := c.ident.Load()
	if id == nil {
		return auth.Identity{}, false
	}
	return id.Clone(), true
}

// Close closes the connection with code and reason (cut to 256 bytes); codes beyond QUIC's
// varint range close as CodeInternal. The handles go once the close is observed.
func (c *connection) Close(code uint64, reason string) error {
	if code > 1<<62-1 {
		code = conn.CodeInternal
	}
	if len(reason) > 256 {
		reason = reason[:256]
	}
	if !c.enter() {
		return nil
	}
	defer c.leave()
	cConnClose(c.h, code, []byte(reason))
	return nil
}
