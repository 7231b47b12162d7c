package contestant

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/host"
)

// Forwarding contestants (forwarding spec §12): a hub that forwards to a worker over one link,
// in one server process, and a hand-written gRPC proxy for comparison.
func init() {
	for _, tr := range []string{"quic", "tcp"} {
		register(Contestant{
			Name:   "alknet-fwd-" + tr,
			Limits: "as alknet-" + tr + "; hub → worker over one " + tr + " link (SubscriptionBuffer 16384, StreamReuse 4 as the CLI's links), imports exposed",
			Serve:  func(addr string) (Server, error) { return serveForward(addr, tr) },
			Dial: func(ctx context.Context, addr, pin string, o Options) (Client, error) {
				return dialAlknet(ctx, addr, pin, tr, o)
			},
		})
	}
	register(Contestant{
		Name: "grpc-proxy", Limits: "grpc-go defaults; UnknownServiceHandler proxy over one shared TLS connection to the grpc backend",
		Serve: serveGRPCProxy,
		Dial: func(ctx context.Context, addr, pin string, o Options) (Client, error) {
			c, _ := Get("grpc")
			return c.Dial(ctx, addr, pin, o)
		},
	})
}

// abortStamps records, per aborted demo/compose, when level 1's context ended (UnixNano), so
// the abort-hop job can measure client abort → handler ctx done across processes.
var abortStamps struct {
	mu sync.Mutex
	ns []int64
}

func stampLevel1(level int, _ string, cause error) {
	if level != 1 || cause == nil {
		return
	}
	abortStamps.mu.Lock()
	abortStamps.ns = append(abortStamps.ns, time.Now().UnixNano())
	abortStamps.mu.Unlock()
}

// abortStampsOp returns and clears the stamps (bench/abort-stamps).
func abortStampsOp() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "bench/abort-stamps", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			abortStamps.mu.Lock()
			defer abortStamps.mu.Unlock()
			out, err := json.Marshal(abortStamps.ns)
			abortStamps.ns = nil
			return out, err
		},
	}
}

type forwardServer struct {
	hub, worker *node.Node
	link        *call.Conn
	addr        string
}

func (s *forwardServer) Addr() string { return s.addr }
func (s *forwardServer) Pin() string  { return s.hub.Fingerprint() }
func (s *forwardServer) Close() error {
	_ = s.link.Close()
	return errors.Join(s.hub.Shutdown(context.Background()), s.worker.Shutdown(context.Background()))
}

func serveForward(addr, tr string) (Server, error) {
	quiet := slog.New(slog.DiscardHandler)
	hostOpts := func(listen string) host.Options {
		return host.Options{Listen: []string{listen}, NoQUIC: tr != "quic", NoTCP: tr == "quic", Limits: benchLimits, Logger: quiet}
	}
	worker, err := node.Start(node.Options{Host: hostOpts("127.0.0.1:0"),
		Registrations: demo.Registrations(demo.Options{OnComposeDone: stampLevel1})})
	if err != nil {
		return nil, err
	}
	set := call.NewPeerSet()
	hub, err := node.Start(node.Options{Host: hostOpts(addr), Registrations: []call.HandlerRegistration{abortStampsOp()}, Peers: set})
	if err != nil {
		_ = worker.Shutdown(context.Background())
		return nil, err
	}
	fail := func(err error) (Server, error) {
		_ = hub.Shutdown(context.Background())
		_ = worker.Shutdown(context.Background())
		return nil, err
	}
	transport, waddr, haddr := conn.TransportTCPTLS, worker.TCPAddrs(), hub.TCPAddrs()
	if tr == "quic" {
		transport, waddr, haddr = conn.TransportQUIC, worker.QUICAddrs(), hub.QUICAddrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	link, err := node.DialAddr(ctx, waddr[0].String(), worker.Fingerprint(), node.DialOptions{Key: hub.Key, Transport: transport,
		Dispatcher: hub.Dispatcher(), Conn: call.ConnOptions{SubscriptionBuffer: 16384, Logger: quiet, StreamReuse: 4}}) // as the CLI's links
	if err != nil {
		return fail(err)
	}
	res, err := call.ImportFrom(ctx, link, call.ImportConfig{Peer: "worker", KeepRemoteVisibility: true})
	if err == nil {
		err = link.ReplaceImports(res.Registrations)
	}
	if err == nil {
		err = set.Attach("worker", link)
	}
	if err != nil {
		_ = link.Close()
		return fail(err)
	}
	return &forwardServer{hub: hub, worker: worker, link: link, addr: haddr[0].String()}, nil
}

// grpcProxy is a gRPC server that forwards every call to a backend over one shared TLS
// connection: grpc.UnknownServiceHandler with raw bytes both ways (grpc-go has no proxy).
type grpcProxy struct {
	front   *grpc.Server
	backend Server
	cc      *grpc.ClientConn
	addr    string
	done    chan struct{}
}

func (p *grpcProxy) Addr() string { return p.addr }
func (p *grpcProxy) Pin() string  { return "" }
func (p *grpcProxy) Close() error {
	p.front.Stop()
	<-p.done
	_ = p.cc.Close()
	return p.backend.Close()
}

func serveGRPCProxy(addr string) (Server, error) {
	backend, err := serveGRPC("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(backend.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS())),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		_ = backend.Close()
		return nil, err
	}
	cc.Connect()
	p := &grpcProxy{backend: backend, cc: cc, done: make(chan struct{})}
	front, ln, err := newGRPCServer(addr, grpc.UnknownServiceHandler(p.forward))
	if err != nil {
		_ = cc.Close()
		_ = backend.Close()
		return nil, err
	}
	p.front, p.addr = front, ln.Addr().String()
	go func() { defer close(p.done); _ = p.front.Serve(ln) }()
	return p, nil
}

var proxyDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// forward opens a backend stream per incoming one and pumps messages both ways until EOF;
// deadline and cancellation ride the context, the backend's status is returned.
func (p *grpcProxy) forward(_ any, in grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(in)
	if !ok {
		return errors.New("grpc-proxy: no method")
	}
	ctx := in.Context()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out, err := p.cc.NewStream(ctx, proxyDesc, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	upErr := make(chan error, 1)
	go func() { // client → backend
		for {
			var m []byte
			if err := in.RecvMsg(&m); err != nil {
				if err == io.EOF {
					upErr <- out.CloseSend()
					return
				}
				upErr <- err
				return
			}
			if err := out.SendMsg(&m); err != nil {
				upErr <- err
				return
			}
		}
	}()
	for { // backend → client
		var m []byte
		if err := out.RecvMsg(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := in.SendMsg(&m); err != nil {
			return err
		}
	}
}
