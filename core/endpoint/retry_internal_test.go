package endpoint

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// The Retry threshold counts handshakes from ConnContext until they are accepted or fail.
func TestRequireRetryCountsHandshakes(t *testing.T) {
	e := &Endpoint{limits: config.Limits{RetryAbove: 2}.WithDefaults()}
	tr := &quic.Transport{}
	h := e.requireRetry(tr)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	if tr.VerifySourceAddress(addr) {
		t.Fatal("a Retry is required with no handshake in progress")
	}
	var cancels []context.CancelFunc
	var ctxs []context.Context
	for range 2 {
		base, cancel := context.WithCancel(context.Background())
		ctx, err := tr.ConnContext(base, &quic.ClientInfo{RemoteAddr: addr})
		if err != nil {
			t.Fatal(err)
		}
		cancels, ctxs = append(cancels, cancel), append(ctxs, ctx)
	}
	if !tr.VerifySourceAddress(addr) {
		t.Fatal("no Retry required with 2 handshakes in progress and RetryAbove 2")
	}
	handshakeDone(ctxs[0]) // accepted
	handshakeDone(ctxs[0]) // counted once
	if tr.VerifySourceAddress(addr) {
		t.Fatal("an accepted handshake still counts")
	}
	cancels[0]() // the accepted connection closes later: not counted again
	cancels[1]() // a failed handshake
	for _, c := range cancels {
		c()
	}
	// AfterFunc runs in its own goroutine: wait for the count to drop to zero.
	deadline := time.Now().Add(5 * time.Second)
	for h.n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes still counted", h.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// nopHandler is a protocol handler that serves nothing.
type nopHandler struct{}

func (nopHandler) ALPN() string                                                { return "alknet/nop" }
func (nopHandler) Handle(context.Context, conn.Connection, auth.Context) error { return nil }

// ListenQUIC wires the Retry decision into the QUIC transport it creates.
func TestListenQUICRequiresRetry(t *testing.T) {
	for _, tc := range []struct {
		above int
		want  bool
	}{{-1, true}, {0, false}} { // 0: the default threshold, with no handshake in progress
		reg, err := NewRegistry(HandlerFunc{Protocol: "alknet/nop",
			Func: func(context.Context, conn.Connection, auth.Context) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		key, _ := identity.Generate()
		srv, err := tlsconf.NewServer(tlsconf.ServerOptions{}, key, reg.ALPNs())
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Options{Registry: reg, Limits: config.Limits{RetryAbove: tc.above}})
		if err != nil {
			t.Fatal(err)
		}
		addr, err := e.ListenQUIC("127.0.0.1:0", srv.QUIC())
		if err != nil {
			t.Fatal(err)
		}
		if got := e.quicLns[0].tr.VerifySourceAddress(addr); got != tc.want {
			t.Errorf("RetryAbove %d: a Retry required = %v, want %v", tc.above, got, tc.want)
		}
		_ = e.Shutdown(context.Background())
		_ = srv.Close()
	}
}
