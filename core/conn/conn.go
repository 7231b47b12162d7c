// Package conn is the transport-neutral view of a connection: QUIC (many streams),
// TCP+TLS and in-memory pipes (one stream each), and later sources such as iroh, all
// behind one Connection interface. Handlers never branch on the transport.
//
// See also: endpoint (which accepts connections), client (which dials them), host.
package conn

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/alkdev/alknet/core/auth"
)

// Transport names the kind of a connection's source; only logging and MultiStream may depend on it.
type Transport string

// Transports.
const (
	TransportQUIC   Transport = "quic"
	TransportTCPTLS Transport = "tcp+tls"
	TransportPipe   Transport = "pipe"
	TransportIroh   Transport = "iroh" // the iroh module's connections (dial by key, relays)
)

// Connection is one authenticated, encrypted connection to a peer. Methods are safe for
// concurrent use.
type Connection interface {
	AcceptStream(ctx context.Context) (Stream, error)
	OpenStream(ctx context.Context) (Stream, error)
	ALPN() string
	Transport() Transport
	MultiStream() bool
	RemoteAddr() net.Addr               // nil when the source has no IP address
	RemoteFingerprint() string          // "" when the peer presented no certificate
	SetIdentity(id auth.Identity) error // write-once: a second call returns ErrIdentityAlreadySet
	Identity() (auth.Identity, bool)
	Close(code uint64, reason string) error // idempotent; reasons over 256 bytes are truncated
	Done() <-chan struct{}                  // closed once closed by either side
	// AfterClose arranges for f to run in its own goroutine once the connection is closed by
	// either side, like context.AfterFunc: no goroutine waits meanwhile. stop cancels it and
	// reports whether it did so before f was started.
	AfterClose(f func()) (stop func() bool)
}

// Stream is one bidirectional byte stream. One reader and one writer at a time; concurrent
// writers must be serialised by the caller.
type Stream interface {
	io.ReadWriteCloser
	CloseWrite() error // end our sending side gracefully; the peer reads io.EOF
	Cancel(code uint64)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Close codes, the same on every transport. Codes ≥ 0x100 belong to protocols.
const (
	CodeNormal    uint64 = 0
	CodeNoHandler uint64 = 1
	CodeShutdown  uint64 = 2
	CodeRevoked   uint64 = 3
	CodeLimit     uint64 = 4
	CodeInternal  uint64 = 5
)

// Close reasons sent with the codes above. Reasons never carry internal error text.
const (
	ReasonACMEDone  = "acme done"
	ReasonNoHandler = "no handler"
	ReasonShutdown  = "shutdown"
	ReasonRevoked   = "revoked"
	ReasonLimit     = "limit"
	ReasonInternal  = "internal error"
)

const maxReasonLen = 256

func truncateReason(r string) string {
	if len(r) > maxReasonLen {
		return r[:maxReasonLen]
	}
	return r
}

// Open returns a stream to send a request on: a new stream on a multi-stream connection, or
// the connection's one stream on a single-stream connection (where both sides share it).
func Open(ctx context.Context, c Connection) (Stream, error) {
	if c.MultiStream() {
		return c.OpenStream(ctx)
	}
	return c.AcceptStream(ctx)
}
