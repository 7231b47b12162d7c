package call_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/host"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/wire"
)

// rawConn is a connection to a node without a call.Conn: tests write frames by hand.
func (n *node) rawConn(t testing.TB, transport string) conn.Connection {
	t.Helper()
	return n.connect(t, transport, nil)
}

// rawStream is one stream with frame helpers.
type rawStream struct {
	t testing.TB
	s conn.Stream
	r *wire.FrameReader
	w *wire.FrameWriter
}

func openRaw(t testing.TB, c conn.Connection) *rawStream {
	t.Helper()
	s, err := conn.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return &rawStream{t: t, s: s, r: wire.NewFrameReader(s, 0), w: wire.NewFrameWriter(s, 0)}
}

func (r *rawStream) send(typ, id string, payload any) {
	r.t.Helper()
	p, err := json.Marshal(payload)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.w.WriteFrame(wire.AppendEnvelope(nil, wire.Envelope{Type: typ, ID: id, Payload: p})); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawStream) request(id, op string, input any) {
	r.t.Helper()
	r.send(wire.EventRequested, id, map[string]any{"operationId": op, "input": input})
}

// next reads the next envelope, failing the test after d.
func (r *rawStream) next(d time.Duration) (wire.Envelope, error) {
	_ = r.s.SetReadDeadline(time.Now().Add(d))
	body, err := r.r.ReadFrame()
	if err != nil {
		return wire.Envelope{}, err
	}
	return wire.DecodeEnvelope(body)
}

func (r *rawStream) mustNext() wire.Envelope {
	r.t.Helper()
	e, err := r.next(5 * time.Second)
	if err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	return e
}

// holdHandler hands each accepted connection to the test and keeps it until ctx ends.
type holdHandler struct{ conns chan conn.Connection }

func (holdHandler) ALPN() string { return call.ALPN }
func (h holdHandler) Handle(ctx context.Context, c conn.Connection, _ core.AuthContext) error {
	h.conns <- c
	select {
	case <-ctx.Done():
	case <-c.Done():
	}
	return nil
}

// quicPair returns a connected (dialer, acceptor) pair of QUIC connections with no call layer.
func quicPair(t testing.TB) (conn.Connection, conn.Connection) {
	t.Helper()
	h := holdHandler{conns: make(chan conn.Connection, 1)}
	hst, err := host.New(host.Options{NoTCP: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := hst.Start(h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := (&client.Dialer{}).DialQUIC(ctx, hst.QUICAddrs()[0].String(), call.ALPN, hst.Credentials(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := <-h.conns
	t.Cleanup(func() {
		_ = a.Close(0, "")
		_ = hst.Shutdown(context.Background())
	})
	return a, b
}
