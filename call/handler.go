package call

import (
	"context"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
)

// ALPN is the protocol id of alknet/call.
const ALPN = "alknet/call"

// ProtocolHandler serves alknet/call connections for the core endpoint. Both functions are
// read once per new connection, so a node that reloads its limits hands the new ones to new
// connections; NewProtocolHandler covers the static case.
type ProtocolHandler struct {
	Dispatcher func() *Dispatcher // the dispatcher serving each new connection; nil: an empty one
	Options    func() ConnOptions // each new connection's options; nil: defaults
	// OnConn, if set, is called once per connection after its Conn is made and before it
	// runs; ctx ends with the connection. It must return promptly, starting a goroutine only
	// for a link it imports (docs/protocol.md §11, the hub's importer).
	OnConn func(ctx context.Context, c *Conn)
}

// NewProtocolHandler serves every connection with d and options o.
func NewProtocolHandler(d *Dispatcher, o ConnOptions) ProtocolHandler {
	return ProtocolHandler{Dispatcher: func() *Dispatcher { return d }, Options: func() ConnOptions { return o }}
}

// ALPN implements the core ProtocolHandler.
func (ProtocolHandler) ALPN() string { return ALPN }

// Handle runs a Conn for the connection until it ends or ctx is cancelled. Per-request tokens
// are resolved with ac (and whatever per-connection limiter the endpoint put in ctx), so
// failures are limited and audited with the connection's address.
func (h ProtocolHandler) Handle(ctx context.Context, c core.Connection, ac core.AuthContext) error {
	var o ConnOptions
	if h.Options != nil {
		o = h.Options()
	}
	var d *Dispatcher
	if h.Dispatcher != nil {
		d = h.Dispatcher()
	}
	if ac.ALPN == "" && ac.RemoteAddr == nil && ac.Fingerprint == "" {
		ac = core.AuthContext{ALPN: c.ALPN(), Fingerprint: c.RemoteFingerprint(), RemoteAddr: c.RemoteAddr()}
	}
	if ac.Identity == nil {
		if id, ok := c.Identity(); ok {
			ac.Identity = &id
		}
	}
	cn := newConn(auth.NewContext(ctx, ac), c, d, o)
	if h.OnConn != nil {
		h.OnConn(cn.ctx, cn)
	}
	return cn.Run(ctx)
}
