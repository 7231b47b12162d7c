package iroh

import "errors"

// Error categories of this package.
var (
	ErrClosed      = errors.New("iroh: transport closed")
	ErrUnavailable = errors.New("iroh: endpoint unavailable")
	ErrBind        = errors.New("iroh: bind failed")
	ErrABI         = errors.New("iroh: native library mismatch")
	ErrNotBuilt    = errors.New("iroh: this binary was built without iroh")
)

// Stats are the crate's process-wide counters (NativeStats).
type Stats struct {
	Handles, Tokens, ChunkBytes, Endpoints                               uint64
	RefusedHandshakes, RefusedLimitTotal, RefusedLimitIP, RefusedBacklog uint64
	HandshakeFailed, LogDropped                                          uint64
}

// libStamp is the sha256 of the linked archive, set by the Makefile with -ldflags -X (Go does
// not hash archives named in #cgo LDFLAGS, so the stamp makes a rebuilt archive relink).
var libStamp = "unknown"

// TransportStats are one endpoint's live figures, for metrics (Transport.Stats).
type TransportStats struct {
	Direct, Relayed, Unknown int  // live connections by their selected path
	RelayConnected           bool // the endpoint's address has a home relay
}
