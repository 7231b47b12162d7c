package call

import (
	"context"

	"github.com/alkdev/alknet/core"
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

// Handle runs a Conn for the connection until it ends or ctx is cancelled.
func (h ProtocolHandler) Handle(ctx context.Context, c core.Connection, _ core.AuthContext) error {
	var o ConnOptions
	if h.Options != nil {
		o = h.Options()
	}
	d := h.D
	if h.Current != nil {
		d = h.Current()
	}
	return NewConn(c, d, o).Run(ctx)
}
