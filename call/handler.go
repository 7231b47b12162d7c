package call

import (
	"context"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
)

// ALPN is the protocol id of alknet/call.
const ALPN = "alknet/call"

// ProtocolHandler serves alknet/call connections for the core endpoint.
type ProtocolHandler struct {
	D       *Dispatcher
	Current func() *Dispatcher // if set, read per connection (reloaded call limits apply to new ones)
	Options func() ConnOptions // read per connection, so reloaded limits apply to new ones; nil = defaults
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
	d := h.D
	if h.Current != nil {
		d = h.Current()
	}
	if ac.ALPN == "" && ac.RemoteAddr == nil && ac.Fingerprint == "" {
		ac = core.AuthContext{ALPN: c.ALPN(), Fingerprint: c.RemoteFingerprint(), RemoteAddr: c.RemoteAddr()}
	}
	if ac.Identity == nil {
		if id, ok := c.Identity(); ok {
			ac.Identity = &id
		}
	}
	return newConn(auth.NewContext(ctx, ac), c, d, o).Run(ctx)
}
