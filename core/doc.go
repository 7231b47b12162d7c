// Package core is the foundation of alknet: node identity, TLS, transport-neutral
// connections, the endpoint that routes connections by ALPN, authentication, configuration
// and dialers. Other modules import the aliases here; the machinery lives in the
// subpackages identity, auth, tlsconf, conn, config, endpoint and client, and host puts them
// together into a node's transport side.
package core

import (
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
)

// Aliases for what other modules use.
type (
	Connection       = conn.Connection
	Stream           = conn.Stream
	Identity         = auth.Identity
	AuthContext      = auth.Context
	IdentityProvider = auth.IdentityProvider
	ProtocolHandler  = endpoint.ProtocolHandler
)
