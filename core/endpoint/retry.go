package endpoint

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// handshakes counts QUIC handshakes in progress on one transport: from the connection's
// creation (ConnContext) until it is accepted or closes, whichever comes first.
type handshakes struct{ n atomic.Int64 }

type handshakeKey struct{}

// requireRetry makes tr demand address validation (a Retry) from new connection attempts
// while more than Limits.RetryAbove handshakes are in progress (always, if negative).
// Spoofed-source floods then never reach the handshake, the per-IP slots or the auth limiter.
func (e *Endpoint) requireRetry(tr *quic.Transport) *handshakes {
	h := &handshakes{}
	above := int64(e.limits.RetryAbove)
	tr.VerifySourceAddress = func(net.Addr) bool { return above < 0 || h.n.Load() >= above }
	tr.ConnContext = func(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
		h.n.Add(1)
		var once sync.Once
		done := func() { once.Do(func() { h.n.Add(-1) }) }
		context.AfterFunc(ctx, done) // closed or failed handshake
		return context.WithValue(ctx, handshakeKey{}, done), nil
	}
	return h
}

// handshakeDone ends the count of an accepted connection's handshake.
func handshakeDone(ctx context.Context) {
	if done, ok := ctx.Value(handshakeKey{}).(func()); ok {
		done()
	}
}
