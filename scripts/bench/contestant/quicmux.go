package contestant

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// ---- quic-raw-mux: bare quic-go with id-tagged frames pipelined over a few long-lived streams,
// the ceiling for alknet-quic with pooled streams (bench.md, second set).

// MuxStreams is quic-raw-mux's pool: the streams each client opens and pipelines over, the
// shape of alknet-quic's default pool.
const MuxStreams = 4

func init() {
	register(Contestant{
		Name: "quic-raw-mux", Limits: "quic-go defaults; MaxIncomingStreams=1024; 4 pipelined streams per client",
		Serve: serveQUICMux,
		Dial:  dialQUICMux,
	})
}

func serveQUICMux(addr string) (Server, error) {
	return serveQUICStreams(addr, "bench/raw-mux", func(st *quic.Stream) { serveMux(st) })
}

type quicMuxClient struct {
	c    *quic.Conn
	pool []*muxClient
	next atomic.Uint32
}

func dialQUICMux(ctx context.Context, addr, _ string, _ Options) (Client, error) {
	c, err := quic.DialAddr(ctx, addr, clientTLS("bench/raw-mux"), &quic.Config{})
	if err != nil {
		return nil, err
	}
	mc := &quicMuxClient{c: c}
	for range MuxStreams {
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			_ = c.CloseWithError(0, "")
			return nil, err
		}
		mc.pool = append(mc.pool, newMuxClient(st))
	}
	return mc, nil
}

// pick spreads requests over the pool round-robin.
func (c *quicMuxClient) pick() *muxClient { return c.pool[int(c.next.Add(1))%len(c.pool)] }

func (c *quicMuxClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	return c.pick().Unary(ctx, payload)
}

func (c *quicMuxClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	return c.pick().Stream(ctx, n, size, fn)
}

func (c *quicMuxClient) Close() error {
	var errs []error
	for _, m := range c.pool {
		errs = append(errs, m.Close())
	}
	return errors.Join(append(errs, c.c.CloseWithError(0, ""))...)
}
