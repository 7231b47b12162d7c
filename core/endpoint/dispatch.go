package endpoint

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/internal/netkey"
	"github.com/alkdev/alknet/core/tlsconf"
)

// tracked is a live connection as the endpoint sees it: the connection identity is observed
// whether the endpoint set it (from the fingerprint) or the handler did later.
type tracked struct {
	conn.Connection
	mu      sync.Mutex
	id      *auth.Identity
	fromFP  bool
	cancel  context.CancelFunc
	revoked atomic.Bool // closed by a revocation sweep (logged once)
}

func (t *tracked) SetIdentity(id auth.Identity) error {
	if err := t.Connection.SetIdentity(id); err != nil {
		return err
	}
	c := id.Clone()
	t.mu.Lock()
	t.id = &c
	t.mu.Unlock()
	return nil
}

// Timeouts forwards the connection's inactivity limits (conn.TimeoutsOf).
func (t *tracked) Timeouts() conn.Timeouts { return conn.TimeoutsOf(t.Connection) }

func (t *tracked) heldIdentity() (auth.Identity, bool, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.id == nil {
		return auth.Identity{}, false, false
	}
	return *t.id, t.fromFP, true
}

// reasonAuthFailures closes a known peer's connection that sent too many failed tokens.
const reasonAuthFailures = "too many failed authentication attempts"

// Dispatch hands a connection from a Source (or a test) to its handler, taking a connection
// slot first. It returns without waiting for the handler.
func (e *Endpoint) Dispatch(c conn.Connection) {
	release, reason := e.adm.admit(c.RemoteAddr(), c.RemoteFingerprint(), c.ALPN())
	if reason != "" {
		_ = c.Close(conn.CodeLimit, conn.ReasonLimit)
		return
	}
	e.dispatch(c, release)
}

// dispatch routes a connection whose slot is held to its handler (ACME guard, ALPN, identity); release frees the slot.
func (e *Endpoint) dispatch(c conn.Connection, release func()) {
	alpn := c.ALPN()
	remote := c.RemoteAddr()
	if e.shuttingDown.Load() {
		_ = c.Close(conn.CodeShutdown, conn.ReasonShutdown)
		release()
		return
	}
	if alpn == tlsconf.ACMEALPN {
		e.log.Debug("acme challenge answered", "remote_addr", netkey.Host(remote))
		_ = c.Close(conn.CodeNormal, conn.ReasonACMEDone)
		release()
		return
	}
	h, ok := e.reg.Lookup(alpn)
	if !ok {
		e.log.Warn("no handler", "alpn", alpn, "remote_addr", netkey.Host(remote))
		_ = c.Close(conn.CodeNoHandler, conn.ReasonNoHandler)
		release()
		return
	}
	t := &tracked{Connection: c}
	ac := auth.Context{ALPN: alpn, Fingerprint: c.RemoteFingerprint(), RemoteAddr: remote}
	if ac.Fingerprint != "" && e.auth != nil {
		if id, ok := e.auth.Fingerprint(context.Background(), ac); ok {
			if err := t.SetIdentity(id); err == nil {
				t.fromFP = true
				ac.Identity = &id
				e.metrics.AuthResult("accept")
			}
		}
	}
	failures := auth.NewConnFailures(func() { _ = t.Close(conn.CodeLimit, reasonAuthFailures) })
	ctx, cancel := context.WithCancel(auth.WithConnFailures(auth.NewContext(e.baseCtx, ac), failures))
	t.cancel = cancel

	e.mu.Lock()
	if e.shuttingDown.Load() {
		e.mu.Unlock()
		cancel()
		_ = c.Close(conn.CodeShutdown, conn.ReasonShutdown)
		release()
		return
	}
	e.live[t] = struct{}{}
	e.handlers.Add(1)
	e.mu.Unlock()
	e.metrics.ConnAccepted(string(c.Transport()), alpn)

	go e.serve(ctx, t, h, ac, release)
}

func (e *Endpoint) serve(ctx context.Context, t *tracked, h ProtocolHandler, ac auth.Context, release func()) {
	defer e.handlers.Done()
	// The Handle ctx ends when the connection closes, from either side (a callback, not a
	// goroutine per connection: idle connections must stay cheap).
	stopWatch := t.AfterClose(t.cancel)
	code, reason := conn.CodeNormal, ""
	func() {
		defer func() {
			if v := recover(); v != nil {
				e.metrics.HandlerPanic(ac.ALPN)
				e.log.Error("handler panic", "alpn", ac.ALPN, "remote_addr", netkey.Host(ac.RemoteAddr),
					"value", fmt.Sprint(v), "stack", string(debug.Stack()))
				code, reason = conn.CodeInternal, conn.ReasonInternal
			}
		}()
		if err := h.Handle(ctx, t, ac); err != nil {
			code, reason = conn.CodeInternal, conn.ReasonInternal
			if !errors.Is(err, conn.ErrConnectionClosed) && !errors.Is(err, context.Canceled) {
				e.log.Error("handler error", "alpn", ac.ALPN, "remote_addr", netkey.Host(ac.RemoteAddr), "err", err)
			}
		}
	}()
	_ = t.Close(code, reason)
	t.cancel()
	stopWatch()
	e.mu.Lock()
	delete(e.live, t)
	e.mu.Unlock()
	release()
	e.metrics.ConnClosed(string(t.Transport()), ac.ALPN)
}
