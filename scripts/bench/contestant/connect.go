package contestant

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
)

// noCompression keeps gzip out of the comparison (the other contestants do not compress).
var noCompression = connect.WithCompressMinBytes(math.MaxInt)

// connectCodec carries []byte messages unchanged.
type connectCodec struct{}

func (connectCodec) Name() string { return "raw" }
func (connectCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T", v)
	}
	return *b, nil
}
func (connectCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func init() {
	register(Contestant{
		Name: "connect", Limits: "connect-go defaults over net/http HTTP/2",
		Serve: serveConnect,
		Dial: func(_ context.Context, addr, _ string, _ Options) (Client, error) {
			hc := &http.Client{Transport: &http2.Transport{TLSClientConfig: clientTLS("h2")}}
			base := "https://" + addr
			return &connectClient{
				hc:     hc,
				unary:  connect.NewClient[[]byte, []byte](hc, base+"/bench.Echo/Call", connect.WithCodec(connectCodec{}), noCompression),
				stream: connect.NewClient[[]byte, []byte](hc, base+"/bench.Echo/Stream", connect.WithCodec(connectCodec{}), noCompression),
			}, nil
		},
	})
}

type connectServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

func (s *connectServer) Addr() string { return s.addr }
func (s *connectServer) Pin() string  { return "" }
func (s *connectServer) Close() error { err := s.srv.Close(); <-s.done; return err }

func serveConnect(addr string) (Server, error) {
	cert, err := serverCert()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/bench.Echo/Call", connect.NewUnaryHandler("/bench.Echo/Call",
		func(_ context.Context, r *connect.Request[[]byte]) (*connect.Response[[]byte], error) {
			return connect.NewResponse(r.Msg), nil
		}, connect.WithCodec(connectCodec{}), noCompression))
	mux.Handle("/bench.Echo/Stream", connect.NewServerStreamHandler("/bench.Echo/Stream",
		func(_ context.Context, r *connect.Request[[]byte], st *connect.ServerStream[[]byte]) error {
			req := *r.Msg
			if len(req) < 8 {
				return errors.New("short stream request")
			}
			n, size := be32(req), be32(req[4:])
			item := make([]byte, size)
			for range n {
				if err := st.Send(&item); err != nil {
					return err
				}
			}
			return nil
		}, connect.WithCodec(connectCodec{}), noCompression))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}}}
	cs := &connectServer{srv: srv, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() { defer close(cs.done); _ = srv.ServeTLS(ln, "", "") }()
	return cs, nil
}

type connectClient struct {
	hc     *http.Client
	unary  *connect.Client[[]byte, []byte]
	stream *connect.Client[[]byte, []byte]
}

func (c *connectClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	res, err := c.unary.CallUnary(ctx, connect.NewRequest(&payload))
	if err != nil {
		return nil, err
	}
	return *res.Msg, nil
}

func (c *connectClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	req := streamRequest(n, size)[1:]
	st, err := c.stream.CallServerStream(ctx, connect.NewRequest(&req))
	if err != nil {
		return err
	}
	defer st.Close()
	for st.Receive() {
		fn(*st.Msg())
	}
	return st.Err()
}

func (c *connectClient) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
