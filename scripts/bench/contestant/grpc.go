package contestant

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
)

// rawCodec passes []byte messages through unchanged, so gRPC is measured without protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }
func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T", v)
	}
	return *b, nil
}
func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

var _ encoding.Codec = rawCodec{}

var grpcDesc = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		return &in, nil
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "Stream", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
		var req []byte
		if err := st.RecvMsg(&req); err != nil {
			return err
		}
		if len(req) < 8 {
			return fmt.Errorf("short stream request")
		}
		n, size := be32(req), be32(req[4:])
		item := make([]byte, size)
		for range n {
			if err := st.SendMsg(&item); err != nil {
				return err
			}
		}
		return nil
	}}},
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func init() {
	register(Contestant{
		Name: "grpc", Limits: "grpc-go defaults",
		Serve: serveGRPC,
		Dial: func(ctx context.Context, addr, _ string, _ Options) (Client, error) {
			cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS())),
				grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
			if err != nil {
				return nil, err
			}
			cc.Connect()
			return &grpcClient{cc: cc}, nil
		},
	})
}

type grpcServer struct {
	s    *grpc.Server
	addr string
	done chan struct{}
}

func (s *grpcServer) Addr() string { return s.addr }
func (s *grpcServer) Pin() string  { return "" }
func (s *grpcServer) Close() error { s.s.Stop(); <-s.done; return nil }

// newGRPCServer listens on addr and returns a TLS 1.3 gRPC server with the raw codec.
func newGRPCServer(addr string, opts ...grpc.ServerOption) (*grpc.Server, net.Listener, error) {
	cert, err := serverCert()
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	opts = append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})),
		grpc.ForceServerCodec(rawCodec{})}, opts...)
	return grpc.NewServer(opts...), ln, nil
}

func serveGRPC(addr string) (Server, error) {
	s, ln, err := newGRPCServer(addr)
	if err != nil {
		return nil, err
	}
	s.RegisterService(&grpcDesc, struct{}{})
	gs := &grpcServer{s: s, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() { defer close(gs.done); _ = s.Serve(ln) }()
	return gs, nil
}

type grpcClient struct{ cc *grpc.ClientConn }

func (c *grpcClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	var out []byte
	err := c.cc.Invoke(ctx, "/bench.Echo/Call", &payload, &out)
	return out, err
}

func (c *grpcClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	st, err := c.cc.NewStream(ctx, &grpcDesc.Streams[0], "/bench.Echo/Stream")
	if err != nil {
		return err
	}
	req := streamRequest(n, size)[1:]
	if err := st.SendMsg(&req); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	var item []byte
	for {
		if err := st.RecvMsg(&item); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		fn(item)
	}
}

func (c *grpcClient) Close() error { return c.cc.Close() }
