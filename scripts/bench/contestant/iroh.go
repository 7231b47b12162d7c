//go:build cgo && !noiroh

package contestant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

// IrohBuilt: this build has the iroh contestants (alknet-iroh, iroh-raw).
const IrohBuilt = true

// IsIroh: the iroh contestants run the iroh rows only (spec iroh.md §11).
func IsIroh(name string) bool { return name == "alknet-iroh" || name == "iroh-raw" }

func init() {
	register(Contestant{
		Name:   "alknet-iroh",
		Limits: "relay disabled, loopback; as alknet-quic (MaxIncomingStreams=1024, no per-IP limit)",
		Serve:  serveAlknetIroh,
		Dial: func(ctx context.Context, addr, pin string, o Options) (Client, error) {
			c, t, err := dialIroh(ctx, addr, pin, call.ALPN)
			if err != nil {
				return nil, err
			}
			cc := call.NewConn(c, nil, call.ConnOptions{StreamReuse: max(o.StreamReuse, 0), StreamCap: o.StreamCap, StreamPerCall: o.StreamReuse < 0, SubscriptionBuffer: 16384})
			cc.Start(context.Background())
			return &irohCallClient{alknetClient: alknetClient{c: cc}, t: t}, nil
		},
	})
	register(Contestant{
		Name:   "iroh-raw",
		Limits: "the Rust echo (iroh/ffi/examples/echo.rs, iroh defaults) served; Go client through the iroh module",
		Serve:  serveIrohRaw,
		Dial: func(ctx context.Context, addr, pin string, _ Options) (Client, error) {
			c, t, err := dialIroh(ctx, addr, pin, "bench/raw")
			if err != nil {
				return nil, err
			}
			return &irohRawClient{c: c, t: t}, nil
		},
	})
}

// dialIroh binds a dial-only endpoint (relay disabled) and dials addr, pinning pin.
func dialIroh(ctx context.Context, addr, pin, alpn string) (conn.Connection, *iroh.Transport, error) {
	key, err := identity.Generate()
	if err != nil {
		return nil, nil, err
	}
	t, err := iroh.Bind(ctx, iroh.Options{Key: key, BindAddrs: []string{"127.0.0.1:0"}, Relay: iroh.RelayDisabled,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	c, err := t.DialEndpoint(ctx, pin, identity.IrohAddr{Addrs: []string{addr}}, alpn)
	if err != nil {
		_ = t.Close()
		return nil, nil, err
	}
	return c, t, nil
}

type alknetIrohServer struct {
	n *node.Node
	t *iroh.Transport
}

func (s *alknetIrohServer) Addr() string { return s.t.Addr().Addrs[0] }
func (s *alknetIrohServer) Pin() string  { return s.t.Fingerprint() }
func (s *alknetIrohServer) Close() error {
	err := s.n.Shutdown(context.Background())
	return errors.Join(err, s.t.Close())
}

func serveAlknetIroh(addr string) (Server, error) {
	key, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := iroh.Bind(ctx, iroh.Options{Key: key, ALPNs: []string{call.ALPN}, BindAddrs: []string{addr}, Relay: iroh.RelayDisabled,
		Limits: benchLimits, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	a := t.Addr()
	n, err := node.Start(node.Options{
		Host: host.Options{Key: key, Listen: []string{addr}, NoTCP: true, Limits: benchLimits, Logger: slog.New(slog.DiscardHandler),
			Sources: []endpoint.Source{t.Source()}, Iroh: &a},
		Registrations: demo.Registrations(demo.Options{}),
	})
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	return &alknetIrohServer{n: n, t: t}, nil
}

type irohCallClient struct {
	alknetClient
	t *iroh.Transport
}

func (c *irohCallClient) Close() error {
	err := c.alknetClient.Close()
	return errors.Join(err, c.t.Close())
}

// irohRawServer is the Rust echo in a child process; the harness measures that process.
type irohRawServer struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	addr, pin string
	pid       int
}

func (s *irohRawServer) Addr() string { return s.addr }
func (s *irohRawServer) Pin() string  { return s.pin }

// Pid is the echo process (CPU and RSS are read from it, not from the bench process).
func (s *irohRawServer) Pid() int { return s.pid }
func (s *irohRawServer) Close() error {
	_ = s.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		return <-done
	}
}

func serveIrohRaw(string) (Server, error) {
	bin := os.Getenv(EchoEnv)
	if bin == "" {
		return nil, ErrNoEcho
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoEcho, err)
	}
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	addr, pin, pid, stdin, err := StartReady(cmd)
	if err != nil {
		return nil, err
	}
	return &irohRawServer{cmd: cmd, stdin: stdin, addr: addr, pin: pin, pid: pid}, nil
}

// irohRawClient speaks the raw frames on a fresh iroh stream per request, as quic-raw does.
type irohRawClient struct {
	c conn.Connection
	t *iroh.Transport
}

func (c *irohRawClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	st, err := c.c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := writeFrame(st, append([]byte{'E'}, payload...)); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	return readFrame(st, nil)
}

func (c *irohRawClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	st, err := c.c.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := writeFrame(st, streamRequest(n, size)); err != nil {
		return err
	}
	_ = st.CloseWrite()
	return readItems(st, fn)
}

func (c *irohRawClient) Close() error {
	err := c.c.Close(0, "")
	return errors.Join(err, c.t.Close())
}
