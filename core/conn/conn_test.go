package conn_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/internal/testnode"
)

const alpn = "alknet/test"

// hold hands each server-side connection to the test and keeps it open until ctx ends.
type hold struct{ conns chan conn.Connection }

func (hold) ALPN() string { return alpn }
func (h hold) Handle(ctx context.Context, c conn.Connection, _ auth.Context) error {
	h.conns <- c
	select {
	case <-ctx.Done():
	case <-c.Done():
	}
	return nil
}

// pair returns a connected (client, server) pair over transport.
func pair(t *testing.T, transport string, limits config.Limits) (cli, srv conn.Connection) {
	t.Helper()
	h := hold{conns: make(chan conn.Connection, 1)}
	n := testnode.Start(t, testnode.Options{Handlers: []endpoint.ProtocolHandler{h}, Limits: limits})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &client.Dialer{}
	var err error
	if transport == "quic" {
		cli, err = d.DialQUIC(ctx, n.QUIC, alpn, n.Pin(nil))
	} else {
		cli, err = d.DialTCP(ctx, n.TCP, alpn, n.Pin(nil))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close(0, "") })
	select {
	case srv = <-h.conns:
	case <-time.After(5 * time.Second):
		t.Fatal("no server connection")
	}
	return cli, srv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Checklist 18, 19.
func TestQUICStreamsIndependent(t *testing.T) {
	cli, srv := pair(t, "quic", config.Limits{})
	ctx := testCtx(t)
	var out []conn.Stream
	for i := range 3 {
		s, err := cli.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	in := map[byte]conn.Stream{}
	for range 3 {
		s, err := srv.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(s, b); err != nil {
			t.Fatal(err)
		}
		in[b[0]] = s
	}
	if len(in) != 3 {
		t.Fatalf("accepted %d distinct streams", len(in))
	}
	out[1].Cancel(7)
	_ = in['b'].SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := in['b'].Read(make([]byte, 1))
	var sce *conn.StreamCancelError
	if !errors.As(err, &sce) || sce.Code != 7 || !sce.Remote || !errors.Is(err, conn.ErrStreamClosed) {
		t.Fatalf("peer read after Cancel(7): %v", err)
	}
	for _, k := range []byte{'a', 'c'} {
		if _, err := in[k].Write([]byte("ok")); err != nil {
			t.Fatalf("sibling %c: %v", k, err)
		}
		b := make([]byte, 2)
		idx := int(k - 'a')
		_ = out[idx].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(out[idx], b); err != nil || string(b) != "ok" {
			t.Fatalf("sibling %c read: %q %v", k, b, err)
		}
	}
	if !cli.MultiStream() || cli.Transport() != conn.TransportQUIC || cli.ALPN() != alpn {
		t.Fatal("QUIC connection properties")
	}
}

// Checklist 20.
func TestCloseWriteThenReply(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			cli, srv := pair(t, tr, config.Limits{})
			ctx := testCtx(t)
			var cs conn.Stream
			var err error
			if tr == "quic" {
				cs, err = cli.OpenStream(ctx)
			} else {
				cs, err = cli.AcceptStream(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			payload := strings.Repeat("x", 100_000)
			go func() {
				_, _ = cs.Write([]byte(payload))
				_ = cs.CloseWrite()
			}()
			ss, err := srv.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_ = ss.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(ss)
			if err != nil || string(got) != payload {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			if _, err := cs.Write([]byte("more")); !errors.Is(err, conn.ErrStreamClosed) {
				t.Fatalf("write after CloseWrite: %v", err)
			}
			if _, err := ss.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			_ = ss.CloseWrite()
			_ = cs.SetReadDeadline(time.Now().Add(5 * time.Second))
			back, err := io.ReadAll(cs)
			if err != nil || string(back) != "reply" {
				t.Fatalf("reply %q %v", back, err)
			}
		})
	}
}

// Checklist 21, 22.
func TestSingleStream(t *testing.T) {
	cli, srv := pair(t, "tcp", config.Limits{})
	ctx := testCtx(t)
	for _, c := range []conn.Connection{cli, srv} {
		if c.MultiStream() || c.Transport() != conn.TransportTCPTLS {
			t.Fatal("TCP+TLS must be single-stream")
		}
		if _, err := c.OpenStream(ctx); !errors.Is(err, conn.ErrStreamClosed) {
			t.Fatalf("OpenStream: %v", err)
		}
		if _, err := c.AcceptStream(ctx); err != nil {
			t.Fatalf("first AcceptStream: %v", err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := cli.AcceptStream(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second AcceptStream before close: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := cli.AcceptStream(ctx)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = cli.Close(0, "")
	select {
	case err := <-errc:
		if !errors.Is(err, conn.ErrConnectionClosed) {
			t.Fatalf("second AcceptStream after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second AcceptStream did not return after Close")
	}
}

// Checklist 23.
func TestQUICClose(t *testing.T) {
	cli, srv := pair(t, "quic", config.Limits{})
	ctx := testCtx(t)
	errc := make(chan error, 1)
	go func() {
		_, err := cli.AcceptStream(ctx)
		errc <- err
	}()
	if err := srv.Close(9, "bye"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(9, "again"); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	err := <-errc
	var ce *conn.CloseError
	if !errors.As(err, &ce) || *ce != (conn.CloseError{Code: 9, Reason: "bye", Remote: true}) || !errors.Is(err, conn.ErrConnectionClosed) {
		t.Fatalf("peer AcceptStream: %v", err)
	}
	for _, c := range []conn.Connection{cli, srv} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
	}
	long := strings.Repeat("r", 300)
	cli2, srv2 := pair(t, "quic", config.Limits{})
	go func() { _ = srv2.Close(1, long) }()
	_, err = cli2.AcceptStream(ctx)
	if !errors.As(err, &ce) || len(ce.Reason) != 256 {
		t.Fatalf("long reason: %v", err)
	}
}

// Checklist 24.
func TestSetIdentityOnce(t *testing.T) {
	a, b := conn.Pipe(alpn)
	defer a.Close(0, "")
	defer b.Close(0, "")
	if _, ok := a.Identity(); ok {
		t.Fatal("identity before SetIdentity")
	}
	if err := a.SetIdentity(auth.Identity{ID: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetIdentity(auth.Identity{ID: "second"}); !errors.Is(err, conn.ErrIdentityAlreadySet) {
		t.Fatalf("second SetIdentity: %v", err)
	}
	if id, _ := a.Identity(); id.ID != "first" {
		t.Fatalf("identity %q", id.ID)
	}
}

// Checklist 25.
func TestTimeouts(t *testing.T) {
	cli, srv := pair(t, "quic", config.Limits{IdleTimeout: 300 * time.Millisecond, KeepAlivePeriod: -1})
	_ = srv
	ctx := testCtx(t)
	s, err := cli.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = s.Read(make([]byte, 1))
	if !errors.Is(err, conn.ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read deadline: %v", err)
	}
	// The client's default idle timeout is longer; the server's 300 ms wins.
	_, err = cli.AcceptStream(ctx)
	if !errors.Is(err, conn.ErrTimeout) || !errors.Is(err, conn.ErrConnectionClosed) {
		t.Fatalf("idle timeout: %v", err)
	}
	for _, tr := range []string{"tcp"} {
		t.Run(tr, func(t *testing.T) {
			c, _ := pair(t, tr, config.Limits{})
			st, err := c.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_ = st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := st.Read(make([]byte, 1)); !errors.Is(err, conn.ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s read deadline: %v", tr, err)
			}
		})
	}
}

// Checklist 40: with MaxIncomingStreams = 4 the fifth OpenStream waits.
func TestMaxIncomingStreams(t *testing.T) {
	cli, srv := pair(t, "quic", config.Limits{MaxIncomingStreams: 4})
	ctx := testCtx(t)
	var open []conn.Stream
	for range 4 {
		s, err := cli.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.Write([]byte("x"))
		open = append(open, s)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := cli.OpenStream(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fifth OpenStream: %v", err)
	}
	// Closing one stream in both directions frees a slot.
	first, err := srv.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = open[0].Close()
	_, _ = io.ReadAll(first)
	_ = first.Close()
	s, err := cli.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream after a stream closed: %v", err)
	}
	_ = s.Close()
}

// Pipes behave as single-stream connections with half-close.
func TestPipe(t *testing.T) {
	a, b := conn.Pipe(alpn)
	ctx := testCtx(t)
	sa, _ := a.AcceptStream(ctx)
	sb, _ := b.AcceptStream(ctx)
	go func() {
		_, _ = sa.Write([]byte("ping"))
		_ = sa.CloseWrite()
	}()
	got, err := io.ReadAll(sb)
	if err != nil || string(got) != "ping" {
		t.Fatalf("%q %v", got, err)
	}
	go func() { _, _ = sb.Write([]byte("pong")); _ = sb.CloseWrite() }()
	back, err := io.ReadAll(sa)
	if err != nil || string(back) != "pong" {
		t.Fatalf("%q %v", back, err)
	}
	c, d := conn.Pipe(alpn)
	sc, _ := c.AcceptStream(ctx)
	sd, _ := d.AcceptStream(ctx)
	_ = sc
	_ = c.Close(0, "")
	if _, err := sd.Read(make([]byte, 1)); !errors.Is(err, conn.ErrConnectionClosed) {
		t.Fatalf("read after peer Close: %v", err)
	}
	select {
	case <-d.Done():
	default:
		t.Fatal("peer Done not closed")
	}
	if a.Transport() != conn.TransportPipe || a.RemoteAddr() != nil || a.RemoteFingerprint() != "" {
		t.Fatal("pipe properties")
	}
}

// Both ends of a pipe closing at once must not deadlock (each tells the other).
func TestPipeConcurrentClose(t *testing.T) {
	for range 200 {
		a, b := conn.Pipe(alpn)
		done := make(chan struct{}, 2)
		go func() { _ = a.Close(0, ""); done <- struct{}{} }()
		go func() { _ = b.Close(0, ""); done <- struct{}{} }()
		for range 2 {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("concurrent Close deadlocked")
			}
		}
	}
}

// AfterClose runs on either side once the connection closes, from either end, and not at
// all when stopped first; on every transport.
func TestAfterClose(t *testing.T) {
	for _, tr := range []string{"quic", "tcp", "pipe"} {
		t.Run(tr, func(t *testing.T) {
			var a, b conn.Connection
			if tr == "pipe" {
				a, b = conn.Pipe(alpn)
			} else {
				a, b = pair(t, tr, config.Limits{})
			}
			fired := make(chan string, 3)
			stopA := a.AfterClose(func() { fired <- "a" })
			b.AfterClose(func() { fired <- "b" })
			stopped := b.AfterClose(func() { fired <- "stopped" })
			if !stopped() {
				t.Fatal("stop before close reported false")
			}
			// A single-stream connection ends once its stream is done both ways: read to
			// the peer's end, then close our side, as the call protocol does.
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				if st, err := a.AcceptStream(testCtx(t)); err == nil {
					_, _ = io.Copy(io.Discard, st)
					_ = st.CloseWrite()
				}
			}()
			_ = b.Close(0, "")
			defer func() { _ = a.Close(0, ""); <-readerDone }()
			got := map[string]bool{}
			for range 2 {
				select {
				case s := <-fired:
					got[s] = true
				case <-time.After(5 * time.Second):
					t.Fatalf("fired only %v", got)
				}
			}
			if !got["a"] || !got["b"] {
				t.Fatalf("fired %v, want a and b", got)
			}
			if stopA() {
				t.Fatal("stop after firing reported true")
			}
			select {
			case s := <-fired:
				t.Fatalf("%s fired after being stopped", s)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}
